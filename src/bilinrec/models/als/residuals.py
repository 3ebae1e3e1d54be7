"""Row residuals of the ALS normal equations: all at once, per block of rows, and kept exact up
to a pending Gramian term (:class:`SideResiduals`).

**Row residual.** With the other side's factors ``Y`` fixed, row ``u`` of the objective (see
:mod:`.model`) is minimised by the solution of its normal equations ``A_u x_u = b_u`` with::

    A_u = base * Y^T Y + sum_{i in S_u} (c_ui - base) y_i y_i^T + reg_u I,   b_u = sum_{i in S_u} c_ui p_ui y_i

over the row's stored cells ``S_u`` (implicit feedback: ``base = 1``, the Gramian trick for the
unstored cells ``c = 1, p = 0``; explicit: ``base = 0``, ``c = 1``, ``p`` = rating). The row
residual is ``r_u = A_u x_u - b_u`` -- half the gradient of the objective with respect to
``x_u`` -- and its measure is the Euclidean norm ``|r_u|``. Items likewise, with ``X`` fixed.
With biases (explicit feedback) the row is ``[x_u, b_u]`` against ``[y_i, 1]`` with targets
``p_ui - mu - b_i``. A fixed point of ALS is exactly a point where every row residual is 0.

In matrix form, with ``W`` the sparse matrix of per-cell coefficients
``w_ui = (c_ui - base) x_u.y_i - c_ui p_ui``, all residuals at once are
``R_X = base X (Y^T Y) + reg * X + W Y`` and ``R_Y = base Y (X^T X) + reg * Y + W^T X``: one pass
over the cells (``O(nnz k)``) and two GEMMs.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from .threads import kernel_workers

#: The measure of ``ForgetRecord.gap`` for ALS.
RESIDUAL_MEASURE = "max row residual |A_row x_row - b_row|_2 of the normal equations on the reduced data"


@numba.njit(cache=True, parallel=True)
def _row_dots(own, indptr, indices, other, out):  # pragma: no cover - compiled
    for r in numba.prange(indptr.size - 1):
        for n in range(indptr[r], indptr[r + 1]):
            j = indices[n]
            total = 0.0
            for f in range(own.shape[1]):
                total += own[r, f] * other[j, f]
            out[n] = total


@numba.njit(cache=True, parallel=True)
def _block_kernel(own, indptr, indices, conf, target, other, base, wy):  # pragma: no cover - compiled
    for r in numba.prange(indptr.size - 1):
        for n in range(indptr[r], indptr[r + 1]):
            j = indices[n]
            dot = 0.0
            for f in range(own.shape[1]):
                dot += own[r, f] * other[j, f]
            w = (conf[n] - base) * dot - conf[n] * target[n]
            for f in range(own.shape[1]):
                wy[r, f] += w * other[j, f]


@numba.njit(cache=True, parallel=True)
def _block_pair_kernel(old, new, indptr, indices, conf, target, other, base, wy_old,
                       wy_new):  # pragma: no cover - compiled
    for r in numba.prange(indptr.size - 1):
        for n in range(indptr[r], indptr[r + 1]):
            j = indices[n]
            d_old = 0.0
            d_new = 0.0
            for f in range(old.shape[1]):
                d_old += old[r, f] * other[j, f]
                d_new += new[r, f] * other[j, f]
            w_old = (conf[n] - base) * d_old - conf[n] * target[n]
            w_new = (conf[n] - base) * d_new - conf[n] * target[n]
            for f in range(old.shape[1]):
                wy_old[r, f] += w_old * other[j, f]
                wy_new[r, f] += w_new * other[j, f]


def _cell_dots(own: np.ndarray, indptr: np.ndarray, indices: np.ndarray, other: np.ndarray,
               workers: int = 1) -> np.ndarray:
    """``own[r] . other[indices[n]]`` for every cell ``n`` of row ``r`` of a CSR layout (float64),
    read straight from the factors (compiled; rows in parallel over ``workers`` threads)."""
    out = np.empty(indices.size, dtype=np.float64)
    with kernel_workers(workers):
        _row_dots(np.ascontiguousarray(own, np.float64), indptr.astype(np.int64, copy=False),
                  indices.astype(np.int64, copy=False), np.ascontiguousarray(other, np.float64), out)
    return out


def block_cell_terms(own: np.ndarray, indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray, target: np.ndarray,
           other: np.ndarray, base: float, workers: int) -> np.ndarray:
    """A compact block's cell terms ``sum_j w_j y_j``, ``w = (c - base) x.y - c p``, per row (one
    compiled pass over the cells)."""
    wy = np.zeros((indptr.size - 1, other.shape[1]), dtype=np.float64)
    with kernel_workers(workers):
        _block_kernel(np.ascontiguousarray(own, np.float64), indptr, indices, conf, target,
                      np.ascontiguousarray(other, np.float64), float(base), wy)
    return wy


def block_cell_terms_pair(old: np.ndarray, new: np.ndarray, indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray,
                target: np.ndarray, other: np.ndarray, base: float, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`block_cell_terms` of two versions of the same rows in one pass over the cells: ``(wy_old, wy_new)``."""
    wy_old = np.zeros((indptr.size - 1, other.shape[1]))
    wy_new = np.zeros((indptr.size - 1, other.shape[1]))
    with kernel_workers(workers):
        _block_pair_kernel(np.ascontiguousarray(old, np.float64), np.ascontiguousarray(new, np.float64), indptr,
                           indices, conf, target, np.ascontiguousarray(other, np.float64), float(base), wy_old,
                           wy_new)
    return wy_old, wy_new


