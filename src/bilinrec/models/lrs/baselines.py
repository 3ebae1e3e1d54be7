"""Baselines of AMHT-LRS with the same estimator interface (``fit(X, y, users)``, ``theta_``,
``predict(X, users)``).

- :class:`GlobalModel`: one ``theta`` for every user (least squares).
- :class:`LocalRidge`: every user alone, ridge regression.
- :class:`FineTune`: the global model fine-tuned per user, ridge toward ``theta_global``
  (the "neighborhood model" family: a full per-user copy of the model).
- :func:`AltMin`: low-rank only, AMHT-LRS with ``k = 0`` (exact least-squares steps).
- :class:`FedRep`: low-rank only with exact heads and gradient steps on ``U`` ("representation
  learning").
- :class:`SparseOnly`: ``theta_global`` plus a ``k``-sparse ``b_i`` per user.
- :class:`KnownSubspace`: knows ``U*`` but not the supports; per-user head and ``k``-sparse part by
  the same per-user step as AMHT-LRS (the sample-complexity reference without a shared part to learn).
- :class:`Oracle`: knows ``U*`` and every support; per-user least squares (the error floor).
"""

from __future__ import annotations

import time

import numpy as np

from ..base import Estimator
from .amht import AMHTLRS
from .data import LRSData, prepare_data, sparse_prediction
from .segment_kernels import segment_xz_product
from .statistics import SumAggregator
from .user_parameters import UserParameters
from .user_step import (
    _refit_on_support,
    fit_user_parameters,
    initial_subspace,
)

__all__ = ["AltMin", "FedRep", "FineTune", "GlobalModel", "KnownSubspace", "LocalRidge", "Oracle", "SparseOnly"]


class _PerUserLinear(Estimator):
    """Shared ``predict`` and bookkeeping of models that end with a (t, d) ``theta_``."""

    def _start(self, X, y, users, n_users) -> LRSData:
        data = prepare_data(X, y, users, n_users)
        self.n_features_in_ = data.dim
        self.n_users_ = data.n_users
        self.empty_users_ = np.flatnonzero(data.counts == 0)
        self._start_time = time.perf_counter()
        return data

    def _finish(self, theta: np.ndarray, rounds: int = 1) -> None:
        self.theta_ = theta
        self.n_rounds_ = rounds
        self.fit_seconds_ = time.perf_counter() - self._start_time

    def predict(self, X, users) -> np.ndarray:
        """Predictions ``<x_j, theta_{users_j}>`` for samples of known users."""
        self._check_fitted("theta_", "predict")
        X = np.asarray(X, dtype=np.float64)
        users = np.asarray(users)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (N, {self.n_features_in_}), got {X.shape}")
        if users.shape != (len(X),) or not np.issubdtype(users.dtype, np.integer):
            raise ValueError("users must be an integer array with one id per row of X")
        if len(users) and (users.min() < 0 or users.max() >= self.n_users_):
            raise ValueError(f"users must be ids in [0, {self.n_users_})")
        return np.einsum("nd,nd->n", X, self.theta_[users])


