"""Helpers of exact row solves in batches (certified forget): row chunks and stacked SPD solves."""

from __future__ import annotations

import numpy as np


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


def _spd_solve(A: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Solve stacked symmetric positive-definite systems ``A x = b`` by Cholesky (lower triangles
    read, ``A`` not written); ``rows`` names the systems in the error message.

    One compiled call for the whole stack (:mod:`.chol`): a loop of LAPACK ``posv`` calls, one
    per system, was slower at ALS sizes."""
    from .chol import spd_solve  # compiles on first use (cached on disk)

    x, bad = spd_solve(A, b)
    if bad >= 0:
        raise np.linalg.LinAlgError(
            f"the normal matrix of row {rows[bad]} is not positive definite; increase regularization"
        )
    return x