def row_regularization(regularization: float, scaled: bool, counts: np.ndarray) -> np.ndarray:
    """Each row's L2 weight: ``regularization``, times the row's cell count (at least 1) when ``scaled`` (ALS-WR)."""
    if not scaled:
        return np.full(counts.size, float(regularization))
    return regularization * np.maximum(counts, 1.0)


def full_residuals(conf: sp.csr_matrix, U: np.ndarray, V: np.ndarray, *, base: float, explicit: bool,
                   regularization: float, scaled: bool, bias: tuple | None = None,
                   workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Residual vectors of every user and item row (float64) on the data ``conf`` (confidences,
    or ratings for explicit feedback); ``bias = (user_bias, item_bias, global_mean)`` extends the
    rows by the bias coordinate."""
    X, Y = np.asarray(U, np.float64), np.asarray(V, np.float64)
    rows = np.repeat(np.arange(conf.shape[0]), np.diff(conf.indptr))
    cols = conf.indices
    c, p = (np.ones(conf.nnz), conf.data) if explicit else (conf.data, np.ones(conf.nnz))
    dots = _cell_dots(X, conf.indptr, cols, Y, workers)
    against_y, against_x = Y, X  # what a row's coordinates multiply in a prediction
    if bias is not None:  # rows [x_u, b_u] against [y_i, 1]: the bias coordinate predicts itself
        bu, bi, mu = np.asarray(bias[0], np.float64), np.asarray(bias[1], np.float64), float(bias[2])
        dots = dots + bu[rows] + bi[cols]
        p = p - mu
        against_y, against_x = (np.column_stack([Y, np.ones(Y.shape[0])]), np.column_stack([X, np.ones(X.shape[0])]))
        X, Y = np.column_stack([X, bu]), np.column_stack([Y, bi])
    W = sp.csr_matrix(((c - base) * dots - c * p, cols, conf.indptr), shape=conf.shape)
    reg_u = row_regularization(regularization, scaled, np.diff(conf.indptr).astype(np.float64))
    reg_i = row_regularization(regularization, scaled, np.bincount(cols, minlength=conf.shape[1]).astype(np.float64))
    R_U = reg_u[:, None] * X + W @ against_y
    R_I = reg_i[:, None] * Y + W.T @ against_x
    if base:
        R_U += base * (X @ (Y.T @ Y))
        R_I += base * (Y @ (X.T @ X))
    return R_U, R_I


def norms(R: np.ndarray) -> np.ndarray:
    """Euclidean norm of every row of ``R``."""
    return np.sqrt(np.einsum("nk,nk->n", R, R))


#: Relative slack of the residual upper bounds (rounding of the norms they are built from).
BOUND_SLACK = 1e-9


def spectral_norm(D: np.ndarray) -> float:
    """``|D|_2`` of a symmetric matrix (largest absolute eigenvalue)."""
    if not D.any():
        return 0.0
    return float(np.abs(np.linalg.eigvalsh(D)).max())


class SideResiduals:
    """Residual vectors of one side's rows, exact up to one pending Gramian term.

    Row ``u``'s residual is ``R[u] + base F[u] D`` with ``D`` the change of the other side's
    Gramian not yet folded in (``base`` included in ``D``): a re-solve on the other side moves
    *every* row of this side by ``F D``, which is recorded in ``D`` (``O(k^2)``) instead of
    applied (a GEMM over all rows). ``rn`` holds the norms of the rows of ``R``, ``fn`` those of
    the factor rows ``F``. Then ``|R[u] + F[u] D| <= rn[u] + fn[u] |D|_2`` (triangle inequality,
    spectral norm): a rigorous upper bound on every row's residual norm, and only rows whose
    bound exceeds a level are computed exactly (:meth:`over`, :meth:`max`). Nothing is skipped:
    a row below the level by its upper bound is below it exactly.
    """

    def __init__(self, F: np.ndarray, R: np.ndarray, D: np.ndarray, rn: np.ndarray, fn: np.ndarray):
        self.F, self.R, self.D, self.rn, self.fn = F, R, D, rn, fn
        self.dnorm = spectral_norm(D)

    def exact(self, rows: np.ndarray) -> np.ndarray:
        """The exact residual vectors of ``rows`` (float64)."""
        R = self.R[rows]
        if self.dnorm:
            R += self.F[rows].astype(np.float64, copy=False) @ self.D
        return R

    def set(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Rows whose exact residuals are ``vectors`` (after ``F[rows]`` was updated)."""
        F = self.F[rows].astype(np.float64, copy=False)
        stored = vectors - F @ self.D if self.dnorm else vectors
        self.R[rows] = stored
        self.rn[rows] = norms(stored)
        self.fn[rows] = norms(F)

    def refresh(self, rows: np.ndarray) -> None:
        """Re-measure ``rn`` of ``rows`` after ``R[rows]`` was changed in place."""
        self.rn[rows] = norms(self.R[rows])

    def add_gram(self, change: np.ndarray) -> None:
        self.D += change
        self.dnorm = spectral_norm(self.D)

    def upper(self) -> np.ndarray:
        """Upper bounds of every row's residual norm (exact when nothing is pending)."""
        if not self.dnorm:
            return self.rn
        return (self.rn + self.fn * self.dnorm) * (1.0 + BOUND_SLACK)

    def over(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows, exact residual norms) of every row whose residual exceeds ``level``, ascending rows."""
        cand = np.flatnonzero(self.upper() > level)
        if not self.dnorm:
            n = self.rn[cand]
        else:
            n = norms(self.exact(cand))
        keep = n > level
        return cand[keep], n[keep]

    def max(self, chunk: int = 4096) -> tuple[float, int]:
        """(exact largest residual norm, rows computed exactly for it): rows by decreasing upper
        bound, until the next bound is no more than the largest exact norm found."""
        if self.rn.size == 0:
            return 0.0, 0
        if not self.dnorm:
            return float(self.rn.max()), 0
        ub = self.upper()
        low = float((self.rn - self.fn * self.dnorm).max()) * (1.0 - BOUND_SLACK)
        cand = np.flatnonzero(ub >= low)
        cand = cand[np.argsort(-ub[cand], kind="stable")]
        best, done = 0.0, 0
        for start in range(0, cand.size, chunk):
            if ub[cand[start]] <= best:
                break
            rows = cand[start:start + chunk]
            best = max(best, float(norms(self.exact(rows)).max()))
            done += rows.size
        return best, done

    def materialized(self) -> np.ndarray:
        """Every row's exact residual vector (one GEMM when a Gramian change is pending)."""
        if not self.dnorm:
            return self.R.copy()
        return self.R + self.F.astype(np.float64, copy=False) @ self.D
