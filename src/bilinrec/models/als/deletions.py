"""Deletion sets and the modified data that each unlearning mode trains on."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from .cells import _as_csr
from .options import FEEDBACKS, MODES, check_choice


# --------------------------------------------------------------------------------------------
# Deletions
# --------------------------------------------------------------------------------------------
class ModifiedData(NamedTuple):
    """Training data after deletions: pass as ``fit(C, mask=mask, negatives=negatives)``."""

    C: sp.csr_matrix
    mask: sp.csr_matrix | None
    negatives: sp.csr_matrix | None


def as_deletions(deletions: Any, shape: tuple[int, int]) -> np.ndarray:
    """Normalise a deletion set to a sorted ``(n, 2)`` int64 array of (user, item) rows.

    Two spellings are accepted: an ``(n, 2)`` integer array, one row per deleted (user, item)
    pair, or a list of pairs, each a list or tuple of two integer ids (``[[0, 12], [7, 3]]``).
    Parallel ``(users, items)`` arrays are rejected for every length, since at length two they
    would read as two pairs: a top-level tuple, a list holding arrays, a mapping or float ids
    raise ``ValueError`` naming ``deletions`` (use ``np.column_stack([users, items])``, or
    :func:`user_history` to delete whole histories). Out-of-range ids and duplicate pairs raise too.
    """
    parallel = "for parallel (users, items) arrays pass np.column_stack([users, items])"
    if isinstance(deletions, Mapping) or sp.issparse(deletions):
        raise ValueError("deletions must be an (n, 2) integer array of (user, item) rows, "
                         f"got a {type(deletions).__name__}")
    if isinstance(deletions, tuple):
        raise ValueError("deletions must be an (n, 2) integer array or a list of (user, item) pairs, got a tuple, "
                         f"which reads as (users, items); {parallel}")
    if isinstance(deletions, list):
        array = next((k for k, pair in enumerate(deletions) if not isinstance(pair, (list, tuple)) and np.ndim(pair)),
                     None)
        if array is not None:
            raise ValueError(f"deletions must be an (n, 2) integer array or a list of (user, item) pairs, but entry "
                             f"{array} is a {type(deletions[array]).__name__}, not a list or tuple of two ids; "
                             f"{parallel}")
    arr = np.asarray(deletions)
    if arr.size == 0:
        arr = arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"deletions must be an (n, 2) integer array of (user, item) rows; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"deletions must contain integer user and item ids, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    for col, name, n in ((0, "user", shape[0]), (1, "item", shape[1])):
        bad = (arr[:, col] < 0) | (arr[:, col] >= n)
        if bad.any():
            raise ValueError(f"deletions: {name} id {arr[bad][0, col]} out of range [0, {n})")
    arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
    dup = np.all(np.diff(arr, axis=0) == 0, axis=1)
    if dup.any():
        raise ValueError(f"deletions: duplicate pair {tuple(arr[np.flatnonzero(dup)[0]])}")
    return arr


def pairs_digest(pairs: np.ndarray) -> str:
    """SHA-256 of a sorted ``(n, 2)`` int64 pair array (little-endian bytes): the ledger's fingerprint."""
    arr = np.ascontiguousarray(np.asarray(pairs, dtype="<i8").reshape(-1, 2))
    return hashlib.sha256(arr.tobytes()).hexdigest()


def stored_pairs(C: Any, pairs: np.ndarray) -> np.ndarray:
    """The rows of the ``(n, 2)`` ``pairs`` that are stored cells of the sparse matrix ``C``."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return pairs
    return pairs[stored_mask(_as_csr(C, "C", copy=False), pairs)]


def stored_mask(X: sp.csr_matrix, pairs: np.ndarray) -> np.ndarray:
    """Which rows of the ``(n, 2)`` int64 ``pairs`` are stored cells of the canonical CSR ``X``: a
    binary search in each pair's row (``O(n log(row length))``; nothing of size ``nnz`` is built)."""
    lo = X.indptr[pairs[:, 0]].astype(np.int64)
    end = X.indptr[pairs[:, 0] + 1].astype(np.int64)
    hi = end.copy()
    last = max(X.nnz - 1, 0)
    while True:  # lo: the first cell of the row whose column is >= the pair's
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        right = active & (X.indices[np.minimum(mid, last)] < pairs[:, 1])
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
    return (lo < end) & (X.indices[np.minimum(lo, last)] == pairs[:, 1]) if X.nnz else np.zeros(len(pairs), bool)


def user_history(C: Any, users: Sequence[int] | np.ndarray) -> np.ndarray:
    """All observed (user, item) pairs of ``users`` in ``C``: the deletion set 'forget these users'."""
    C = _as_csr(C, "C")
    users = np.unique(np.asarray(users, dtype=np.int64))
    if users.size and (users.min() < 0 or users.max() >= C.shape[0]):
        raise ValueError(f"users: ids must lie in [0, {C.shape[0]})")
    sub = C[users].tocoo()
    return np.column_stack([users[sub.row], sub.col]).astype(np.int64)


def apply_deletions(
    C: Any,
    deletions: Any,
    mode: str = "retrain",
    *,
    feedback: str = "implicit",
    mask: Any = None,
    negatives: Any = None,
) -> ModifiedData:
    """The training data after deleting ``deletions`` under ``mode``; ``C`` is not modified.

    * ``retrain``: deleted cells leave ``C`` and become ordinary unstored cells (implicit: ``c = 1,
      p = 0``; explicit: unobserved). Retraining on the result *is* retraining without the data.
    * ``mask``: deleted cells get confidence 0 (added to ``mask``): they influence nothing.
    * ``naive``: deleted cells keep their confidence with target 0 (added to ``negatives``; for
      explicit feedback they become observed ratings 0 of weight 1).

    Every deleted pair must be a stored cell of ``C``.
    """
    check_choice(mode, MODES, "mode")
    check_choice(feedback, FEEDBACKS, "feedback")
    C = _as_csr(C, "C")
    pairs = as_deletions(deletions, C.shape)
    mask = None if mask is None else _as_csr(mask, "mask", C.shape)
    negatives = None if negatives is None else _as_csr(negatives, "negatives", C.shape)
    if len(pairs) == 0:
        return ModifiedData(C, mask, negatives)
    coo = C.tocoo()
    key = coo.row.astype(np.int64) * C.shape[1] + coo.col
    del_key = pairs[:, 0] * C.shape[1] + pairs[:, 1]
    pos = np.searchsorted(key, del_key)  # CSR order == sorted keys
    found = (pos < key.size) & (key[np.minimum(pos, key.size - 1)] == del_key)
    if not found.all():
        u, i = pairs[~found][0]
        raise ValueError(
            f"deletions: {int((~found).sum())} pair(s) are not observed cells of C, e.g. ({u}, {i})"
        )
    keep = np.ones(C.nnz, dtype=bool)
    keep[pos] = False
    remaining = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=C.shape)
    deleted_values = coo.data[pos]

    def cells(values: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((values, (pairs[:, 0], pairs[:, 1])), shape=C.shape)

    def union(existing: sp.csr_matrix | None, new: sp.csr_matrix) -> sp.csr_matrix:
        return new if existing is None else (existing + new).tocsr()

    if mode == "retrain":
        return ModifiedData(remaining, mask, negatives)
    if mode == "mask":
        return ModifiedData(remaining, union(mask, cells(np.ones(len(pairs)))), negatives)
    weights = deleted_values if feedback == "implicit" else np.ones(len(pairs))
    return ModifiedData(remaining, mask, union(negatives, cells(weights)))


