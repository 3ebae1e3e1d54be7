"""Cached cell Grams of the rows with the most cells (:class:`RowGrams`), so that a certified
forget re-solves a popular row in ``O(k^3)`` instead of a pass over its cells."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import scipy.sparse as sp


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


def row_chunks(lengths: np.ndarray, width: int, itemsize: int, budget: int) -> list[np.ndarray]:
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


def cell_grams(indptr: np.ndarray, indices: np.ndarray, weight: np.ndarray, other: np.ndarray, budget: int,
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

    _each(build, row_chunks(lengths, k, 8, budget), workers)
    return out


def _each(fn: Callable[[np.ndarray], None], chunks: list[np.ndarray], workers: int) -> None:
    """``fn`` on every chunk (chunks own disjoint outputs), over ``workers`` threads."""
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fn, chunks))
    else:
        for chunk in chunks:
            fn(chunk)


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
            S.append(cell_grams(sub.indptr.astype(np.int64), sub.indices.astype(np.int64), weight,
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
