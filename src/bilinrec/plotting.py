"""Shared figure style, method colours/names, and deterministic figure saving."""

from __future__ import annotations

import os
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .io import atomic_path  # noqa: E402

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
    "naive": ("Naive fine-tune", "#D55E00"),
}


def method_label(key: str) -> str:
    return METHODS.get(key, (key, None))[0]


def method_color(key: str) -> str:
    if key in METHODS:
        return METHODS[key][1]
    return _OKABE_ITO[sum(map(ord, key)) % len(_OKABE_ITO)]


def style_path() -> str:
    return str(resources.files("bilinrec").joinpath("bilinrec.mplstyle"))


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply the project's matplotlib style inside the block."""
    with plt.style.context(style_path()):
        yield


def use_style() -> None:
    """Apply the project's matplotlib style globally (for notebooks)."""
    plt.style.use(style_path())


def savefig(fig: "plt.Figure", stem: str | os.PathLike, close: bool = True) -> list[Path]:
    """Save ``fig`` as ``stem.pdf`` and ``stem.png``, atomically and deterministically.

    PDF metadata carries no creation date, so the same input gives a byte-identical PDF.
    """
    stem = Path(stem)
    written = []
    for ext, kwargs in (
        ("pdf", {"metadata": {"CreationDate": None, "ModDate": None, "Producer": "bilinrec", "Creator": "bilinrec"}}),
        ("png", {"metadata": {"Software": "bilinrec"}}),
    ):
        target = stem.with_suffix(f".{ext}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, **kwargs)
        written.append(target)
    if close:
        plt.close(fig)
    return written
