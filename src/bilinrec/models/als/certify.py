"""Row residuals of the ALS normal equations, and the certified local forget.

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

**Certified forget** (:func:`certified_forget`): the per-row residual vectors of the original
model are known (computed once, see ``ALS.max_row_residual``). Deleting cells changes the
equations of their users and items only: the deleted cells' terms are taken out of those
residuals (``O(k)`` a cell). Every user and then every item of a deleted cell is re-solved
exactly on the reduced data, whatever its residual (a user with no cells left becomes exactly
zero, as after retraining); then, largest first, the rows over the caller's absolute tolerance
are re-solved, one side per round, and every residual is kept exact: re-solving rows ``S``
changes the cell terms of the rows' own cells (applied, ``O(cells of S * k)``) and the other
side's Gramian by ``dG = X'_S^T X'_S - X_S^T X_S``, which moves every other-side residual by
``base * y_i dG``. That term is kept pending (:class:`SideResiduals`: ``r_i = R_i + y_i D``),
and rows are screened by the rigorous bound ``|R_i| + |y_i| |D|_2``; only rows whose bound
exceeds a level are computed exactly, so no row is left unchecked and the final maximum is exact.

**Cost.** Removing a user moves the Gramian term of every item; with a tight tolerance that pushes
the most popular items over it, and building their normal matrices from their cells is a large
part of the data. So the residual state also caches the cell Grams ``S_r`` of the rows with the
most cells (:class:`RowGrams`, kept exact: entries whose other-side rows changed are dropped,
deleted cells subtracted), and the re-solved items' cell terms reach the users in one compiled
pass over the data's CSR rows, with no gather or sort.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from ..fastmath import FASTMATH
from .solvers import _row_chunks, _spd_solve
from .threads import kernel_threads, kernel_workers

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


@numba.njit(cache=True, nogil=True)
def _gather_rows(other, indptr, indices, weight, chunk, feats, weighted):  # pragma: no cover - compiled
    # the cells of block rows chunk[a] as padded (a, cell, factor) rows of other, and weighted
    for a in range(chunk.size):
        lo = indptr[chunk[a]]
        for t in range(indptr[chunk[a] + 1] - lo):
            w = weight[lo + t]
            j = indices[lo + t]
            for f in range(other.shape[1]):
                feats[a, t, f] = other[j, f]
                weighted[a, t, f] = w * other[j, f]


@numba.njit(cache=True)
def _by_destination(indices, n_out):  # pragma: no cover - compiled
    # a stable counting sort of the cells by destination row: (order, starts), cells of row j at
    # order[starts[j]:starts[j + 1]], in cell order
    starts = np.zeros(n_out + 1, dtype=np.int64)
    for n in range(indices.size):
        starts[indices[n] + 1] += 1
    for j in range(n_out):
        starts[j + 1] += starts[j]
    fill = starts[:-1].copy()
    order = np.empty(indices.size, dtype=np.int64)
    for n in range(indices.size):
        j = indices[n]
        order[fill[j]] = n
        fill[j] += 1
    return order, starts


@numba.njit(cache=True, inline="always", fastmath=FASTMATH)
def _cell_change(acc, dest_row, c, p, base, new_row, old_row):  # pragma: no cover - compiled
    # acc += w_new new_row - w_old old_row, w = (c - base) dest_row . row - c p: the change of a
    # destination row's residual when the source row of one of its cells moves from old to new
    k = acc.size
    d_old = 0.0
    d_new = 0.0
    for f in range(k):
        d_old += dest_row[f] * old_row[f]
        d_new += dest_row[f] * new_row[f]
    w_old = (c - base) * d_old - c * p
    w_new = (c - base) * d_new - c * p
    for f in range(k):
        acc[f] += w_new * new_row[f] - w_old * old_row[f]


@numba.njit(cache=True, inline="always")
def _add_row(out, rn, hit, j, acc):  # pragma: no cover - compiled
    total = 0.0
    for f in range(acc.size):
        out[j, f] += acc[f]
        total += out[j, f] * out[j, f]
    rn[j] = np.sqrt(total)
    hit[j] = True


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def _scatter_kernel(out, rn, hit, dest, order, starts, cell_row, conf, target, base, new, old,
                    n_parts):  # pragma: no cover - compiled
    # part c owns the destination rows c, c + n_parts, ... (interleaved: popularity is often skewed
    # by row id): each row is read and written once, its terms summed in cell order (whatever
    # n_parts is); the source rows (new, old) stay in cache
    n_out = starts.size - 1
    for c in numba.prange(n_parts):
        acc = np.empty(out.shape[1])
        for j in range(c, n_out, n_parts):
            if starts[j] == starts[j + 1]:
                continue
            acc[:] = 0.0
            for m in range(starts[j], starts[j + 1]):
                n = order[m]
                r = cell_row[n]
                _cell_change(acc, dest[j], conf[n], target[n], base, new[r], old[r])
            _add_row(out, rn, hit, j, acc)


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def _csr_scatter_kernel(out, rn, hit, dest, indptr, indices, data, a, b, explicit, base, slot, new, old, deleted,
                        n_cols, n_parts):  # pragma: no cover - compiled
    # every stored cell of X (CSR, destination rows) whose column has a slot (a re-solved row) and
    # is not deleted: one pass over the column indices, no gather and no sort (rows split as in
    # _scatter_kernel)
    n_out = indptr.size - 1
    for c in numba.prange(n_parts):
        acc = np.empty(out.shape[1])
        for j in range(c, n_out, n_parts):
            any_cell = False
            at = np.searchsorted(deleted, j * n_cols)
            for n in range(indptr[j], indptr[j + 1]):
                s = slot[indices[n]]
                if s < 0:
                    continue
                key = j * n_cols + indices[n]
                while at < deleted.size and deleted[at] < key:
                    at += 1
                if at < deleted.size and deleted[at] == key:
                    continue
                if not any_cell:
                    acc[:] = 0.0
                    any_cell = True
                v = a + b * data[n]
                if explicit:
                    _cell_change(acc, dest[j], 1.0, v, base, new[s], old[s])
                else:
                    _cell_change(acc, dest[j], v, 1.0, base, new[s], old[s])
            if any_cell:
                _add_row(out, rn, hit, j, acc)


def _scatter(opposite: SideResiduals, indptr, indices, conf, target, base: float, new, old,
             workers: int) -> np.ndarray:
    """Move the residuals of the other side's rows by the cell terms of re-solved rows (block rows
    ``old`` -> ``new``, their cells in CSR ``indptr, indices`` with ``conf, target``; coefficients
    ``w = (c - base) x.y - c p`` from the destination's factor row): cells sorted by destination
    once, then every destination row accumulated, written and re-measured once, rows split over
    ``workers`` threads. Returns the mask of rows written."""
    parts = kernel_threads(workers)
    hit = np.zeros(opposite.rn.size, dtype=bool)
    order, starts = _by_destination(indices.astype(np.int64, copy=False), opposite.rn.size)
    cell_row = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    with kernel_workers(parts):
        _scatter_kernel(opposite.R, opposite.rn, hit, opposite.F, order, starts, cell_row, conf, target, float(base),
                        np.ascontiguousarray(new, np.float64), np.ascontiguousarray(old, np.float64), parts * 8)
    return hit


def _scatter_csr(opposite: SideResiduals, local: LocalRows, rows: np.ndarray, base: float, new, old,
                 workers: int) -> np.ndarray:
    """:func:`_scatter` of re-solved items ``rows`` to the users, read from the data's CSR rows
    in one pass (no gather, no sort): for the popular items a forget re-solves, whose cells are a
    large part of the data. Returns the mask of users written."""
    X = local.X
    parts = kernel_threads(workers)
    hit = np.zeros(opposite.rn.size, dtype=bool)
    slot = np.full(X.shape[1], -1, dtype=np.int64)
    slot[rows] = np.arange(rows.size)
    with kernel_workers(parts):
        _csr_scatter_kernel(opposite.R, opposite.rn, hit, opposite.F, X.indptr, X.indices, X.data,
                            float(local.affine[0]), float(local.affine[1]), local.explicit, float(base), slot,
                            np.ascontiguousarray(new, np.float64), np.ascontiguousarray(old, np.float64),
                            local.deleted, np.int64(X.shape[1]), parts * 8)
    return hit


def _cell_dots(own: np.ndarray, indptr: np.ndarray, indices: np.ndarray, other: np.ndarray,
               workers: int = 1) -> np.ndarray:
    """``own[r] . other[indices[n]]`` for every cell ``n`` of row ``r`` of a CSR layout (float64),
    read straight from the factors (compiled; rows in parallel over ``workers`` threads)."""
    out = np.empty(indices.size, dtype=np.float64)
    with kernel_workers(workers):
        _row_dots(np.ascontiguousarray(own, np.float64), indptr.astype(np.int64, copy=False),
                  indices.astype(np.int64, copy=False), np.ascontiguousarray(other, np.float64), out)
    return out


def column_index(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, positions, rows) of the stored cells of ``X`` by column: column ``j``'s cells are
    ``X.data[positions[indptr[j]:indptr[j + 1]]]``, in the rows ``rows[indptr[j]:indptr[j + 1]]``
    (ascending; one stable sort, done once)."""
    order = np.argsort(X.indices, kind="stable").astype(np.int32 if X.nnz < 2**31 else np.int64)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(X.indices, minlength=X.shape[1]))]).astype(np.int64)
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int32 if X.shape[0] < 2**31 else np.int64),
                     np.diff(X.indptr))[order]
    return indptr, order, rows


