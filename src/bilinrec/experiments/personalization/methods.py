"""Every compared method as an estimator on the per-user linear problem, plus its grid.

Each evaluation user is a "user" of the linear model ``y = <x, theta_u>`` with ``x`` the
(scaled) item embedding plus a constant and ``y`` the centred rating. All estimators have
``fit(X, y, users, n_users)``, ``predict(X, users)`` and a per-user ``theta_``; the
methods differ only in how ``theta_u`` is constrained and what each user must store.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from bilinrec.experiments.methods import build
from bilinrec.experiments.methods import method as registered
from bilinrec.models.base import Estimator
from bilinrec.experiments.serialized import index_dtype, serialized_nbytes
from bilinrec.models.lrs import (
    PrivacyBudget,
    default_clip_bounds,
    prepare_data,
)

#: Methods in the order of tables and legends (DP variants are expanded per epsilon).
COMPARED_METHODS = (
    "user_embedding", "global", "local", "finetune", "altmin", "fedrep", "sparse_only", "amht_lrs", "dp_amht_lrs",
)


class ALSFoldIn(Estimator):
    """Fold a user into a fixed explicit-ALS model: the ALS user step with the item side fixed.

    Solves ``(sum_i x_i x_i^T + lambda_u I) theta_u = sum_i x_i y_ui`` per user with
    ``x_i = [q_i, 1]`` (item factors and the bias slot) and ``lambda_u = regularization``
    (times the user's rating count under ALS-WR), i.e. the update the background ALS itself
    applies to its users. ``feature_scale`` maps the scaled design the other methods use
    back to the raw ALS factors, so the penalty is the ALS model's own.
    """

    def __init__(self, regularization: float, scale_regularization: bool, feature_scale: np.ndarray):
        self.regularization = regularization
        self.scale_regularization = scale_regularization
        self.feature_scale = feature_scale

    def fit(self, X, y, users, n_users: int | None = None) -> "ALSFoldIn":
        if not self.regularization > 0:
            raise ValueError(f"regularization must be positive, got {self.regularization!r}")
        X = np.asarray(X, dtype=np.float64)
        scale = np.asarray(self.feature_scale, dtype=np.float64)
        if scale.shape != (X.shape[1],):
            raise ValueError(f"feature_scale must have shape ({X.shape[1]},), got {scale.shape}")
        data = prepare_data(X * scale, y, users, n_users)
        gram = data.segment_gram(data.X)
        rhs = data.segment_sum(data.X, row_weights=data.y)
        lam = self.regularization * (np.maximum(data.counts, 1) if self.scale_regularization else 1.0)
        gram[:, np.arange(data.dim), np.arange(data.dim)] += np.broadcast_to(lam, (data.n_users,))[:, None]
        raw = np.linalg.solve(gram, rhs[..., None])[..., 0]
        self.theta_ = raw * scale
        self.n_users_ = data.n_users
        return self

    def predict(self, X, users) -> np.ndarray:
        self._check_fitted("theta_", "predict")
        return np.einsum("nd,nd->n", np.asarray(X, dtype=np.float64), self.theta_[np.asarray(users)])


@dataclass(frozen=True)
class MethodOptions:
    """Fixed (not tuned) options of the methods."""

    amht: Mapping[str, Any]
    fedrep: Mapping[str, Any]
    sparse_only: Mapping[str, Any]
    dp: Mapping[str, Any]
    fold_in_regularization: float
    fold_in_scale_regularization: bool
    feature_scale: np.ndarray
    #: Column scales of the embedding-only design the fold-in works on (None: ``feature_scale``).
    fold_in_scale: np.ndarray | None = None


def candidates(method: str, grid: Mapping[str, list], m: int | None) -> list[dict[str, Any]]:
    """Hyper-parameter settings of ``method`` to try; with ``m`` ratings per user, settings
    with more per-user unknowns (rank + sparsity) than ``m`` are left out."""
    axes = registered(method).tuned
    settings = [dict(zip(axes, values)) for values in product(*(grid[a] for a in axes))]
    if m is not None:
        settings = [s for s in settings if s.get("rank", 0) + s.get("sparsity", 0) <= m]
    if not settings:
        raise ValueError(f"no hyper-parameter setting of {method!r} is identifiable with m={m} ratings per user")
    return settings


def make_estimator(method: str, params: Mapping[str, Any], options: MethodOptions, seed: int, epsilon=None):
    """A fresh estimator of ``method`` with hyper-parameters ``params``."""
    if method not in COMPARED_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {COMPARED_METHODS}")
    if method == "user_embedding":
        kwargs = dict(regularization=options.fold_in_regularization,
                      scale_regularization=options.fold_in_scale_regularization,
                      feature_scale=options.feature_scale if options.fold_in_scale is None else options.fold_in_scale)
    elif method in ("global",):
        kwargs = {}
    elif method in ("local", "finetune"):
        kwargs = dict(alpha=params["alpha"])
    elif method == "altmin":
        kwargs = dict(rank=params["rank"], random_state=seed, **options.amht, ridge=params["ridge"])
    elif method == "fedrep":
        kwargs = dict(rank=params["rank"], **options.fedrep)
    elif method == "sparse_only":
        kwargs = dict(sparsity=params["sparsity"], **options.sparse_only)
    elif method == "amht_lrs":
        kwargs = dict(rank=params["rank"], sparsity=params["sparsity"], random_state=seed, **options.amht,
                      ridge=params["ridge"])
    else:  # dp_amht_lrs
        dp = options.dp
        amht = {k: v for k, v in options.amht.items() if k not in ("max_rounds", "tol")} | {"ridge": params["ridge"]}
        kwargs = dict(
            rank=params["rank"],
            sparsity=params["sparsity"],
            privacy=PrivacyBudget(float(epsilon), float(params["delta"])),
            clip=default_clip_bounds(
                len(options.feature_scale), params["samples_per_user"], dp["response_scale"], dp["clip_multiplier"]
            ),
            max_rounds=dp["max_rounds"],
            accountant=dp["accountant"],
            random_state=seed,
            amht_options=amht,
            # seeded noise for reproducible rows, labelled "simulation" (not a private release; the
            # rank, sparsity and ridge are also tuned non-privately on the same users)
            mode="simulation",
            noise_seed=seed,
        )
    return build(method, **kwargs)


def user_payload(method: str, model, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The per-user parameters a server must store for ``method`` (float32 values)."""
    if method == "global":
        return {}
    if method in ("user_embedding", "local", "finetune"):
        return {"theta": model.theta_.astype(np.float32)}
    if method in ("altmin", "fedrep"):
        return {"coefficients": model.W_.astype(np.float32)}
    if method == "sparse_only":
        return sparse_pairs(model.B_, params["sparsity"])
    if method in ("amht_lrs", "dp_amht_lrs"):
        return {"coefficients": model.W_.astype(np.float32), **sparse_pairs(model.B_, params["sparsity"])}
    raise ValueError(f"unknown method {method!r}")


def sparse_pairs(B: sp.spmatrix, k: int) -> dict[str, np.ndarray]:
    """Each row's non-zeros as ``k`` (index, value) pairs, padded with (0, 0.0)."""
    B = sp.csr_matrix(B)
    counts = np.diff(B.indptr)
    if counts.size and counts.max() > k:
        raise ValueError(f"a row of B has {counts.max()} non-zeros, more than k={k}")
    slot = np.arange(B.nnz) - np.repeat(B.indptr[:-1], counts)
    rows = np.repeat(np.arange(B.shape[0]), counts)
    index = np.zeros((B.shape[0], k), dtype=index_dtype(B.shape[1]))
    value = np.zeros((B.shape[0], k), dtype=np.float32)
    index[rows, slot] = B.indices
    value[rows, slot] = B.data
    return {"sparse_index": index, "sparse_value": value}


def bytes_per_user(payload: Mapping[str, np.ndarray]) -> float:
    """Marginal serialized bytes of one user: the store of all users minus the empty store, per user."""
    if not payload:
        return 0.0
    n = {len(a) for a in payload.values()}
    if len(n) != 1:
        raise ValueError("payload arrays must have one row per user")
    (n_users,) = n
    empty = serialized_nbytes({k: v[:0] for k, v in payload.items()})
    return (serialized_nbytes(payload) - empty) / max(n_users, 1)


def dp_delta(delta: float | None, n_users: int) -> float:
    """The DP delta, fixed a priori by the configuration (a delta computed from the number of
    users would depend on the data); warns when it is not below ``1 / n_users``."""
    if delta is None:
        raise ValueError("personalization.dp.delta must be a number fixed a priori (e.g. 1e-6); "
                         "deriving it from the number of users would make it depend on the data")
    delta = float(delta)
    PrivacyBudget(1.0, delta).check_users(n_users)
    return delta
