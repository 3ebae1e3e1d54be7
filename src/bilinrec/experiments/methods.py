"""The one registry of every compared method: display name and colour, estimator, declared outputs.

Each part maps its config to a method's hyper-parameters and calls :func:`build`; tables and
figures name and colour methods through :func:`method_label` / :func:`method_color`, and a DP
variant of a method (its privacy budget) through :func:`variant_label` / :func:`variant_style`. Estimators
are imported when built, so importing this module (e.g. to plot) costs nothing.

Every Paper A estimator follows the per-user linear model protocol :class:`PerUserModel`; what
else a fitted model exposes is declared here (``shared_subspace``: ``U_``; ``sparse_part``: ``B_``;
``private``: ``epsilon_``, ``noise_multiplier_``), so callers never probe with ``hasattr``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

_DP_STYLES = ("--", ":", "-.")
_OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999"]


@runtime_checkable
class PerUserModel(Protocol):
    """``y = <x, theta_u>`` per user: fit on samples tagged by user, predict per (x, user)."""

    def fit(self, X, y, users, n_users: int | None = None) -> "PerUserModel": ...

    def predict(self, X, users) -> np.ndarray: ...


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    color: str
    #: ``"module:Class"`` of the estimator; None for models that are not Paper A estimators.
    estimator: str | None = None
    #: Fitted ``theta_`` (users x d); otherwise one ``coef_`` shared by every user.
    per_user: bool = True
    #: Fitted shared orthonormal ``U_`` (d x r).
    shared_subspace: bool = False
    #: Fitted sparse per-user part ``B_`` (users x d, sparse).
    sparse_part: bool = False
    #: Differentially private: fitted ``epsilon_`` and ``noise_multiplier_``.
    private: bool = False
    #: Hyper-parameters tuned on validation ratings (MovieLens personalization).
    tuned: tuple[str, ...] = ()

    def estimator_class(self) -> type:
        if self.estimator is None:
            raise ValueError(f"method {self.key!r} has no estimator to build")
        module, name = self.estimator.split(":")
        return getattr(importlib.import_module(module), name)

    def build(self, *args: Any, **params: Any) -> Any:
        """A fresh, unfitted estimator of this method."""
        return self.estimator_class()(*args, **params)

    def theta(self, model: Any, n_users: int) -> np.ndarray:
        """Every user's fitted parameters (users x d)."""
        return model.theta_ if self.per_user else np.tile(model.coef_, (n_users, 1))


_LRS, _BASE = "bilinrec.models.lrs", "bilinrec.models.lrs.baselines"

#: Every method, in the order of tables and legends.
METHODS: dict[str, Method] = {m.key: m for m in (
    # Paper A
    Method("amht_lrs", "AMHT-LRS", "#0072B2", f"{_LRS}:AMHTLRS", shared_subspace=True, sparse_part=True,
           tuned=("rank", "sparsity", "ridge")),
    Method("amht_lrs_htp", "AMHT-LRS (HTP step)", "#332288", f"{_LRS}:AMHTLRS", shared_subspace=True,
           sparse_part=True),
    Method("dp_amht_lrs", "DP-AMHT-LRS", "#56B4E9", f"{_LRS}:DPAMHTLRS", shared_subspace=True, sparse_part=True,
           private=True),
    Method("altmin", "Low-rank only (AltMin)", "#E69F00", f"{_BASE}:AltMin", shared_subspace=True,
           tuned=("rank", "ridge")),
    Method("dp_altmin", "DP low-rank only", "#F0E442", f"{_LRS}:DPAMHTLRS", shared_subspace=True, private=True),
    Method("fedrep", "Low-rank only (FedRep)", "#CC79A7", f"{_BASE}:FedRep", shared_subspace=True, tuned=("rank",)),
    Method("sparse_only", "Sparse only", "#009E73", f"{_BASE}:SparseOnly", sparse_part=True, tuned=("sparsity",)),
    Method("global", "Global model", "#999999", f"{_BASE}:GlobalModel"),
    Method("dp_global", "DP global model", "#666666", f"{_LRS}:DPGlobalModel", per_user=False, private=True),
    Method("local", "Local (per-user ridge)", "#D55E00", f"{_BASE}:LocalRidge", tuned=("alpha",)),
    Method("finetune", "Full fine-tuning", "#882255", f"{_BASE}:FineTune", tuned=("alpha",)),
    Method("last_layer", "Last-layer fine-tuning", "#117733"),
    Method("user_embedding", "User embedding (ALS fold-in)", "#44AA99",
           "bilinrec.experiments.personalization.methods:ALSFoldIn"),
    Method("known_u", "Known U (supports unknown)", "#888888", f"{_BASE}:KnownSubspace", shared_subspace=True,
           sparse_part=True),
    Method("oracle", "Oracle", "#000000", f"{_BASE}:Oracle", shared_subspace=True, sparse_part=True),
    # Paper B
    Method("original", "Original", "#999999"),
    Method("retrained", "Retrained from scratch", "#000000"),
    Method("unlearn_retrain", "Unlearn-ALS (retrain)", "#0072B2"),
    Method("unlearn_mask", "Unlearn-ALS (mask)", "#009E73"),
    Method("unlearn_frozen", "Unlearn-ALS (frozen weights, not exact)", "#CC79A7"),
    Method("retrain_exact", "Retrain (exact solver)", "#000000"),
    Method("retrain_cg", "Retrain (CG, 3 steps)", "#E69F00"),
    Method("retrain_implicit", "Retrain (implicit, CG)", "#56B4E9"),
    Method("retrain_exact_accelerated", "Retrain (exact, accelerated)", "#009E73"),
    Method("unlearn_cg", "Unlearn-ALS (CG, 3 steps)", "#E69F00"),
    Method("unlearn_accelerated", "Unlearn-ALS (exact, accelerated)", "#009E73"),
    Method("naive", "Naive fine-tune", "#D55E00"),
)}


def method(key: str) -> Method:
    """The registered method ``key`` (clear error for an unknown one)."""
    if key not in METHODS:
        raise ValueError(f"unknown method {key!r}; expected one of {', '.join(METHODS)}")
    return METHODS[key]


def build(key: str, *args: Any, **params: Any) -> Any:
    """A fresh estimator of method ``key`` with hyper-parameters ``params``."""
    return method(key).build(*args, **params)


def method_label(key: str) -> str:
    return METHODS[key].label if key in METHODS else key


def method_color(key: str) -> str:
    if key in METHODS:
        return METHODS[key].color
    return _OKABE_ITO[sum(map(ord, key)) % len(_OKABE_ITO)]


def variant_label(method: str, epsilon: float | None) -> str:
    """Display name of a method, with its privacy budget for DP variants (fit in simulation mode:
    seeded noise, hyper-parameters tuned non-privately, so not a private release; docs/privacy.md)."""
    import pandas as pd

    label = method_label(method)
    return label if epsilon is None or pd.isna(epsilon) else f"{label} (ε={epsilon:g}, simulation)"


def variant_style(method: str, epsilon: float | None, dp_eps: list[float]) -> dict:
    """Line style of a method's variant: the method's colour, and for DP variants a dashed line
    per budget of ``dp_eps`` with square markers."""
    import pandas as pd

    style = {"color": method_color(method), "marker": "o", "linestyle": "-"}
    if not pd.isna(epsilon):
        style["linestyle"] = _DP_STYLES[dp_eps.index(epsilon) % len(_DP_STYLES)]
        style["marker"] = "s"
    return style
