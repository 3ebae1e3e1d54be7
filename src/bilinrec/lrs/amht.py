"""AMHT-LRS: alternating minimisation with hard thresholding for low-rank + sparse users.

Model (Paper A, linear setting): user ``i`` has parameters ``theta_i = U w_i + b_i`` with a
shared orthonormal ``U`` (d x r), a user head ``w_i`` (r) and a user-specific ``b_i`` with at
most ``k`` non-zeros; sample ``j`` of user ``i`` is ``y_ij = <x_ij, theta_i> + noise``.

Shared statistics and the aggregator hook (used by the private variant, ``bilinrec.lrs.dp``)
--------------------------------------------------------------------------------------------
Only two quantities combine data of different users. Each is a sum of per-user
contributions, built by exactly one function and combined by an *aggregator*:

1. Initialisation moment ``M = sum_i C_i`` with ``C_i = sum_j y_ij^2 x_ij x_ij^T`` (d x d),
   built by :func:`moment_statistics` -> :class:`MomentStatistics`.
   ``U0`` = top-``r`` eigenvectors of the aggregated ``M``.
2. U-step normal equations ``A vec(U) = b`` (``vec`` stacks columns, size ``d r``) with
   ``A = sum_i A_i``, ``A_i = (w_i w_i^T) kron (X_i^T X_i)`` and
   ``b = sum_i b_i``, ``b_i = w_i kron X_i^T (y_i - X_i b_i)``,
   built by :func:`normal_equation_statistics` -> :class:`NormalEquationStatistics`.

An aggregator is any object with two methods::

    aggregate_moment(stats: MomentStatistics) -> ndarray (d, d)
    aggregate_normal_equations(stats: NormalEquationStatistics) -> (A, b)
        # A: ndarray (d r, d r) or a scipy LinearOperator; b: ndarray (d r,)

:class:`SumAggregator` (the default, non-private) just sums. Both statistics objects give
weighted sums ``sum_i c_i (contribution_i)`` for per-user weights ``c_i`` (``weights=``; a
clipping aggregator passes ``c_i = min(1, C / norm_i)``) and the per-user contribution norms
(``per_user_norms()``), so a private aggregator can clip and add noise without touching the
raw data. Everything else (each user's ``w_i`` and ``b_i``) is computed from that user's own
data only, which is what joint ("billboard") differential privacy needs.

Every per-user computation is batched: rows are sorted by user, per-user sums are sparse
indicator products, per-user Gram matrices are batched matmuls over users grouped by
sample count, and per-user solves are stacked ``(t, p, p)`` solves.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, cg

__all__ = [
    "AMHTLRS",
    "LRSData",
    "MomentStatistics",
    "NormalEquationStatistics",
    "SumAggregator",
    "UserFit",
    "moment_statistics",
    "normal_equation_statistics",
    "prepare_data",
]

#: Upper bound on the number of floats a batched temporary may hold (about 400 MB).
_MAX_BATCH_ELEMENTS = 50_000_000
#: Largest per-user Gram cache (floats, about 100 MB) that ``LRSData.user_grams`` keeps.
_MAX_GRAM_CACHE_ELEMENTS = 12_500_000
#: Rows per block of the matrix-free U-step product (a block of X stays in cache).
_MATVEC_BLOCK_ROWS = 2048


# --------------------------------------------------------------------------------------
# Data: rows sorted by user, per-user segment operations
# --------------------------------------------------------------------------------------
@dataclass
class LRSData:
    """Samples sorted by user with the segment bookkeeping every batched operation uses.

    ``X[indptr[i]:indptr[i+1]]`` are the samples of user ``i``; ``order`` maps sorted rows
    back to the caller's row order (``X_sorted = X_input[order]``).
    """

    X: np.ndarray
    y: np.ndarray
    indptr: np.ndarray
    order: np.ndarray
    row_user: np.ndarray = field(init=False)
    counts: np.ndarray = field(init=False)
    _buckets: list | None = field(default=None, init=False, repr=False)
    _user_grams: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.diff(self.indptr)
        self.row_user = np.repeat(np.arange(self.n_users), self.counts)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    def subset_rows(self, mask: np.ndarray) -> "LRSData":
        """The data restricted to sorted rows where ``mask`` is true (user ids kept)."""
        counts = np.bincount(self.row_user[mask], minlength=self.n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return LRSData(self.X[mask], self.y[mask], indptr, self.order[mask])

    def subset_users(self, users: np.ndarray) -> tuple["LRSData", np.ndarray]:
        """The data of ``users`` only (renumbered ``0..len(users)-1``) and the sorted rows taken."""
        counts = self.counts[users]
        first = np.cumsum(counts) - counts
        rows = np.repeat(self.indptr[users] - first, counts) + np.arange(counts.sum())
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return LRSData(self.X[rows], self.y[rows], indptr, self.order[rows]), rows

    def segment_sum(self, values: np.ndarray, row_weights: np.ndarray | None = None) -> np.ndarray:
        """Per-user sums ``sum_j row_weights_j * values_j`` -> shape ``(t,) + values.shape[1:]``."""
        if values.ndim == 1:
            w = values if row_weights is None else values * row_weights
            return np.bincount(self.row_user, weights=w, minlength=self.n_users)
        data = np.ones(self.n_samples) if row_weights is None else row_weights
        summer = sp.csr_matrix(
            (data, np.arange(self.n_samples), self.indptr), shape=(self.n_users, self.n_samples)
        )
        flat = values.reshape(self.n_samples, -1)
        return np.asarray(summer @ flat).reshape((self.n_users,) + values.shape[1:])

    def buckets(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Users grouped by sample count: list of ``(users, rows)`` with ``rows`` of shape (n, c)."""
        if self._buckets is None:
            self._buckets = []
            for c in np.unique(self.counts):
                if c == 0:
                    continue
                users = np.flatnonzero(self.counts == c)
                rows = self.indptr[users][:, None] + np.arange(c)
                self._buckets.append((users, rows))
        return self._buckets

    def iter_batches(self, width: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(users, rows)`` batches of equal-count users, each at most ~_MAX_BATCH_ELEMENTS
        floats once ``width`` columns are gathered per row and a ``width x width`` Gram is made."""
        for users, rows in self.buckets():
            per_user = rows.shape[1] * width + width * width
            step = max(1, _MAX_BATCH_ELEMENTS // max(per_user, 1))
            for start in range(0, len(users), step):
                yield users[start : start + step], rows[start : start + step]

    def user_grams(self) -> np.ndarray | None:
        """Per-user ``X_i^T X_i`` as ``(t, d * d)``, computed once and kept (they do not change
        between rounds); ``None`` when the cache would exceed ``_MAX_GRAM_CACHE_ELEMENTS``."""
        if self.n_users * self.dim**2 > _MAX_GRAM_CACHE_ELEMENTS:
            return None
        if self._user_grams is None:
            self._user_grams = self.segment_gram(self.X).reshape(self.n_users, -1)
        return self._user_grams

    def segment_gram(self, F: np.ndarray, row_weights: np.ndarray | None = None) -> np.ndarray:
        """Per-user Gram matrices ``sum_j w_j f_j f_j^T`` of the rows of ``F`` -> ``(t, p, p)``."""
        p = F.shape[1]
        out = np.zeros((self.n_users, p, p))
        for users, rows in self.iter_batches(p):
            Fu = F[rows]
            Fw = Fu if row_weights is None else Fu * row_weights[rows][..., None]
            out[users] = _batched_gram(Fw, Fu)
        return out


def _batched_gram(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A[i]^T B[i]`` for stacks (n, m, p); the transposed operand is made contiguous so
    that NumPy dispatches every product to BLAS (about 25x faster than a strided view)."""
    return np.matmul(np.ascontiguousarray(A.transpose(0, 2, 1)), B)


def _as_user_ids(users: np.ndarray, name: str = "users") -> np.ndarray:
    users = np.asarray(users)
    if users.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {users.shape}")
    if users.size and not np.issubdtype(users.dtype, np.integer):
        if not np.issubdtype(users.dtype, np.floating) or not np.all(np.isfinite(users)) or np.any(
            users != np.round(users)
        ):
            raise ValueError(f"{name} must hold integer user ids, got dtype {users.dtype}")
    users = users.astype(np.int64)
    if users.size and users.min() < 0:
        raise ValueError(f"{name} must hold non-negative user ids, found {users.min()}")
    return users


def prepare_data(X, y, users, n_users: int | None = None) -> LRSData:
    """Validate stacked samples and sort them by user.

    ``X`` (N, d) features, ``y`` (N,) targets, ``users`` (N,) non-negative integer ids;
    ``n_users`` (default ``max(users) + 1``) allows users without samples at the end.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    users = _as_user_ids(users)
    if not (len(X) == len(y) == len(users)):
        raise ValueError(
            f"X, y and users must have the same length, got {len(X)}, {len(y)} and {len(users)}"
        )
    if len(X) == 0:
        raise ValueError("X has no samples")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    t = int(users.max()) + 1
    if n_users is not None:
        if int(n_users) < t:
            raise ValueError(f"n_users={n_users} is smaller than the largest user id + 1 ({t})")
        t = int(n_users)
    order = np.argsort(users, kind="stable")
    counts = np.bincount(users, minlength=t)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return LRSData(np.ascontiguousarray(X[order]), y[order], indptr, order)


# --------------------------------------------------------------------------------------
# Shared statistics and aggregators
# --------------------------------------------------------------------------------------
@dataclass
class MomentStatistics:
    """Per-user moment contributions ``C_i = Z_i^T Z_i`` in factored form (``Z = |y| x``)."""

    data: LRSData
    Z: np.ndarray

    @property
    def n_users(self) -> int:
        return self.data.n_users

    def total(self, weights: np.ndarray | None = None) -> np.ndarray:
        """``sum_i weights_i C_i`` (plain sum without weights), shape (d, d)."""
        if weights is None:
            return self.Z.T @ self.Z
        return self.Z.T @ (self.Z * np.asarray(weights)[self.data.row_user][:, None])

    def per_user_norms(self) -> np.ndarray:
        """Frobenius norm of every user's contribution ``C_i``, shape (t,)."""
        norms = np.zeros(self.n_users)
        for users, rows in self.data.iter_batches(self.Z.shape[1]):
            Zu = self.Z[rows]
            norms[users] = np.linalg.norm(_batched_gram(Zu, Zu), axis=(1, 2))
        return norms


def moment_statistics(data: LRSData) -> MomentStatistics:
    """The per-user contributions to ``M = sum_i sum_j y_ij^2 x_ij x_ij^T``."""
    return MomentStatistics(data, data.X * np.abs(data.y)[:, None])


@dataclass
class NormalEquationStatistics:
    """Per-user contributions to the U-step normal equations (see the module docstring).

    ``A_i = c_i (w_i w_i^T) kron (X_i^T X_i)``, ``b_i = c_i w_i kron X_i^T z_i`` with ``z_i``
    the targets minus the sparse part, ``z_ij = y_ij - <x_ij, b_i>``, and ``c_i`` the
    estimator's robustness weights ``user_weights`` (all 1 unless down-weighting is enabled).
    The ``weights`` argument of every method multiplies these (e.g. clipping factors).
    """

    data: LRSData
    W: np.ndarray
    z: np.ndarray
    user_weights: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return self.data.n_users

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.dim, self.W.shape[1]

    def _weights(self, weights: np.ndarray | None) -> np.ndarray | None:
        if weights is None:
            return self.user_weights
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (self.n_users,):
            raise ValueError(f"weights must have shape ({self.n_users},), got {weights.shape}")
        return weights if self.user_weights is None else weights * self.user_weights

    def rhs(self, weights: np.ndarray | None = None) -> np.ndarray:
        """``sum_i weights_i b_i`` as a vector of length d r (column-major vec of a d x r matrix)."""
        c = self._weights(weights)
        zw = self.z if c is None else self.z * c[self.data.row_user]
        return (self.data.X.T @ (zw[:, None] * self.W[self.data.row_user])).ravel(order="F")

    def gram(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Dense ``sum_i weights_i A_i``, shape (d r, d r); cost O(N d^2 + t r^2 d^2)."""
        d, r = self.shape
        coef = self.W[:, :, None] * self.W[:, None, :]
        c = self._weights(weights)
        if c is not None:
            coef = coef * c[:, None, None]
        grams = self.data.user_grams()
        if grams is not None:
            acc = coef.reshape(self.n_users, r * r).T @ grams
            return acc.reshape(r, r, d, d).transpose(0, 2, 1, 3).reshape(d * r, d * r)
        acc = np.zeros((r * r, d * d))
        for users, rows in self.data.iter_batches(d):
            Xu = self.data.X[rows]
            S = _batched_gram(Xu, Xu).reshape(len(users), d * d)
            acc += coef[users].reshape(len(users), r * r).T @ S
        return acc.reshape(r, r, d, d).transpose(0, 2, 1, 3).reshape(d * r, d * r)

    def operator(self, weights: np.ndarray | None = None) -> LinearOperator:
        """Matrix-free ``sum_i weights_i A_i`` (cost O(N d r) per product)."""
        d, r = self.shape
        Wr = self.W[self.data.row_user]
        c = self._weights(weights)
        Wr_w = Wr if c is None else Wr * c[self.data.row_user][:, None]
        X = self.data.X

        def matvec(v: np.ndarray) -> np.ndarray:
            # one pass over X in cache-sized row blocks: the product is memory-bound
            V = np.ascontiguousarray(np.asarray(v).reshape(d, r, order="F"))
            out = np.zeros((d, r))
            for start in range(0, len(X), _MATVEC_BLOCK_ROWS):
                block = slice(start, start + _MATVEC_BLOCK_ROWS)
                Xb = X[block]
                pred = np.einsum("nr,nr->n", Xb @ V, Wr[block])
                out += Xb.T @ (pred[:, None] * Wr_w[block])
            return out.ravel(order="F")

        return LinearOperator((d * r, d * r), matvec=matvec, dtype=np.float64)

    def preconditioner(self) -> LinearOperator:
        """Inverse of ``E[A] = (sum_i m_i w_i w_i^T) kron I_d`` for Gaussian features."""
        d, r = self.shape
        c = self.data.counts if self.user_weights is None else self.data.counts * self.user_weights
        H = (self.W * c[:, None]).T @ self.W
        H_inv = np.linalg.pinv(H)

        def matvec(v: np.ndarray) -> np.ndarray:
            return (np.asarray(v).reshape(d, r, order="F") @ H_inv).ravel(order="F")

        return LinearOperator((d * r, d * r), matvec=matvec, dtype=np.float64)

    def per_user_norms(self) -> tuple[np.ndarray, np.ndarray]:
        """Frobenius norms of every ``A_i`` and Euclidean norms of every ``b_i``, each (t,)."""
        d = self.data.dim
        grams = self.data.user_grams()
        if grams is not None:
            gram_norms = np.linalg.norm(grams, axis=1)
        else:
            gram_norms = np.zeros(self.n_users)
            for users, rows in self.data.iter_batches(d):
                Xu = self.data.X[rows]
                gram_norms[users] = np.linalg.norm(_batched_gram(Xu, Xu), axis=(1, 2))
        w_sq = np.einsum("ir,ir->i", self.W, self.W)
        if self.user_weights is not None:
            w_sq = w_sq * self.user_weights
        xz = self.data.segment_sum(self.data.X, row_weights=self.z)
        c = np.ones(self.n_users) if self.user_weights is None else self.user_weights
        rhs_norms = c * np.sqrt(np.einsum("ir,ir->i", self.W, self.W)) * np.linalg.norm(xz, axis=1)
        return w_sq * gram_norms, rhs_norms


def normal_equation_statistics(
    data: LRSData, W: np.ndarray, z: np.ndarray, user_weights: np.ndarray | None = None
) -> NormalEquationStatistics:
    """The per-user contributions to the U-step normal equations given heads ``W`` (t, r),
    sparse-corrected targets ``z`` (N,) and optional robustness weights (t,)."""
    return NormalEquationStatistics(data, W, z, user_weights)


class SumAggregator:
    """Non-private aggregator: plain sums of the per-user contributions.

    ``solver="exact"`` forms the dense ``d r x d r`` system; ``"cg"`` returns a matrix-free
    operator that the estimator solves by preconditioned conjugate gradients.
    """

    def __init__(self, solver: str = "exact") -> None:
        if solver not in ("exact", "cg"):
            raise ValueError(f"solver must be 'exact' or 'cg', got {solver!r}")
        self.solver = solver

    def aggregate_moment(self, stats: MomentStatistics) -> np.ndarray:
        return stats.total()

    def aggregate_normal_equations(self, stats: NormalEquationStatistics):
        A = stats.gram() if self.solver == "exact" else stats.operator()
        return A, stats.rhs()


# --------------------------------------------------------------------------------------
# Per-user step: (w_i, b_i) by alternating least squares and hard thresholding
# --------------------------------------------------------------------------------------
@dataclass
class _Heads:
    """Per-user parameters: heads ``W`` (t, r), sparse part as support ``S`` (t, k) with
    values ``V`` (t, k) and an ``active`` mask (t, k) (inactive slots hold zero)."""

    W: np.ndarray
    S: np.ndarray
    V: np.ndarray
    active: np.ndarray

    @classmethod
    def empty(cls, n_users: int, rank: int, sparsity: int) -> "_Heads":
        return cls(
            np.zeros((n_users, rank)),
            np.zeros((n_users, sparsity), dtype=np.int64),
            np.zeros((n_users, sparsity)),
            np.zeros((n_users, sparsity), dtype=bool),
        )

    def take(self, users: np.ndarray) -> "_Heads":
        return _Heads(self.W[users], self.S[users], self.V[users], self.active[users])

    def put(self, users: np.ndarray, part: "_Heads") -> None:
        self.W[users], self.S[users], self.V[users], self.active[users] = (
            part.W, part.S, part.V, part.active)

    def dense_sparse_part(self, dim: int) -> np.ndarray:
        B = np.zeros((self.S.shape[0], dim))
        np.put_along_axis(B, self.S, self.V * self.active, axis=1)
        return B

    def sparse_matrix(self, dim: int) -> sp.csr_matrix:
        B = sp.csr_matrix(self.dense_sparse_part(dim))
        B.eliminate_zeros()
        return B


def _sparse_features(data: LRSData, heads: _Heads) -> np.ndarray:
    """Columns of every sample's features on its user's support, (N, k); inactive slots are 0."""
    flat = (np.arange(data.n_samples) * data.dim)[:, None] + heads.S[data.row_user]
    return data.X.ravel()[flat] * heads.active[data.row_user]


def _refit_on_support(data: LRSData, XU: np.ndarray, z: np.ndarray, heads: _Heads, ridge: float):
    """Joint least squares of every user's (w_i, b_i restricted to its support); updates
    ``heads`` in place and returns the per-sample residual."""
    r = XU.shape[1]
    F = np.concatenate([XU, _sparse_features(data, heads)], axis=1)
    p = F.shape[1]
    G = data.segment_gram(F)
    rhs = data.segment_sum(F, row_weights=z)
    scale = np.trace(G, axis1=1, axis2=2) / max(p, 1)
    G[:, np.arange(p), np.arange(p)] += (ridge * scale + 1e-12)[:, None]
    # an inactive slot has a zero feature column; a unit diagonal pins its coefficient to 0
    G[:, np.arange(r, p), np.arange(r, p)] += ~heads.active
    coef = np.linalg.solve(G, rhs[..., None])[..., 0]
    heads.W = coef[:, :r]
    heads.V = coef[:, r:] * heads.active
    return z - np.einsum("np,np->n", F, coef[data.row_user])


def _select_support(candidate: np.ndarray, sparsity: int, threshold: float | None):
    """Top-``sparsity`` magnitudes per row; with ``threshold`` also drop entries below it."""
    mag = np.abs(candidate)
    if sparsity < candidate.shape[1]:
        S = np.argpartition(-mag, sparsity - 1, axis=1)[:, :sparsity]
    else:
        S = np.broadcast_to(np.arange(candidate.shape[1]), candidate.shape).copy()
    S.sort(axis=1)
    kept = np.take_along_axis(mag, S, axis=1)
    active = kept > 0 if threshold is None else kept > threshold
    return S, active


def _user_step_sizes(data: LRSData, step: str, step_scale: float) -> np.ndarray:
    counts = np.maximum(data.counts, 1).astype(np.float64)
    if step == "inverse_count":
        return step_scale / counts
    sq_norm = np.ones(data.n_users)
    for users, rows in data.iter_batches(data.dim):
        sq_norm[users] = np.linalg.norm(data.X[rows], ord=2, axis=(1, 2)) ** 2
    return step_scale / np.maximum(sq_norm, 1e-12)


def _subspace_pursuit_candidate(data, XU, z, heads: _Heads, grad: np.ndarray, ridge: float):
    """Refit of (w_i, b_i) on the current support merged with the ``k`` largest off-support
    gradient entries, as a dense (t, d) candidate for the top-``k`` selection."""
    k = heads.S.shape[1]
    on_support = np.zeros(grad.shape, dtype=bool)
    np.put_along_axis(on_support, heads.S, heads.active, axis=1)
    score = np.where(on_support, -1.0, np.abs(grad))  # active entries can never be added again
    added = np.argpartition(-score, k - 1, axis=1)[:, :k]
    merged = _Heads(heads.W.copy(), np.concatenate([heads.S, added], axis=1), None,
                    np.concatenate([heads.active, np.ones_like(heads.active)], axis=1))
    _refit_on_support(data, XU, z, merged, ridge)
    candidate = np.zeros(grad.shape)
    np.put_along_axis(candidate, added, merged.V[:, k:], axis=1)
    # active support values last: an added index never repeats an active one
    current = np.take_along_axis(candidate, heads.S, axis=1)
    np.put_along_axis(candidate, heads.S, np.where(heads.active, merged.V[:, :k], current), axis=1)
    return candidate


def fit_user_parameters(
    data: LRSData,
    U: np.ndarray,
    sparsity: int,
    heads: _Heads | None = None,
    *,
    offset: np.ndarray | None = None,
    inner_iters: int = 10,
    step: str = "inverse_count",
    step_scale: float = 1.0,
    threshold: float | None = None,
    pursuit: str = "subspace",
    ridge: float = 1e-10,
) -> tuple[_Heads, np.ndarray, int]:
    """Fit every user's head ``w_i`` and ``k``-sparse ``b_i`` given the shared ``U``.

    Hard-thresholding pursuit per user, batched over users: gradient step on the residual
    (step ``step_scale / m_i`` or ``step_scale / ||X_i||_2^2``), keep the ``sparsity`` largest
    magnitudes (and, with ``threshold``, only those above it), refit ``(w_i, b_i)`` jointly by
    least squares on the support (``pursuit="htp"``). ``pursuit="subspace"`` (subspace pursuit,
    the default) instead refits on the union of the support and the ``k`` largest off-support gradient
    entries and keeps the ``k`` largest refitted values (users with fewer than ``r + 2k``
    samples, for whom that refit is underdetermined, keep the HTP step). Starts from ``heads`` (warm start) when given. ``offset``
    (N,) is a known per-sample prediction subtracted from ``y`` first.
    Returns the heads, the per-sample residual, and the number of inner iterations run.
    """
    t, r = data.n_users, U.shape[1]
    z = data.y if offset is None else data.y - offset
    XU = data.X @ U
    if heads is None:
        heads = _Heads.empty(t, r, sparsity)
    residual = _refit_on_support(data, XU, z, heads, ridge)
    if sparsity == 0:
        return heads, residual, 0
    eta = _user_step_sizes(data, step, step_scale)
    # An iteration changes a user only through its own state, so a user whose support did
    # not change has reached its fixed point: later iterations only revisit changed users.
    pending = np.arange(t)
    iterations = 0
    for iterations in range(1, inner_iters + 1):
        if len(pending) == t:
            part, rows, part_heads = data, slice(None), heads
        else:
            part, rows = data.subset_users(pending)
            part_heads = heads.take(pending)
        part_XU, part_z = XU[rows], z[rows]
        grad = part.segment_sum(part.X, row_weights=residual[rows])
        candidate = part_heads.dense_sparse_part(data.dim) + eta[pending, None] * grad
        if pursuit == "subspace":
            # the merged refit has r + 2k unknowns; users with fewer samples keep the HTP step
            enough = part.counts >= r + 2 * sparsity
            candidate[enough] = _subspace_pursuit_candidate(
                part, part_XU, part_z, part_heads, grad, ridge)[enough]
        S, active = _select_support(candidate, sparsity, threshold)
        changed = np.any(S != part_heads.S, axis=1) | np.any(active != part_heads.active, axis=1)
        if not changed.any():
            break
        part_heads.S, part_heads.active = S, active
        residual[rows] = _refit_on_support(part, part_XU, part_z, part_heads, ridge)
        if part_heads is not heads:
            heads.put(pending, part_heads)
        pending = pending[changed]
    return heads, residual, iterations


def solve_shared_factor(
    data: LRSData,
    heads: _Heads,
    aggregator,
    U_start: np.ndarray,
    user_weights: np.ndarray | None = None,
    cg_tol: float = 1e-10,
    cg_maxiter: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``U`` over all users given the heads, then QR-orthonormalised.

    Returns the orthonormal ``U`` and the heads ``W`` with the triangular factor absorbed.
    """
    d, r = data.dim, heads.W.shape[1]
    z = data.y - np.einsum("nk,nk->n", _sparse_features(data, heads), heads.V[data.row_user])
    stats = normal_equation_statistics(data, heads.W, z, user_weights)
    A, b = aggregator.aggregate_normal_equations(stats)
    if isinstance(A, np.ndarray):
        A = A + (1e-12 * np.trace(A) / A.shape[0] + 1e-300) * np.eye(A.shape[0])
        vec_u = scipy.linalg.solve(A, b, assume_a="sym")
    else:
        vec_u, _ = cg(A, b, x0=U_start.ravel(order="F"), M=stats.preconditioner(), rtol=cg_tol,
                      maxiter=cg_maxiter)
    Q, R = np.linalg.qr(vec_u.reshape(d, r, order="F"))
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * signs, heads.W @ (R * signs[:, None]).T


def residual_weights(data: LRSData, residual: np.ndarray, cutoff: float) -> np.ndarray:
    """Robustness weights of the U step: users whose mean squared residual exceeds ``cutoff``
    times the median over users get weight ``cutoff * median / their value`` (else 1), so
    users whose support is still wrong cannot drag ``U`` toward their error."""
    mse = data.segment_sum(residual**2) / np.maximum(data.counts, 1)
    scale = np.median(mse[data.counts > 0])
    return np.minimum(1.0, cutoff * scale / np.maximum(mse, 1e-300))


def keep_better_fit(data: LRSData, first: tuple, second: tuple) -> tuple:
    """Per user, the one of two ``(heads, residual, iterations)`` fits with the smaller
    residual sum of squares."""
    heads_a, res_a, it_a = first
    heads_b, res_b, it_b = second
    take_b = data.segment_sum(res_b**2) < data.segment_sum(res_a**2)
    merged = _Heads(*(np.where(take_b.reshape((-1,) + (1,) * (a.ndim - 1)), b, a)
                      for a, b in ((heads_a.W, heads_b.W), (heads_a.S, heads_b.S),
                                   (heads_a.V, heads_b.V), (heads_a.active, heads_b.active))))
    return merged, np.where(take_b[data.row_user], res_b, res_a), max(it_a, it_b)


def initial_subspace(data: LRSData, rank: int, aggregator) -> np.ndarray:
    """Method of moments: top-``rank`` eigenvectors of the aggregated ``sum y^2 x x^T``."""
    M = aggregator.aggregate_moment(moment_statistics(data))
    _, vecs = np.linalg.eigh((M + M.T) / 2)
    return vecs[:, ::-1][:, :rank].copy()


# --------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------
@dataclass
class UserFit:
    """Parameters of one (new) user given the shared ``U``: ``theta = U w + b``."""

    w: np.ndarray
    b: np.ndarray
    theta: np.ndarray


class AMHTLRS:
    """Low-rank + sparse per-user linear models by alternating minimisation with hard thresholding.

    Parameters
    ----------
    rank, sparsity:
        ``r`` (columns of the shared ``U``) and ``k`` (non-zeros of each ``b_i``; 0 gives AltMin).
    max_rounds, tol, min_loss:
        Stop after ``max_rounds`` rounds, when the training loss changes by less than ``tol``
        relative to the previous round, or when it falls below ``min_loss`` times the mean
        of ``y^2`` (a numerically exact fit; parameter errors are then about ``sqrt(min_loss)``).
    inner_iters:
        Hard-thresholding iterations per user and round (stops early once no support changes).
    step, step_scale:
        Gradient step of the thresholding: ``"inverse_count"`` (``step_scale / m_i``) or
        ``"spectral"`` (``step_scale / ||X_i||_2^2``, the conservative choice).
    threshold, threshold_init, threshold_decay:
        ``"topk"`` keeps the ``k`` largest magnitudes; ``"value"`` (the theory's schedule) also
        drops entries below ``threshold_init * threshold_decay**round`` (default initial value:
        the root mean square of ``y``).
    pursuit:
        ``"htp"`` (gradient step, top-``k``, refit) or ``"subspace"`` (subspace pursuit: refit
        on the support merged with the ``k`` largest off-support gradient entries, keep the
        ``k`` largest); see :func:`fit_user_parameters`.
    sample_splitting:
        ``None`` uses all samples every round; an integer ``K >= 2`` splits every user's samples
        into ``K`` disjoint folds: fold 0 for the initialisation, folds ``1..K-1`` in turn for
        the rounds; the final per-user fit uses all samples.
    restarts:
        Every round also fit each user from scratch (``b = 0``) and keep, per user, the fit
        with the smaller residual; lets users leave a wrong support found under an early ``U``.
    robust_cutoff:
        ``None`` weighs every user equally in the U step; a number ``c`` down-weights users
        whose mean squared residual exceeds ``c`` times the median (see :func:`residual_weights`).
        Off by default because the median combines all users' data outside the aggregator
        (not allowed under privacy); the synthetic experiments set 10.
    u_solver:
        ``"exact"`` (dense ``dr x dr`` normal equations) or ``"cg"`` (preconditioned conjugate
        gradients, matrix-free). Ignored when ``aggregator`` is given.
    aggregator:
        Combines the per-user shared statistics (see the module docstring); default sums.
    ridge:
        Relative ridge of the per-user solves (keeps users with few samples well posed).
    random_state:
        Seed of the sample-splitting folds.
    callback:
        ``callback(U, W, B) -> dict`` called after every round's per-user step; its entries
        are added to ``history_`` (used to track errors against a known truth).
    """

    def __init__(
        self,
        rank: int,
        sparsity: int,
        *,
        max_rounds: int = 50,
        tol: float = 1e-6,
        min_loss: float = 1e-12,
        inner_iters: int = 10,
        step: str = "inverse_count",
        step_scale: float = 1.0,
        threshold: str = "topk",
        threshold_init: float | None = None,
        threshold_decay: float = 0.7,
        pursuit: str = "subspace",
        sample_splitting: int | None = None,
        restarts: bool = False,
        robust_cutoff: float | None = None,
        u_solver: str = "cg",
        aggregator=None,
        ridge: float = 1e-10,
        random_state: int | None = None,
        callback: Callable | None = None,
    ) -> None:
        self.rank = rank
        self.sparsity = sparsity
        self.max_rounds = max_rounds
        self.tol = tol
        self.min_loss = min_loss
        self.inner_iters = inner_iters
        self.step = step
        self.step_scale = step_scale
        self.threshold = threshold
        self.threshold_init = threshold_init
        self.threshold_decay = threshold_decay
        self.pursuit = pursuit
        self.sample_splitting = sample_splitting
        self.restarts = restarts
        self.robust_cutoff = robust_cutoff
        self.u_solver = u_solver
        self.aggregator = aggregator
        self.ridge = ridge
        self.random_state = random_state
        self.callback = callback

    # -- validation ------------------------------------------------------------------
    def _check_params(self, dim: int) -> None:
        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if not is_int(self.rank) or not 1 <= self.rank <= dim:
            raise ValueError(f"rank must be an integer in [1, d={dim}], got {self.rank!r}")
        if not is_int(self.sparsity) or not 0 <= self.sparsity <= dim:
            raise ValueError(f"sparsity must be an integer in [0, d={dim}], got {self.sparsity!r}")
        if not is_int(self.max_rounds) or self.max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer, got {self.max_rounds!r}")
        if not is_int(self.inner_iters) or self.inner_iters < 1:
            raise ValueError(f"inner_iters must be a positive integer, got {self.inner_iters!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be non-negative, got {self.tol!r}")
        if not self.min_loss >= 0:
            raise ValueError(f"min_loss must be non-negative, got {self.min_loss!r}")
        if self.step not in ("inverse_count", "spectral"):
            raise ValueError(f"step must be 'inverse_count' or 'spectral', got {self.step!r}")
        if not self.step_scale > 0:
            raise ValueError(f"step_scale must be positive, got {self.step_scale!r}")
        if self.threshold not in ("topk", "value"):
            raise ValueError(f"threshold must be 'topk' or 'value', got {self.threshold!r}")
        if not 0 < self.threshold_decay <= 1:
            raise ValueError(f"threshold_decay must be in (0, 1], got {self.threshold_decay!r}")
        if self.pursuit not in ("htp", "subspace"):
            raise ValueError(f"pursuit must be 'htp' or 'subspace', got {self.pursuit!r}")
        if self.sample_splitting is not None and (
            not is_int(self.sample_splitting) or self.sample_splitting < 2
        ):
            raise ValueError(
                f"sample_splitting must be None or an integer >= 2, got {self.sample_splitting!r}"
            )
        if self.robust_cutoff is not None and not self.robust_cutoff > 0:
            raise ValueError(f"robust_cutoff must be None or positive, got {self.robust_cutoff!r}")
        if self.u_solver not in ("exact", "cg"):
            raise ValueError(f"u_solver must be 'exact' or 'cg', got {self.u_solver!r}")
        if not self.ridge >= 0:
            raise ValueError(f"ridge must be non-negative, got {self.ridge!r}")

    def _check_data(self, data: LRSData) -> None:
        unknowns = self.rank + self.sparsity
        if data.counts.max() < unknowns:
            raise ValueError(
                f"every user has fewer samples (at most {data.counts.max()}) than unknowns per "
                f"user (rank + sparsity = {unknowns}); X/users cannot identify the model"
            )

    # -- fitting ---------------------------------------------------------------------
    def _folds(self, data: LRSData) -> list[LRSData]:
        K = self.sample_splitting
        rng = np.random.default_rng(self.random_state)
        position = np.arange(data.n_samples) - data.indptr[data.row_user]
        shift = rng.integers(0, K, size=data.n_users)[data.row_user]
        permuted = rng.permutation(data.n_samples)
        # a random but balanced fold per user: position within the user, shuffled per user
        rank_in_user = np.empty(data.n_samples, dtype=np.int64)
        order = np.lexsort((permuted, data.row_user))
        rank_in_user[order] = position
        fold = (rank_in_user + shift) % K
        return [data.subset_rows(fold == f) for f in range(K)]

    def fit(self, X, y, users, n_users: int | None = None) -> "AMHTLRS":
        """Learn ``U_``, ``W_`` and ``B_`` from stacked samples ``X`` (N, d), ``y`` (N,) and
        integer ``users`` (N,). Users in ``range(n_users)`` without samples get ``w = b = 0``
        and are listed in ``empty_users_`` (with a warning)."""
        data = prepare_data(X, y, users, n_users)
        self._check_params(data.dim)
        self._check_data(data)
        self.n_features_in_ = data.dim
        self.n_users_ = data.n_users
        self.empty_users_ = np.flatnonzero(data.counts == 0)
        if len(self.empty_users_):
            warnings.warn(
                f"{len(self.empty_users_)} user(s) have no samples (e.g. {self.empty_users_[:5].tolist()}); "
                "their parameters are zero (see empty_users_)",
                stacklevel=2,
            )
        aggregator = self.aggregator or SumAggregator(self.u_solver)
        if self.sample_splitting:
            folds = self._folds(data)
            init_data, round_data = folds[0], folds[1:]
        else:
            init_data, round_data = data, [data]
        threshold0 = self.threshold_init
        if self.threshold == "value" and threshold0 is None:
            threshold0 = float(np.sqrt(np.mean(data.y**2)))

        start = time.perf_counter()
        U = initial_subspace(init_data, self.rank, aggregator)
        heads = None
        self.history_ = []
        previous_loss = np.nan  # no comparison in the first round
        converged = False
        for rnd in range(self.max_rounds):
            batch = round_data[rnd % len(round_data)]
            options = self._user_options(threshold0, rnd)
            fitted = fit_user_parameters(batch, U, self.sparsity, heads, **options)
            if self.restarts and heads is not None and self.sparsity:
                fitted = keep_better_fit(
                    batch, fitted, fit_user_parameters(batch, U, self.sparsity, None, **options)
                )
            heads, residual, inner = fitted
            loss = float(np.mean(residual**2))
            record = {"round": rnd, "loss": loss, "inner_iterations": inner,
                      "seconds": time.perf_counter() - start}
            if self.callback is not None:
                record.update(self.callback(U, heads.W, heads.sparse_matrix(data.dim)))
            self.history_.append(record)
            exact_fit = loss <= self.min_loss * np.mean(batch.y**2)
            if exact_fit or abs(previous_loss - loss) <= self.tol * previous_loss:
                converged = True
                break
            previous_loss = loss
            weights = None
            if self.robust_cutoff is not None:
                weights = residual_weights(batch, residual, self.robust_cutoff)
            # an inexact U step suffices while the model error is large: solve to a tenth of
            # the typical (median over users) relative residual, within [1e-12, 1e-4]; the
            # median ignores users stuck on a wrong support (only the CG solver uses it)
            user_mse = batch.segment_sum(residual**2)[batch.counts > 0] / batch.counts[batch.counts > 0]
            cg_tol = float(np.clip(0.1 * np.sqrt(np.median(user_mse) / np.mean(batch.y**2)), 1e-12, 1e-4))
            U, heads.W = solve_shared_factor(batch, heads, aggregator, U, weights, cg_tol=cg_tol)
        if self.sample_splitting or not converged:
            heads, residual, _ = fit_user_parameters(
                data, U, self.sparsity, heads, **self._user_options(threshold0, len(self.history_))
            )
        self.n_rounds_ = len(self.history_)
        self.converged_ = converged
        self.fit_seconds_ = time.perf_counter() - start
        self.train_loss_ = float(np.mean(residual**2))
        self._set_fitted(U, heads)
        return self

    def _user_options(self, threshold0: float | None, rnd: int) -> dict:
        """Options of the per-user step in round ``rnd`` (``threshold0=None``: top-k only)."""
        threshold = None
        if self.threshold == "value" and threshold0 is not None:
            threshold = threshold0 * self.threshold_decay**rnd
        return dict(inner_iters=self.inner_iters, step=self.step, step_scale=self.step_scale,
                    threshold=threshold, pursuit=self.pursuit, ridge=self.ridge)

    def _set_fitted(self, U: np.ndarray, heads: _Heads) -> None:
        self._heads = heads
        self.U_ = U
        self.W_ = heads.W
        self.B_ = heads.sparse_matrix(U.shape[0])
        self.theta_ = self.W_ @ U.T + self.B_.toarray()

    # -- using a fitted model --------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "U_"):
            raise RuntimeError("this AMHTLRS instance is not fitted yet; call fit first")

    def predict(self, X, users) -> np.ndarray:
        """Predictions ``<x_j, theta_{users_j}>`` for samples of known users."""
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        users = _as_user_ids(users)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (N, {self.n_features_in_}), got {X.shape}")
        if len(users) != len(X):
            raise ValueError(f"X and users must have the same length, got {len(X)} and {len(users)}")
        if len(users) and users.max() >= self.n_users_:
            raise ValueError(f"users contains id {users.max()} but the model has {self.n_users_} users")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values")
        return np.einsum("nd,nd->n", X, self.theta_[users])

    def fit_user(self, X_u, y_u) -> UserFit:
        """Fit a new user's ``(w, b)`` from its samples given the learned ``U_`` (the support
        is the top-``k`` one; no value threshold)."""
        self._check_fitted()
        X_u = np.asarray(X_u, dtype=np.float64)
        if X_u.ndim != 2 or X_u.shape[1] != self.n_features_in_:
            raise ValueError(f"X_u must have shape (m, {self.n_features_in_}), got {X_u.shape}")
        data = prepare_data(X_u, y_u, np.zeros(len(X_u), dtype=np.int64))
        heads, _, _ = fit_user_parameters(
            data, self.U_, self.sparsity, **self._user_options(None, 0)
        )
        b = heads.dense_sparse_part(self.n_features_in_)[0]
        w = heads.W[0]
        return UserFit(w=w, b=b, theta=self.U_ @ w + b)
