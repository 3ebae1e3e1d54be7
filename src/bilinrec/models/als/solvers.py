"""Exact batched row solvers of the ALS normal equations (Cholesky)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy.linalg import get_lapack_funcs


# --------------------------------------------------------------------------------------------
# Batched row solvers
# --------------------------------------------------------------------------------------------
def _row_chunks(lengths: np.ndarray, width: int, itemsize: int, budget: int) -> list[np.ndarray]:
    """Rows grouped by similar length so that a padded (rows, length, width) gather fits ``budget``."""
    order = np.argsort(lengths, kind="stable")
    sorted_len = lengths[order]
    cap = max(1, budget // (max(width, 1) * itemsize))
    max_rows = max(1, budget // (max(width, 1) ** 2 * itemsize))
    chunks, start, n = [], 0, order.size
    while start < n:
        stop = min(n, start + max_rows)
        # padding bound: the longest row of a chunk is at most 1.2 x + 4 its shortest row
        stop = min(stop, int(np.searchsorted(sorted_len, 1.2 * sorted_len[start] + 4, side="right")))
        sizes = np.arange(1, stop - start + 1) * np.maximum(sorted_len[start:stop], 1)
        stop = start + max(1, int(np.searchsorted(sizes, cap, side="right")))
        chunks.append(order[start:stop])
        start = stop
    return chunks


@dataclass(frozen=True)
class RowBatch:
    """Rows of similar length with their cells laid out padded to (rows, width); padding has weight 0."""

    rows: np.ndarray
    index: np.ndarray  # (n, width) ids on the other side (padding: 0)
    conf: np.ndarray  # (n, width) confidences c (padding: 0)
    target: np.ndarray  # (n, width) targets p (padding: 0)
    weight: np.ndarray  # (n, width) c - base (padding: 0)


def plan_rows(
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    target: np.ndarray,
    base: float,
    width: int,
    dtype: Any,
    budget: int,
) -> list[RowBatch]:
    """Group ``rows`` into padded :class:`RowBatch` es of at most ``budget`` bytes of gathered factors."""
    dtype = np.dtype(dtype)
    lengths = indptr[rows + 1] - indptr[rows]
    batches = []
    for chunk in _row_chunks(lengths, width, dtype.itemsize, budget):
        chunk = rows[chunk]
        count = indptr[chunk + 1] - indptr[chunk]
        slots = np.arange(int(count.max()) if chunk.size else 0)
        valid = slots < count[:, None]
        pos = np.where(valid, indptr[chunk][:, None] + slots, 0)
        if indices.size == 0:
            valid = np.zeros((chunk.size, 0), dtype=bool)
            pos = np.zeros((chunk.size, 0), dtype=np.int64)
        batches.append(RowBatch(
            rows=chunk,
            index=np.where(valid, indices[pos], 0).astype(np.intp),
            conf=np.where(valid, conf[pos], 0.0).astype(dtype),
            target=np.where(valid, target[pos], 0.0).astype(dtype),
            weight=np.where(valid, conf[pos] - base, 0.0).astype(dtype),
        ))
    return batches


def solve_rows(
    out: np.ndarray,
    batches: Sequence[RowBatch],
    other: np.ndarray,
    base: float,
    reg: np.ndarray,
    target_shift: np.ndarray | None = None,
    workers: int = 1,
) -> None:
    """Update ``out[rows]`` in place by solving each row's normal equations exactly.

    Row ``u`` solves ``(base * Y^T Y + sum_i (c_ui - base) y_i y_i^T + reg_u I) x_u = sum_i c_ui p_ui y_i``
    over its stored cells ``i`` with ``Y = other`` (one batched Gram product and Cholesky solve per
    batch). ``target_shift[i]`` (optional) is subtracted from the targets of column ``i``.
    ``workers > 1`` solves batches in parallel threads (they overlap where NumPy releases the GIL).
    """
    k = other.shape[1]
    dtype = other.dtype
    gram = (base * (other.T @ other)).astype(dtype)
    diag = np.arange(k)
    largest = max((batch.index.size for batch in batches), default=0)
    buffers = threading.local()  # one gather buffer per thread: fresh large arrays cost page faults

    def solve(batch: RowBatch) -> None:
        if not hasattr(buffers, "feats"):
            buffers.feats = np.empty(largest * k, dtype)
        feats = buffers.feats[: batch.index.size * k].reshape(batch.index.shape + (k,))
        np.take(other, batch.index, axis=0, out=feats, mode="clip")  # ids are in range by construction
        target = batch.target if target_shift is None else batch.target - np.take(target_shift, batch.index)
        b = np.matmul((batch.conf * target)[:, None, :], feats)[:, 0, :]
        A = np.matmul(feats.transpose(0, 2, 1) * batch.weight[:, None, :], feats)
        A += gram
        A[:, diag, diag] += reg[batch.rows].astype(dtype)[:, None]
        out[batch.rows] = _spd_solve(A, b, batch.rows)

    if workers > 1 and len(batches) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(solve, batches))  # batches own disjoint rows of ``out``
    else:
        for batch in batches:
            solve(batch)


def _spd_solve(A: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Solve stacked symmetric positive-definite systems ``A x = b`` by Cholesky (LAPACK ``posv``).

    ``A`` is overwritten. A loop of ``posv`` calls beats NumPy's batched ``solve`` (LU) and
    ``cholesky`` + triangular solves here; ``A[j].T`` is the Fortran-ordered view LAPACK wants.
    """
    (posv,) = get_lapack_funcs(("posv",), (A,))
    x = np.empty_like(b)
    for j in range(A.shape[0]):
        _, x[j], info = posv(A[j].T, b[j], lower=1, overwrite_a=1, overwrite_b=0)
        if info != 0:
            raise np.linalg.LinAlgError(
                f"the normal matrix of row {rows[j]} is not positive definite (LAPACK info={info}); "
                "increase regularization"
            )
    return x