def _block(own: np.ndarray, indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray, target: np.ndarray,
           other: np.ndarray, base: float, workers: int) -> np.ndarray:
    """A compact block's cell terms ``sum_j w_j y_j``, ``w = (c - base) x.y - c p``, per row (one
    compiled pass over the cells)."""
    wy = np.zeros((indptr.size - 1, other.shape[1]), dtype=np.float64)
    with kernel_workers(workers):
        _block_kernel(np.ascontiguousarray(own, np.float64), indptr, indices, conf, target,
                      np.ascontiguousarray(other, np.float64), float(base), wy)
    return wy


def _block_pair(old: np.ndarray, new: np.ndarray, indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray,
                target: np.ndarray, other: np.ndarray, base: float, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_block` of two versions of the same rows in one pass over the cells: ``(wy_old, wy_new)``."""
    wy_old = np.zeros((indptr.size - 1, other.shape[1]))
    wy_new = np.zeros((indptr.size - 1, other.shape[1]))
    with kernel_workers(workers):
        _block_pair_kernel(np.ascontiguousarray(old, np.float64), np.ascontiguousarray(new, np.float64), indptr,
                           indices, conf, target, np.ascontiguousarray(other, np.float64), float(base), wy_old,
                           wy_new)
    return wy_old, wy_new


def _reg(regularization: float, scaled: bool, counts: np.ndarray) -> np.ndarray:
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
    reg_u = _reg(regularization, scaled, np.diff(conf.indptr).astype(np.float64))
    reg_i = _reg(regularization, scaled, np.bincount(cols, minlength=conf.shape[1]).astype(np.float64))
    R_U = reg_u[:, None] * X + W @ against_y
    R_I = reg_i[:, None] * Y + W.T @ against_x
    if base:
        R_U += base * (X @ (Y.T @ Y))
        R_I += base * (Y @ (X.T @ X))
    return R_U, R_I


def norms(R: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("nk,nk->n", R, R))


class LocalRows:
    """Cells of chosen users or items on the reduced data (``X`` minus the deleted ``pairs``), as
    compact CSR blocks; users are sliced from the CSR, items from the ``columns`` index of ``X``
    (:func:`column_index`) or else found by one pass over its column indices. ``affine = (a, b)``
    maps a stored value ``v`` to its confidence ``a + b v`` (a cell-wise weighting)."""

    def __init__(self, X: sp.csr_matrix, pairs: np.ndarray, affine: tuple[float, float], explicit: bool,
                 columns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
        self.X, self.affine, self.explicit, self.columns = X, affine, explicit, columns
        self.deleted = np.sort(pairs[:, 0] * X.shape[1] + pairs[:, 1])
        self.cache: dict[tuple[int, int], tuple] = {}

    def get(self, axis: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, indices, conf, target) of ``rows`` (compact: row j of the block is ``rows[j]``)."""
        missing = np.array([r for r in rows.tolist() if (axis, r) not in self.cache], dtype=np.int64)
        if missing.size:
            self._load(axis, missing)
        parts = [self.cache[(axis, r)] for r in rows.tolist()]
        lengths = np.array([len(q[0]) for q in parts], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        cat = (lambda j, dt: np.concatenate([q[j] for q in parts]).astype(dt)) if parts else \
            (lambda j, dt: np.empty(0, dt))
        return indptr, cat(0, np.int64), cat(1, np.float64), cat(2, np.float64)  # contiguous, kernel-ready

    def _load(self, axis: int, rows: np.ndarray) -> None:
        X, n_items = self.X, self.X.shape[1]
        if axis == 0 or self.columns is not None:  # the rows' cells in runs, one per row (in ``rows`` order)
            if axis == 0:
                lo, hi = X.indptr[rows], X.indptr[rows + 1]
                pos = _spans(lo, hi)
                other = X.indices[pos].astype(np.int64)
                keys = np.repeat(rows, hi - lo) * n_items + other
            else:
                col_indptr, order, col_rows = self.columns
                lo, hi = col_indptr[rows], col_indptr[rows + 1]
                pos = _runs(order, lo, hi)
                other = _runs(col_rows, lo, hi)
                keys = other * n_items + np.repeat(rows, hi - lo)
            run = np.repeat(np.arange(rows.size), hi - lo)
            if self.deleted.size:
                at = np.minimum(np.searchsorted(self.deleted, keys), self.deleted.size - 1)
                keep = self.deleted[at] != keys
                other, pos, run = other[keep], pos[keep], run[keep]
            bounds = np.concatenate([[0], np.cumsum(np.bincount(run, minlength=rows.size))])
            starts, stops = bounds[:-1], bounds[1:]
        else:
            flag = np.zeros(n_items, dtype=bool)
            flag[rows] = True
            pos = np.flatnonzero(flag[X.indices])
            owner = X.indices[pos].astype(np.int64)
            other = (np.searchsorted(X.indptr, pos, side="right") - 1).astype(np.int64)
            keys = other * n_items + owner
            if self.deleted.size:
                at = np.minimum(np.searchsorted(self.deleted, keys), self.deleted.size - 1)
                keep = self.deleted[at] != keys
                owner, other, pos = owner[keep], other[keep], pos[keep]
            order = np.argsort(owner, kind="stable")  # grouped by row, the other side ascending within
            owner, other, pos = owner[order], other[order], pos[order]
            starts, stops = np.searchsorted(owner, rows), np.searchsorted(owner, rows, side="right")
        values = self.affine[0] + self.affine[1] * X.data[pos].astype(np.float64)
        c, p = (np.ones(values.size), values) if self.explicit else (values, np.ones(values.size))
        for r, lo_, hi_ in zip(rows.tolist(), starts.tolist(), stops.tolist()):
            self.cache[(axis, r)] = (other[lo_:hi_], c[lo_:hi_], p[lo_:hi_])

    def counts(self, axis: int, rows: np.ndarray) -> np.ndarray:
        """Stored cells of ``rows`` on the reduced data."""
        X = self.X
        if axis == 0:
            stored = X.indptr[rows + 1] - X.indptr[rows]
        elif self.columns is not None:
            stored = self.columns[0][rows + 1] - self.columns[0][rows]
        else:
            stored = np.bincount(X.indices, minlength=X.shape[1])[rows]
        ids = self.deleted // X.shape[1] if axis == 0 else self.deleted % X.shape[1]
        return (stored - np.bincount(ids, minlength=X.shape[axis])[rows]).astype(np.float64)


def _spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``range(lo[0], hi[0]), range(lo[1], hi[1]), ...`` concatenated (int64)."""
    lengths = (hi - lo).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(lo.astype(np.int64) - starts, lengths)


def _runs(source: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``source[lo[0]:hi[0]], source[lo[1]:hi[1]], ...`` concatenated (int64)."""
    if lo.size == 0:
        return np.empty(0, np.int64)
    return np.concatenate([source[a:b] for a, b in zip(lo.tolist(), hi.tolist())]).astype(np.int64)


#: A row re-solved for the tolerance moves until its residual is this fraction of it (or as low as it goes).
RELAX = 0.9


def _relaxation(r0: np.ndarray, delta: np.ndarray, target: float) -> np.ndarray:
    """Per row, the least ``t`` in [0, 1] with ``|r0 + t delta| <= target``; where none exists,
    the ``t`` in [0, 1] minimising ``|r0 + t delta|``."""
    a = np.einsum("nk,nk->n", delta, delta)
    b = np.einsum("nk,nk->n", r0, delta)
    c = np.einsum("nk,nk->n", r0, r0) - target**2
    safe = np.where(a > 0, a, 1.0)
    disc = b * b - a * c
    root = (-b - np.sqrt(np.maximum(disc, 0.0))) / safe
    best = np.clip(-b / safe, 0.0, 1.0)
    reach = (a > 0) & (disc >= 0) & (root <= 1.0)
    return np.where(reach, np.clip(root, 0.0, 1.0), np.where(a > 0, best, 1.0))


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


def _cell_grams(indptr: np.ndarray, indices: np.ndarray, weight: np.ndarray, other: np.ndarray, budget: int,
                workers: int) -> np.ndarray:
    """``S_r = sum_n weight_n y_n y_n^T`` over each block row's cells (``y_n = other[indices[n]]``),
    float64: rows of similar length gathered padded and reduced by GEMM, batches over ``workers``
    threads (BLAS releases the GIL)."""
    k = other.shape[1]
    lengths = np.diff(indptr)
    out = np.zeros((lengths.size, k, k))
    if indices.size == 0:
        return out
    other64 = np.ascontiguousarray(other, np.float64)
    weight = np.ascontiguousarray(weight, np.float64)

    def build(chunk: np.ndarray) -> None:
        feats = np.zeros((chunk.size, int(lengths[chunk].max(initial=0)), k))
        weighted = np.zeros_like(feats)
        _gather_rows(other64, indptr, indices, weight, chunk, feats, weighted)
        out[chunk] = np.matmul(feats.transpose(0, 2, 1), weighted)

    _each(build, _row_chunks(lengths, k, 8, budget), workers)
    return out


def _each(fn: Callable[[np.ndarray], None], chunks: list[np.ndarray], workers: int) -> None:
    """``fn`` on every chunk (chunks own disjoint outputs), over ``workers`` threads."""
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fn, chunks))
    else:
        for chunk in chunks:
            fn(chunk)


def _solve_rows(own: np.ndarray, rows: np.ndarray, r_old: np.ndarray, A: np.ndarray,
                target_norm: float | None, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact re-solve of ``own[rows]`` with normal matrices ``A``: the step to the solution is
    ``-A^-1 r_old`` (the residual ``r_old = A old - b`` is kept, so ``b`` is not rebuilt). With a
    ``target_norm`` the row moves along it only as far as brings its residual ``r_old + t A step``
    to it (:func:`_relaxation`); with ``None`` it takes the whole step (the row's exact solve).
    Rows flagged ``empty`` (no cells left: ``b = 0``) are set to exactly zero, their exact
    solution, with residual zero. The new residual is ``r_old + A (stored - old)`` (the row as
    stored, rounded to ``own``'s dtype). Returns ``(old, new, r_new, step)`` (float64)."""
    old = own[rows].astype(np.float64)
    delta = _spd_solve(A, -r_old, rows)
    if target_norm is None:
        step = np.ones(rows.size)
    else:
        step = _relaxation(r_old, np.matmul(A, delta[:, :, None])[:, :, 0], target_norm)
    own[rows] = old + step[:, None] * delta
    own[rows[empty]] = 0
    new = own[rows].astype(np.float64)
    r_new = r_old + np.matmul(A, (new - old)[:, :, None])[:, :, 0]
    r_new[empty] = 0.0
    return old, new, r_new, step


#: The row Gram cache of a model holds at most this many bytes per stored cell of its data (the
#: size of the data's own values and indices): the rows with the most cells first.
GRAM_CACHE_BYTES_PER_CELL = 12


class RowGrams:
    """Cached cell Grams ``S_r = sum_{cells of r} (c - base) y y^T`` -- the part of a row's normal
    matrix ``base G + S_r + reg I`` that needs a pass over its cells -- of the rows with the most
    cells on both sides, so that re-solving a popular row costs ``O(k^3)``, not ``O(cells k^2)``.

    An entry is valid while the other side's rows of its cells are unchanged: rows written by a
    re-solve on the other side are invalidated, deleted cells are subtracted exactly, and rows
    re-solved from their cells refill their entry. The base arrays ``S`` are shared read-only by a
    model and the models forgotten from it; each model's changes live in its own ``overlay``."""

    def __init__(self, slot: tuple[np.ndarray, np.ndarray], S: tuple[np.ndarray, np.ndarray],
                 fresh: tuple[np.ndarray, np.ndarray], overlay: tuple[dict[int, np.ndarray], dict[int, np.ndarray]]):
        self.slot, self.S, self.fresh, self.overlay = slot, S, fresh, overlay

    @classmethod
    def build(cls, conf: sp.csr_matrix, U: np.ndarray, V: np.ndarray, *, base: float, explicit: bool,
              chunk_bytes: int, workers: int) -> RowGrams:
        """The cache of the factors ``U, V`` on ``conf`` (confidences, or ratings for explicit
        feedback): rows by decreasing cell count, more cells than factors, within
        ``GRAM_CACHE_BYTES_PER_CELL`` bytes per stored cell."""
        k = U.shape[1]
        counts = (np.diff(conf.indptr), np.bincount(conf.indices, minlength=conf.shape[1]))
        side = np.concatenate([np.zeros(conf.shape[0], np.int8), np.ones(conf.shape[1], np.int8)])
        row = np.concatenate([np.arange(conf.shape[0]), np.arange(conf.shape[1])])
        both = np.concatenate(counts)
        order = np.argsort(-both, kind="stable")
        room = GRAM_CACHE_BYTES_PER_CELL * conf.nnz // (8 * k * k)
        order = order[:room][both[order[:room]] > k]
        slots, S = [], []
        for axis in (0, 1):
            rows = np.sort(row[order[side[order] == axis]])
            slot = np.full(conf.shape[axis], -1, dtype=np.int64)
            slot[rows] = np.arange(rows.size)
            sub = conf[rows] if axis == 0 else conf[:, rows].tocsc()
            weight = np.ones(sub.nnz) if explicit else sub.data - base
            S.append(_cell_grams(sub.indptr.astype(np.int64), sub.indices.astype(np.int64), weight,
                                 V if axis == 0 else U, chunk_bytes, workers))
            slots.append(slot)
        return cls(tuple(slots), tuple(S), tuple(np.ones(m.shape[0], dtype=bool) for m in S), ({}, {}))

    def copy(self) -> RowGrams:
        """The same cache for a new model (the base arrays shared, the validity and overlay its own)."""
        return RowGrams(self.slot, self.S, tuple(f.copy() for f in self.fresh), tuple(dict(o) for o in self.overlay))

    def lookup(self, axis: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ``rows`` with a valid entry, their entries)."""
        slot = self.slot[axis][rows]
        overlay, fresh = self.overlay[axis], self.fresh[axis]
        have = np.array([s in overlay or (s >= 0 and fresh[s]) for s in slot.tolist()], dtype=bool)
        mats = [overlay[s] if s in overlay else self.S[axis][s] for s in slot[have].tolist()]
        return have, np.stack(mats) if mats else np.empty((0,) + self.S[axis].shape[1:])

    def store(self, axis: int, rows: np.ndarray, mats: np.ndarray) -> None:
        """Valid entries of ``rows`` (those with a slot)."""
        slot = self.slot[axis][rows]
        for s, m in zip(slot.tolist(), mats):
            if s >= 0:
                self.overlay[axis][s] = m.copy()

    def invalidate(self, axis: int, rows: np.ndarray) -> None:
        slot = self.slot[axis][rows]
        slot = slot[slot >= 0]
        self.fresh[axis][slot] = False
        for s in slot.tolist():
            self.overlay[axis].pop(s, None)

    def subtract(self, axis: int, rows: np.ndarray, vectors: np.ndarray, weights: np.ndarray) -> None:
        """Take the terms ``weights[n] vectors[n] vectors[n]^T`` (deleted cells) out of the valid
        entries of ``rows[n]``."""
        have, mats = self.lookup(axis, rows)
        if not have.any():
            return
        change = {}
        for r, m, v, w in zip(rows[have].tolist(), mats, vectors[have], weights[have]):
            change.setdefault(r, m.copy())
            change[r] -= w * np.outer(v, v)
        keys = np.array(list(change), dtype=np.int64)
        self.store(axis, keys, np.stack([change[r] for r in keys.tolist()]))


#: Re-solved items reach the users by one pass over all stored cells when their own cells are
#: more than this share of them (else their cells are gathered and sorted by user).
CSR_PASS_SHARE = 1 / 8


def certified_forget(sides_state: tuple[SideResiduals, SideResiduals], grams: list[np.ndarray], local: LocalRows,
                     pairs: np.ndarray, *, tolerance: float, base: float, regularization: float, scaled: bool,
                     max_iterations: int, batch_rows: int | None, chunk_bytes: int, workers: int,
                     cg_steps: int | None = None, row_grams: RowGrams | None = None,
                     removed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Re-solve every row of a deleted cell exactly, then rows largest residual first until
    every row residual is ``<= tolerance``.

    **By construction**, whatever the tolerance: first every user of a deleted cell is solved
    exactly on the reduced data (a user with no cells left becomes exactly zero, what retraining
    gives it), then every item of a deleted cell -- two rounds that always run, with the whole
    step, by Cholesky. Only then do rounds over the tolerance begin.

    ``sides_state`` holds the users' and the items' factors (the model's arrays) and residual
    vectors of the original model on the original data (:class:`SideResiduals`); ``grams`` the
    float64 Gramians ``base X^T X`` and ``base Y^T Y``; ``row_grams`` the cell Grams of the rows
    with the most cells (:class:`RowGrams`). All are updated in place; on return they
    are the new factors, their residuals on the reduced data (exact up to the pending Gramian
    term each side records), Gramians and cell Grams. A round re-solves, on one side,
    the rows over ``tolerance`` (at most ``batch_rows``, largest first; with rows over it on both
    sides, the sides alternate as in ALS, users first); at most ``max_iterations`` rounds after
    the two forced ones. A re-solve is exact (Cholesky; the normal matrix from the cached cell Gram, else by GEMM on the row's gathered cells, ``O(cells k^2)``) or, with ``cg_steps``,
    that many warm-started CG steps (``O(cells k)`` a step; the
    residual shrinks but is not 0, so rows may return in later rounds); the row then moves only as
    far towards the re-solved value as brings its residual to ``RELAX * tolerance``. Rows over the
    tolerance are found exactly: every row whose rigorous upper bound exceeds it is computed exactly
    (:meth:`SideResiduals.over`). Returns the loop's statistics, with ``gap``, the exact largest
    residual of every row at the end.

    The residuals given are on the reduced data plus the cells ``removed`` = ``(pairs, conf,
    target)`` (then only those cells' terms are taken out of their rows' residuals, ``O(k)`` a
    cell) or, when ``removed`` is None, on data whose difference from the reduced one lies in
    the rows of ``pairs`` (their residuals are recomputed from their cells).
    """
    U, V = sides_state[0].F, sides_state[1].F
    sides = ((U, V, sides_state[0]), (V, U, sides_state[1]))
    k = U.shape[1]
    touched: list[set[int]] = [set(), set()]
    rounds: list[dict[str, Any]] = []
    exact_rows = 0
    t0 = time.perf_counter()

    def block_residuals(axis: int, x: np.ndarray, wy: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        """Residuals of side ``axis``'s block rows ``x`` from their cell terms ``wy``."""
        R = _reg(regularization, scaled, np.diff(indptr).astype(np.float64))[:, None] * x + wy
        if base:
            R += x @ grams[1 - axis]
        return R

    def local_residuals(axis: int, rows: np.ndarray) -> np.ndarray:
        own, other, _ = sides[axis]
        indptr, indices, conf, target = local.get(axis, rows)
        x = own[rows].astype(np.float64)
        return block_residuals(axis, x, _block(x, indptr, indices, conf, target, other, base, workers), indptr)

    def exact_resolve(axis: int, over: np.ndarray, r_old: np.ndarray, full: bool) -> tuple[np.ndarray, ...]:
        """Exact re-solve of ``over`` in blocks of bounded memory: normal matrices from the cached
        cell Grams where valid, else by GEMM on the gathered cells (refilling the cache)."""
        own, other, _ = sides[axis]
        counts = local.counts(axis, over)
        reg = _reg(regularization, scaled, counts)
        out = [np.empty((over.size, k)) for _ in range(3)] + [np.empty(over.size)]
        size = max(1, chunk_bytes // (16 * k * k))
        for lo in range(0, over.size, size):
            part = slice(lo, lo + size)
            rows = over[part]
            S = np.empty((rows.size, k, k))
            have = np.zeros(rows.size, dtype=bool)
            if row_grams is not None:
                have, cached = row_grams.lookup(axis, rows)
                S[have] = cached
            if not have.all():
                need = rows[~have]
                indptr, indices, conf, _ = local.get(axis, need)
                S[~have] = _cell_grams(indptr, indices, conf - base, other, chunk_bytes, workers)
                if row_grams is not None:
                    row_grams.store(axis, need, S[~have])
            S += grams[1 - axis]
            S[:, np.arange(k), np.arange(k)] += reg[part][:, None]
            solved = _solve_rows(own, rows, r_old[part], S, None if full else RELAX * tolerance, counts[part] == 0)
            for target, value in zip(out, solved):
                target[part] = value
        return tuple(out)

    if removed is None:  # the disturbed rows' residuals from their cells on the reduced data
        for axis, ids in ((0, np.unique(pairs[:, 0])), (1, np.unique(pairs[:, 1]))):
            sides[axis][2].set(ids, local_residuals(axis, ids))
            if row_grams is not None:
                row_grams.invalidate(axis, ids)
    elif len(removed[0]):  # or by taking the removed cells' terms out (a residual is a sum over cells)
        cells, c, p = removed
        x, y = U[cells[:, 0]].astype(np.float64), V[cells[:, 1]].astype(np.float64)
        w = (c - base) * np.einsum("nk,nk->n", x, y) - c * p
        for axis, partner in ((0, y), (1, x)):
            ids, inv = np.unique(cells[:, axis], return_inverse=True)
            delta = np.zeros((ids.size, partner.shape[1]))
            np.add.at(delta, inv, w[:, None] * partner)
            R = sides[axis][2].exact(ids) - delta
            if scaled:  # the regularization follows the row's count
                after = local.counts(axis, ids)
                before = after + np.bincount(inv, minlength=ids.size)
                change = regularization * (np.maximum(after, 1.0) - np.maximum(before, 1.0))
                R += change[:, None] * sides[axis][0][ids].astype(np.float64)
            sides[axis][2].set(ids, R)
            if row_grams is not None:
                row_grams.subtract(axis, cells[:, axis], partner, c - base)
    setup = time.perf_counter() - t0

    def resolve(axis: int, over: np.ndarray, top: float, forced: bool) -> None:
        """One round: re-solve ``over`` on side ``axis`` (``forced``: exactly, the whole step)."""
        own, other, state = sides[axis]
        t1 = time.perf_counter()
        r_old = state.exact(over)
        if cg_steps and not forced:
            from .cg import cg_solve_rows  # compiles on first use (cached on disk)

            indptr, indices, conf, target = local.get(axis, over)
            reg = _reg(regularization, scaled, np.diff(indptr).astype(np.float64))
            old = own[over].astype(np.float64)
            solved = np.ascontiguousarray(own[over])
            cg_solve_rows(solved, np.arange(over.size), (indptr, indices, conf, target), np.ascontiguousarray(other),
                          base, reg, cg_steps, None, workers, gram=grams[1 - axis], residuals=r_old)
            # relax: move each row only as far along old -> solved as brings its residual to RELAX * tolerance
            # (the residual and the cell terms are affine in the row), so rows barely over it barely move
            solved = solved.astype(np.float64)
            wy_old, wy_s = _block_pair(old, solved, indptr, indices, conf, target, other, base, workers)
            step = _relaxation(r_old, block_residuals(axis, solved, wy_s, indptr) - r_old, RELAX * tolerance)
            own[over] = old + step[:, None] * (solved - old)
            new = own[over].astype(np.float64)
            if own.dtype == np.float64:  # new is old + step (solved - old) exactly as stored: all affine in it
                wy_new = wy_old + step[:, None] * (wy_s - wy_old)
            else:  # the stored row is rounded: its terms are recomputed
                wy_new = _block(new, indptr, indices, conf, target, other, base, workers)
            r_new = block_residuals(axis, new, wy_new, indptr)
        else:
            old, new, r_new, step = exact_resolve(axis, over, r_old, forced)
        # the other side: the cell terms of the solved rows' cells (those rows re-measured, their
        # cached cell Grams invalidated), and the Gramian change, which moves every row: recorded as
        # pending (see SideResiduals)
        opposite = sides[1 - axis][2]
        cells = int(local.counts(axis, over).sum())
        if axis == 1 and cells > CSR_PASS_SHARE * local.X.nnz:  # items to users: one pass over the CSR rows
            hit = _scatter_csr(opposite, local, over, base, new, old, workers)
        else:
            indptr, indices, conf, target = local.get(axis, over)
            hit = _scatter(opposite, indptr, indices, conf, target, base, new, old, workers)
        if row_grams is not None:
            row_grams.invalidate(1 - axis, np.flatnonzero(hit))
        if base:
            change = base * (new.T @ new - old.T @ old)
            opposite.add_gram(change)
            grams[axis] += change
        state.set(over, r_new)
        touched[axis].update(over.tolist())
        rounds.append({"side": "users" if axis == 0 else "items", "rows": int(over.size), "forced": forced,
                       "mean_step": float(step.mean()),
                       "cells": cells, "max_before": top, "seconds": time.perf_counter() - t1})

    for axis in (0, 1):  # by construction: every row of a deleted cell, solved exactly, users first
        rows = np.unique(pairs[:, axis]).astype(np.int64)
        if rows.size:
            resolve(axis, rows, float(norms(sides[axis][2].exact(rows)).max()), forced=True)
    forced_rounds = len(rounds)
    last = 1  # the first round with rows over the tolerance on both sides re-solves users
    while len(rounds) - forced_rounds < max_iterations:
        found = [state.over(tolerance) for _, _, state in sides]
        exact_rows += sum(f[0].size for f in found)
        over_tolerance = [f[0].size > 0 for f in found]
        if not any(over_tolerance):
            break
        axis = 0 if not over_tolerance[1] else 1 if not over_tolerance[0] else 1 - last  # both: alternate, as ALS
        last = axis
        over, n = found[axis]
        resolve(axis, over[np.argsort(-n, kind="stable")][:batch_rows], float(n.max()), forced=False)
    tops = [state.max() for _, _, state in sides]
    exact_rows += sum(t[1] for t in tops)
    return {"rounds": rounds, "setup_seconds": setup, "users_touched": len(touched[0]),
            "items_touched": len(touched[1]), "rows_touched": len(touched[0]) + len(touched[1]),
            "gap": max(t[0] for t in tops), "rows_measured_exactly": exact_rows,
            "touched_users": np.array(sorted(touched[0]), dtype=np.int64),
            "touched_items": np.array(sorted(touched[1]), dtype=np.int64)}


def cell_values(X: sp.csr_matrix, pairs: np.ndarray) -> np.ndarray:
    """Stored values of the ``(n, 2)`` ``pairs`` (each a stored cell of the canonical CSR ``X``)."""
    out = np.empty(len(pairs))
    for u in np.unique(pairs[:, 0]).tolist():
        sel = np.flatnonzero(pairs[:, 0] == u)
        lo, hi = X.indptr[u], X.indptr[u + 1]
        out[sel] = X.data[lo + np.searchsorted(X.indices[lo:hi], pairs[sel, 1])]
    return out