def _least_squares(X: np.ndarray, y: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    G = X.T @ X
    G[np.diag_indices_from(G)] += alpha + 1e-12 * np.trace(G) / len(G)
    return np.linalg.solve(G, X.T @ y)


def per_user_ridge(data: LRSData, z: np.ndarray, alpha: float) -> np.ndarray:
    """``argmin_delta ||z_i - X_i delta||^2 + alpha ||delta||^2`` for every user, (t, d).

    Batched over users with equal sample counts; users with fewer samples than features use
    the dual (``m x m``) form, so ``alpha = 0`` gives the minimum-norm interpolant.
    """
    out = np.zeros((data.n_users, data.dim))
    for users, rows in data.iter_batches(data.dim):
        Xu, zu = data.X[rows], z[rows]
        m = rows.shape[1]
        if m < data.dim:
            K = np.matmul(Xu, Xu.transpose(0, 2, 1))
            K[:, np.arange(m), np.arange(m)] += alpha + 1e-12 * np.trace(K, axis1=1, axis2=2)[:, None] / m
            out[users] = np.einsum("nmd,nm->nd", Xu, np.linalg.solve(K, zu[..., None])[..., 0])
        else:
            G = np.matmul(np.ascontiguousarray(Xu.transpose(0, 2, 1)), Xu)
            G[:, np.arange(data.dim), np.arange(data.dim)] += alpha + 1e-12 * np.trace(
                G, axis1=1, axis2=2)[:, None] / data.dim
            out[users] = np.linalg.solve(G, np.einsum("nmd,nm->nd", Xu, zu)[..., None])[..., 0]
    return out


class GlobalModel(_PerUserLinear):
    """One parameter vector shared by all users (least squares on all samples)."""

    def fit(self, X, y, users, n_users: int | None = None) -> "GlobalModel":
        data = self._start(X, y, users, n_users)
        self.coef_ = _least_squares(data.X, data.y)
        self._finish(np.tile(self.coef_, (data.n_users, 1)))
        return self


class LocalRidge(_PerUserLinear):
    """Every user alone: ridge regression on its own samples (``alpha`` >= 0)."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def fit(self, X, y, users, n_users: int | None = None) -> "LocalRidge":
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be non-negative, got {self.alpha!r}")
        data = self._start(X, y, users, n_users)
        self._finish(per_user_ridge(data, data.y, self.alpha))
        return self


class FineTune(_PerUserLinear):
    """Global model, then a full per-user copy fine-tuned by ridge toward it."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def fit(self, X, y, users, n_users: int | None = None) -> "FineTune":
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be non-negative, got {self.alpha!r}")
        data = self._start(X, y, users, n_users)
        self.global_coef_ = _least_squares(data.X, data.y)
        delta = per_user_ridge(data, data.y - data.X @ self.global_coef_, self.alpha)
        self._finish(self.global_coef_ + delta)
        return self


def AltMin(rank: int, **options) -> AMHTLRS:
    """Low-rank only: AMHT-LRS without sparse parts (``sparsity=0``), i.e. AltMin."""
    return AMHTLRS(rank, 0, **options)


class FedRep(_PerUserLinear):
    """Low-rank only, FedRep-style: exact per-user heads, one gradient step on ``U`` per round.

    ``U <- U - lr / lambda_max(mean_i w_i w_i^T) * grad`` with the gradient of
    ``mean_i ||y_i - X_i U w_i||^2 / (2 m_i)``, then QR; same moment initialisation as
    AMHT-LRS. Stops after ``max_rounds`` or when the loss changes by less than ``tol``.
    """

    def __init__(self, rank: int, lr: float = 0.5, max_rounds: int = 300, tol: float = 1e-6) -> None:
        self.rank = rank
        self.lr = lr
        self.max_rounds = max_rounds
        self.tol = tol

    def fit(self, X, y, users, n_users: int | None = None) -> "FedRep":
        if not (isinstance(self.rank, (int, np.integer)) and 1 <= self.rank <= np.shape(X)[1]):
            raise ValueError(f"rank must be an integer in [1, d], got {self.rank!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        data = self._start(X, y, users, n_users)
        U = initial_subspace(data, self.rank, SumAggregator())
        inverse_count = 1.0 / np.maximum(data.counts, 1)
        previous = np.nan
        self.history_ = []
        for rnd in range(self.max_rounds):
            heads, residual, _ = fit_user_parameters(data, U, 0)
            loss = float(np.mean(residual**2))
            self.history_.append({"round": rnd, "loss": loss})
            if abs(previous - loss) <= self.tol * previous:
                break
            previous = loss
            W = heads.W
            # -sum_i X_i^T r_i w_i^T / m_i / t in one compiled pass over X (no gathered N x r heads)
            grad = -segment_xz_product(data, residual, W * inverse_count[:, None]) / data.n_users
            curvature = np.linalg.eigvalsh(W.T @ W / data.n_users)[-1]
            Q, R = np.linalg.qr(U - self.lr / max(curvature, 1e-12) * grad)
            U = Q * np.where(np.diag(R) < 0, -1.0, 1.0)
        heads, _, _ = fit_user_parameters(data, U, 0)
        self.U_, self.W_ = U, heads.W
        self._finish(heads.W @ U.T, rounds=len(self.history_))
        return self


class SparseOnly(_PerUserLinear):
    """``theta_i = theta_global + b_i`` with ``k``-sparse ``b_i`` found by hard thresholding,
    alternating with a least-squares refit of ``theta_global`` (``max_rounds`` times)."""

    def __init__(self, sparsity: int, max_rounds: int = 10, tol: float = 1e-6,
                 pursuit: str = "subspace") -> None:
        self.sparsity = sparsity
        self.max_rounds = max_rounds
        self.tol = tol
        self.pursuit = pursuit

    def fit(self, X, y, users, n_users: int | None = None) -> "SparseOnly":
        if not (isinstance(self.sparsity, (int, np.integer)) and 0 <= self.sparsity <= np.shape(X)[1]):
            raise ValueError(f"sparsity must be an integer in [0, d], got {self.sparsity!r}")
        data = self._start(X, y, users, n_users)
        no_basis = np.zeros((data.dim, 0))
        theta_global = _least_squares(data.X, data.y)
        heads, previous, rounds = None, np.nan, 0
        for rounds in range(1, self.max_rounds + 1):
            heads, residual, _ = fit_user_parameters(
                data, no_basis, self.sparsity, heads, offset=data.X @ theta_global, pursuit=self.pursuit
            )
            loss = float(np.mean(residual**2))
            if abs(previous - loss) <= self.tol * previous:
                break
            previous = loss
            sparse_part = sparse_prediction(data, heads)
            theta_global = _least_squares(data.X, data.y - sparse_part)
        self.global_coef_ = theta_global
        self.B_ = heads.sparse_matrix(data.dim)
        self._finish(theta_global + self.B_.toarray(), rounds=rounds)
        return self


class KnownSubspace(_PerUserLinear):
    """Knows ``U*`` (d, r) but not the supports: every user's ``w_i`` and ``k``-sparse ``b_i`` by
    the per-user step of AMHT-LRS (:func:`fit_user_parameters`) with ``U`` fixed to ``U*``.

    What AMHT-LRS would need per user if the shared part were given: the unavoidable cost of
    finding each user's support, without the cost of learning ``U``."""

    def __init__(self, U: np.ndarray, sparsity: int, inner_iters: int = 10, pursuit: str = "subspace",
                 ridge: float = 1e-10) -> None:
        self.U = U
        self.sparsity = sparsity
        self.inner_iters = inner_iters
        self.pursuit = pursuit
        self.ridge = ridge

    def fit(self, X, y, users, n_users: int | None = None) -> "KnownSubspace":
        data = self._start(X, y, users, n_users)
        U = np.asarray(self.U, dtype=np.float64)
        if U.ndim != 2 or U.shape[0] != data.dim:
            raise ValueError(f"U must have shape ({data.dim}, r), got {U.shape}")
        if not (isinstance(self.sparsity, (int, np.integer)) and 0 <= self.sparsity <= data.dim):
            raise ValueError(f"sparsity must be an integer in [0, d], got {self.sparsity!r}")
        heads, _, _ = fit_user_parameters(data, U, int(self.sparsity), inner_iters=self.inner_iters,
                                          pursuit=self.pursuit, ridge=self.ridge)
        self.U_ = U
        self.B_ = heads.sparse_matrix(data.dim)
        self._finish(heads.W @ U.T + self.B_.toarray())
        return self


class Oracle(_PerUserLinear):
    """Knows ``U*`` (d, r) and every user's support (t, k): per-user least squares of
    ``(w_i, b_i on its support)`` — the error floor of any method. Fitted ``U_`` (``U*``), ``W_``
    (t, r) and ``B_`` (exactly ``k`` non-zeros per user), as AMHT-LRS's."""

    def __init__(self, U: np.ndarray, supports: np.ndarray) -> None:
        self.U = U
        self.supports = supports

    def fit(self, X, y, users, n_users: int | None = None) -> "Oracle":
        data = self._start(X, y, users, n_users)
        U = np.asarray(self.U, dtype=np.float64)
        supports = np.asarray(self.supports, dtype=np.int64)
        if U.ndim != 2 or U.shape[0] != data.dim:
            raise ValueError(f"U must have shape ({data.dim}, r), got {U.shape}")
        if supports.ndim != 2 or supports.shape[0] != data.n_users:
            raise ValueError(f"supports must have shape ({data.n_users}, k), got {supports.shape}")
        heads = UserParameters(np.zeros((data.n_users, U.shape[1])), supports,
                       np.zeros(supports.shape), np.ones(supports.shape, dtype=bool))
        _refit_on_support(data, data.X @ U, data.y, heads, ridge=1e-10)
        self.U_, self.W_ = U, heads.W
        self.B_ = heads.sparse_matrix(data.dim)
        self._finish(heads.W @ U.T + self.B_.toarray())
        return self
