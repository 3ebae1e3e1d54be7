"""The stored cells of chosen users or items on the reduced data (the data minus the deleted
pairs), read without building the reduced matrix: what a certified forget re-solves rows from."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def column_index(X: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, positions, rows) of the stored cells of ``X`` by column: column ``j``'s cells are
    ``X.data[positions[indptr[j]:indptr[j + 1]]]``, in the rows ``rows[indptr[j]:indptr[j + 1]]``
    (ascending; one stable sort, done once)."""
    order = np.argsort(X.indices, kind="stable").astype(np.int32 if X.nnz < 2**31 else np.int64)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(X.indices, minlength=X.shape[1]))]).astype(np.int64)
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int32 if X.shape[0] < 2**31 else np.int64),
                     np.diff(X.indptr))[order]
    return indptr, order, rows


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


def cell_values(X: sp.csr_matrix, pairs: np.ndarray) -> np.ndarray:
    """Stored values of the ``(n, 2)`` ``pairs`` (each a stored cell of the canonical CSR ``X``)."""
    out = np.empty(len(pairs))
    for u in np.unique(pairs[:, 0]).tolist():
        sel = np.flatnonzero(pairs[:, 0] == u)
        lo, hi = X.indptr[u], X.indptr[u + 1]
        out[sel] = X.data[lo + np.searchsorted(X.indices[lo:hi], pairs[sel, 1])]
    return out
