"""Display name and colour of every method, shared by tables and figures.

Kept apart from ``plotting`` so that compute jobs can name methods without importing matplotlib.
"""

from __future__ import annotations

_OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999"]

#: Display name and colour of every method, so one method looks the same in every figure.
METHODS: dict[str, tuple[str, str]] = {
    # Paper A
    "amht_lrs": ("AMHT-LRS", "#0072B2"),
    "amht_lrs_htp": ("AMHT-LRS (HTP step)", "#332288"),
    "dp_amht_lrs": ("DP-AMHT-LRS", "#56B4E9"),
    "altmin": ("Low-rank only (AltMin)", "#E69F00"),
    "dp_altmin": ("DP low-rank only", "#F0E442"),
    "fedrep": ("Low-rank only (FedRep)", "#CC79A7"),
    "sparse_only": ("Sparse only", "#009E73"),
    "global": ("Global model", "#999999"),
    "dp_global": ("DP global model", "#666666"),
    "local": ("Local (per-user ridge)", "#D55E00"),
    "finetune": ("Full fine-tuning", "#882255"),
    "last_layer": ("Last-layer fine-tuning", "#117733"),
    "user_embedding": ("User embedding (ALS fold-in)", "#44AA99"),
    "oracle": ("Oracle", "#000000"),
    # Paper B
    "original": ("Original", "#999999"),
    "retrained": ("Retrained from scratch", "#000000"),
    "unlearn_retrain": ("Unlearn-ALS (retrain)", "#0072B2"),
    "unlearn_mask": ("Unlearn-ALS (mask)", "#009E73"),
    "unlearn_frozen": ("Unlearn-ALS (frozen weights, not exact)", "#CC79A7"),
    "retrain_exact": ("Retrain (exact solver)", "#000000"),
    "retrain_cg": ("Retrain (CG, 3 steps)", "#E69F00"),
    "retrain_implicit": ("Retrain (implicit, CG)", "#56B4E9"),
    "naive": ("Naive fine-tune", "#D55E00"),
}


def method_label(key: str) -> str:
    return METHODS.get(key, (key, None))[0]


def method_color(key: str) -> str:
    if key in METHODS:
        return METHODS[key][1]
    return _OKABE_ITO[sum(map(ord, key)) % len(_OKABE_ITO)]
