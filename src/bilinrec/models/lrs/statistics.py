"""The two shared statistics of AMHT-LRS and the aggregator hook.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import LinearOperator

from . import compiled, segment_kernels
from .data import LRSData, _batched_gram, sparse_prediction


# --------------------------------------------------------------------------------------
# Shared statistics and aggregators
# --------------------------------------------------------------------------------------
@dataclass
class MomentStatistics:
    """Per-user moment contributions ``C_i = Z_i^T Z_i`` in factored form (``Z = |y| x``).

    ``Z`` is never stored unless asked for (it is as large as ``X``): :meth:`total` and
    :meth:`per_user_norms` stream over blocks of rows / users.
    """

    data: LRSData
    _Z: np.ndarray | None = None

    @property
    def Z(self) -> np.ndarray:
        """``|y| x`` per sample, (N, d); materialised on first access (as large as ``X``)."""
        if self._Z is None:
            self._Z = self.data.X * np.abs(self.data.y)[:, None]
        return self._Z

    @property
    def n_users(self) -> int:
        return self.data.n_users

    def total(self, weights: np.ndarray | None = None, block_dtype=np.float64) -> np.ndarray:
        """``sum_i weights_i C_i`` (plain sum without weights), shape (d, d); ``block_dtype``: the
        precision of each 1,024-row block's product (summed in float64)."""
        # weights[row_user] without making (and caching) row_user
        row_weights = None if weights is None else np.repeat(np.asarray(weights), self.data.counts)
        return segment_kernels.weighted_row_gram(self.data.X, np.abs(self.data.y), row_weights, block_dtype)

    def per_user_norms(self) -> np.ndarray:
        """Frobenius norm of every user's contribution ``C_i``, shape (t,)."""
        return segment_kernels.segment_gram_norms_scaled(self.data, np.abs(self.data.y))


def moment_statistics(data: LRSData) -> MomentStatistics:
    """The per-user contributions to ``M = sum_i sum_j y_ij^2 x_ij x_ij^T``."""
    return MomentStatistics(data)


