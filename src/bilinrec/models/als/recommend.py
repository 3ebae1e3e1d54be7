"""Recommender operations on factor matrices: top-k scores, similar rows, recommendations."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def top_k(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    exclude_self: bool = False,
    batch_size: int | None = None,
) -> np.ndarray:
    """Indices of the ``k`` keys with the largest dot product for every query row.

    ``exclude`` (queries x keys CSR) marks cells that may not be returned; ``exclude_self``
    forbids key ``j`` for query ``j`` (similar-item lists). Ties go to the smaller index.
    Rows are processed in batches so memory stays ``O(batch_size x n_keys)``; by default a
    batch holds about 2**24 scores (128 MiB).
    """
    queries = np.asarray(queries, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)
    if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError("queries and keys must be 2-D with the same number of columns")
    n_keys = keys.shape[0]
    if not 1 <= k <= n_keys - (1 if exclude_self else 0):
        raise ValueError(f"k must be in [1, {n_keys}] (fewer with exclude_self), got {k}")
    if exclude is not None:
        exclude = sp.csr_matrix(exclude)
        if exclude.shape != (queries.shape[0], n_keys):
            raise ValueError(f"exclude must have shape {(queries.shape[0], n_keys)}, got {exclude.shape}")
    if batch_size is None:
        batch_size = max(1, 2**24 // n_keys)
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], batch_size):
        stop = min(start + batch_size, queries.shape[0])
        scores = queries[start:stop] @ keys.T
        if exclude is not None:
            block = exclude[start:stop].tocoo()
            scores[block.row, block.col] = -np.inf
        if exclude_self:
            rows = np.arange(stop - start)
            scores[rows, rows + start] = -np.inf
        # descending by (score, -index) without a full argsort of every row: argpartition finds
        # the k largest scores, but among scores tied with the k-th it picks arbitrary ones, so
        # rows with such ties are redone by a stable full sort (smaller index first)
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        cand = np.take_along_axis(scores, part, axis=1)
        kth = cand.min(axis=1, keepdims=True)
        for row in np.flatnonzero((scores >= kth).sum(axis=1) > k):
            part[row] = np.argsort(-scores[row], kind="stable")[:k]
            cand[row] = scores[row, part[row]]
        order = np.lexsort((part, -cand), axis=1)
        out[start:stop] = np.take_along_axis(part, order, axis=1)
    return out


def _normalized(factors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return factors / np.where(norms > 0, norms, 1.0)


def similar(factors: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` cosine neighbours of every row of ``factors`` (itself excluded)."""
    unit = _normalized(np.asarray(factors, dtype=np.float64))
    return top_k(unit, unit, k, exclude_self=True)


def recommend(
    user_factors: np.ndarray, item_factors: np.ndarray, k: int, exclude: sp.csr_matrix | None
) -> np.ndarray:
    """Top-``k`` items by predicted score per user, skipping the cells in ``exclude``."""
    return top_k(user_factors, item_factors, k, exclude=exclude)
