"""The stored cells of an ALS problem (both orders) and the checks of its input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .options import FEEDBACKS, check_choice


# --------------------------------------------------------------------------------------------
# Input checking and the cell representation
# --------------------------------------------------------------------------------------------
def _as_csr(matrix: Any, name: str, shape: tuple[int, int] | None = None, copy: bool = True) -> sp.csr_matrix:
    """Canonical float64 CSR copy of a scipy sparse matrix, with a clear error otherwise.

    ``copy=False`` returns ``matrix`` itself when it already is one (read it, never write it)."""
    if not sp.issparse(matrix):
        raise TypeError(f"{name} must be a scipy sparse matrix, got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {matrix.ndim}-D")
    csr = sp.csr_matrix(matrix, dtype=np.float64, copy=copy)
    if shape is not None and csr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {csr.shape}, expected {tuple(shape)}")
    if not csr.has_canonical_format:
        csr = csr.copy() if csr is matrix else csr
        csr.sum_duplicates()
        csr.sort_indices()
    if not np.all(np.isfinite(csr.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return csr


@dataclass(frozen=True)
class Cells:
    """Stored cells of one problem in both row-major and column-major order.

    ``conf``/``target`` are per stored cell; ``base`` is the confidence of every unstored cell
    (1 for implicit feedback, 0 for explicit). ``t_*`` arrays are the item-major (transposed) view.
    Arrays may be shared with the input or read-only broadcasts (all-one targets): never write them.
    """

    shape: tuple[int, int]
    base: float
    indptr: np.ndarray
    indices: np.ndarray
    conf: np.ndarray
    target: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray
    t_conf: np.ndarray
    t_target: np.ndarray

    def csr(self, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, indices, conf, target) of the cells by user (axis 0) or by item (axis 1)."""
        if axis == 0:
            return self.indptr, self.indices, self.conf, self.target
        return self.t_indptr, self.t_indices, self.t_conf, self.t_target

    @property
    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def counts(self, axis: int) -> np.ndarray:
        """Number of cells with positive confidence per user (axis 0) or per item (axis 1)."""
        if axis == 0:
            rows, weights = self.rows, self.conf
        else:
            rows, weights = np.repeat(np.arange(self.shape[1]), np.diff(self.t_indptr)), self.t_conf
        return np.bincount(rows[weights > 0], minlength=self.shape[axis]).astype(np.float64)


def build_cells(
    C: Any,
    feedback: str = "implicit",
    mask: Any = None,
    negatives: Any = None,
) -> Cells:
    """Validate ``C`` (+ optional ``mask``/``negatives``) and build the :class:`Cells` of the problem.

    Lean in memory (20M cells: ~0.25 GB beyond ``C``): ids are int32 where they fit, a lone ``C``'s
    own arrays are its user-major cells (read, never written), all-one targets are one broadcast
    value, and the item-major order is a counting sort (scipy's CSR -> CSC) of cell positions."""
    check_choice(feedback, FEEDBACKS, "feedback")
    C = _as_csr(C, "C", copy=False)
    if feedback == "implicit" and C.nnz and C.data.min() <= 0:
        raise ValueError(
            "C contains zero or negative confidences; confidences must be > 0 "
            "(give cells of confidence 0 in mask=, confident negatives in negatives=)"
        )
    n_users, n_items = C.shape
    ids = np.int32 if max(n_users, n_items, C.nnz) < 2**31 else np.int64
    if mask is None and negatives is None:  # a single canonical CSR is already in (row, col) order
        indptr, cols = C.indptr.astype(np.int64), C.indices.astype(ids, copy=False)
        conf = np.ones(C.nnz) if feedback == "explicit" else C.data
        target = C.data if feedback == "explicit" else _ones(C.nnz)
    else:
        parts = [(C, np.ones_like(C.data) if feedback == "explicit" else C.data,
                  C.data if feedback == "explicit" else np.ones_like(C.data))]
        if mask is not None:
            M = _as_csr(mask, "mask", C.shape)
            M.data[:] = 1.0  # only the pattern matters
            parts.append((M, np.zeros(M.nnz), np.zeros(M.nnz)))
        if negatives is not None:
            N = _as_csr(negatives, "negatives", C.shape)
            if N.nnz and N.data.min() <= 0:
                raise ValueError("negatives contains zero or negative confidences; they must be > 0")
            parts.append((N, N.data, np.zeros(N.nnz)))
        rows = np.concatenate([np.repeat(np.arange(n_users), np.diff(m.indptr)) for m, _, _ in parts])
        cols = np.concatenate([m.indices for m, _, _ in parts]).astype(np.int64)
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
        conf = np.concatenate([c for _, c, _ in parts])[order]
        target = np.concatenate([t for _, _, t in parts])[order]
        dup = (np.diff(rows) == 0) & (np.diff(cols) == 0)
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise ValueError(
                f"C, mask and negatives must not share cells; cell ({rows[k]}, {cols[k]}) is given twice"
            )
        indptr, cols = _indptr(rows, n_users), cols.astype(ids)
    # cell positions sorted by column, rows kept in order within each column (a stable counting sort)
    by_item = sp.csr_matrix((np.arange(cols.size, dtype=ids), cols, indptr), shape=C.shape).tocsc()
    perm = by_item.data
    return Cells(
        shape=(n_users, n_items),
        base=1.0 if feedback == "implicit" else 0.0,
        indptr=indptr,
        indices=cols,
        conf=conf,
        target=target,
        t_indptr=by_item.indptr.astype(np.int64),
        t_indices=by_item.indices.astype(ids, copy=False),
        t_conf=conf[perm],
        t_target=target if target.strides[0] == 0 else target[perm],
    )


def weighted_mean(cells: Cells) -> float:
    """The confidence-weighted mean of the cells' targets (the global mean of explicit feedback with biases)."""
    weight = cells.conf.sum()
    return float(cells.conf @ cells.target / weight) if weight > 0 else 0.0


def _ones(n: int) -> np.ndarray:
    """``n`` float64 ones without their memory (a read-only broadcast of one value)."""
    return np.broadcast_to(np.float64(1.0), (n,))


def _indptr(sorted_rows: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(sorted_rows, minlength=n))]).astype(np.int64)