@dataclass
class NormalEquationStatistics:
    """Per-user contributions to the U-step normal equations (see the module docstring).

    ``A_i = c_i (w_i w_i^T) kron (X_i^T X_i)``, ``b_i = c_i w_i kron X_i^T z_i`` with ``z_i``
    the targets minus the sparse part, ``z_ij = y_ij - <x_ij, b_i>``, and ``c_i`` the
    estimator's robustness weights ``user_weights`` (all 1 unless down-weighting is enabled).
    The ``weights`` argument of every method multiplies these (e.g. clipping factors).

    ``z`` is given, or ``None`` with the per-user ``heads`` (their sparse parts ``b_i``): then
    ``z`` is formed from each row of ``X`` inside the passes that need it (one pass over ``X``
    and an (N,) array less per U step); :attr:`targets` materialises it on request.

    ``residual`` (optional, N): the per-user step's residual ``z_ij - <x_ij, U0 w_i>`` at the
    ``U0`` that step used. Then :meth:`rhs` without ``weights`` also forms, in the same pass,
    ``start_residual = b - A vec(U0)`` (``sum_i c_i (X_i^T residual_i) w_i^T``), so that CG
    started at ``U0`` needs no product for its first residual.

    ``products`` (optional): that pair ``(b, start_residual)`` as (d, r) matrices, already summed
    by the per-user step (:func:`~bilinrec.models.lrs.user_step.fit_user_parameters` with
    ``normal_rhs=True``); :meth:`rhs` without weights then makes no pass over ``X``. It holds
    the plain sums, so it is not used with robustness weights.
    """

    data: LRSData
    W: np.ndarray
    z: np.ndarray | None
    user_weights: np.ndarray | None = None
    heads: object | None = None
    residual: np.ndarray | None = None
    start_residual: np.ndarray | None = None
    products: tuple | None = None
    _xz_norms: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return self.data.n_users

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.dim, self.W.shape[1]

    @property
    def targets(self) -> np.ndarray:
        """``z`` (N,): the given one, or formed from ``y`` and the heads' sparse parts."""
        if self.z is not None:
            return self.z
        return self.data.y - sparse_prediction(self.data, self.heads)

    def _xz_args(self) -> tuple:
        """``z`` and ``heads`` arguments of the ``X_i^T z_i`` kernels (``z = y`` minus the sparse part)."""
        return (self.z, None) if self.z is not None else (self.data.y, self.heads)

    @property
    def xz_norms(self) -> np.ndarray:
        """Per-user ``|X_i^T z_i|``, (t,); computed once (a clipping aggregator needs them)."""
        if self._xz_norms is None:
            if compiled.ENABLED:
                self._xz_norms = segment_kernels.segment_xz_norms(self.data, *self._xz_args())
            else:
                self._xz_norms = np.linalg.norm(self.data.segment_sum(self.data.X, row_weights=self.targets), axis=1)
        return self._xz_norms

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
        if c is None and self.products is not None:
            b, start = self.products
            self.start_residual = start.ravel(order="F")
            return b.ravel(order="F")
        # sum_i (X_i^T z_i) (c_i w_i)^T: no (N, r) temporaries; the kernel keeps no (t, d) array either
        Wc = self.W if c is None else self.W * c[:, None]
        if compiled.ENABLED:
            z, heads = self._xz_args()
            if weights is None and self.residual is not None:
                b, start = segment_kernels.segment_xz_product(self.data, z, Wc, heads, self.residual)
                self.start_residual = start.ravel(order="F")
                return b.ravel(order="F")
            return segment_kernels.segment_xz_product(self.data, z, Wc, heads).ravel(order="F")
        xz = self.data.segment_sum(self.data.X, row_weights=self.targets)
        return (xz.T @ Wc).ravel(order="F")

    def gram(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Dense ``sum_i weights_i A_i``, shape (d r, d r); cost O(N d^2 + t r^2 d^2)."""
        d, r = self.shape
        c = self._weights(weights)
        grams = self.data.user_grams()
        if grams is not None:
            # (t, r, r) products only here: the streamed path forms them per block of users
            coef = self.W[:, :, None] * self.W[:, None, :]
            if c is not None:
                coef = coef * c[:, None, None]
            acc = coef.reshape(self.n_users, r * r).T @ grams
            return acc.reshape(r, r, d, d).transpose(0, 2, 1, 3).reshape(d * r, d * r)
        # streamed over blocks of users (segment_kernels.py): never all users' Grams at once
        return segment_kernels.kron_gram(self.data, self.W, c)

    def operator(self, weights: np.ndarray | None = None) -> LinearOperator:
        """Matrix-free ``sum_i weights_i A_i`` (cost O(N d r) per product)."""
        d, r = self.shape
        c = self._weights(weights)

        def matvec(v: np.ndarray) -> np.ndarray:
            # one fused pass over X per product (segment_kernels.py)
            V = np.asarray(v).reshape(d, r, order="F")
            return segment_kernels.kron_matvec(self.data, self.W, c, V).ravel(order="F")

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
        c = np.ones(self.n_users) if self.user_weights is None else self.user_weights
        rhs_norms = c * np.sqrt(np.einsum("ir,ir->i", self.W, self.W)) * self.xz_norms
        return w_sq * gram_norms, rhs_norms


def normal_equation_statistics(
    data: LRSData, W: np.ndarray, z: np.ndarray | None, user_weights: np.ndarray | None = None, heads=None,
    residual: np.ndarray | None = None, products: tuple | None = None,
) -> NormalEquationStatistics:
    """The per-user contributions to the U-step normal equations given heads ``W`` (t, r),
    sparse-corrected targets ``z`` (N,) (or ``None`` and the per-user ``heads``, whose sparse
    parts give ``z`` inside the passes over ``X``), optional robustness weights (t,), the
    optional per-user-step ``residual`` and its ``products`` (see :class:`NormalEquationStatistics`)."""
    return NormalEquationStatistics(data, W, z, user_weights, heads, residual, products=products)


class SumAggregator:
    """Non-private aggregator: plain sums of the per-user contributions.

    ``solver="exact"`` forms the dense ``d r x d r`` system; ``"cg"`` returns a matrix-free
    operator that the estimator solves by preconditioned conjugate gradients.
    ``moment_precision="single"`` (the default) forms the moment's 1,024-row block products in
    float32, summed in float64: about twice the rate, and the moment only starts the rounds (its
    top eigenvectors are ``U0``), so the fixed point does not depend on it; ``"double"`` keeps
    float64 throughout.
    """

    def __init__(self, solver: str = "exact", moment_precision: str = "single") -> None:
        if solver not in ("exact", "cg"):
            raise ValueError(f"solver must be 'exact' or 'cg', got {solver!r}")
        if moment_precision not in ("single", "double"):
            raise ValueError(f"moment_precision must be 'single' or 'double', got {moment_precision!r}")
        self.solver = solver
        self.moment_precision = moment_precision

    def aggregate_moment(self, stats: MomentStatistics) -> np.ndarray:
        return stats.total(block_dtype=np.float32 if self.moment_precision == "single" else np.float64)

    def aggregate_normal_equations(self, stats: NormalEquationStatistics):
        A = stats.gram() if self.solver == "exact" else stats.operator()
        return A, stats.rhs()


