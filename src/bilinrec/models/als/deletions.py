"""Deletion sets and the modified data that each unlearning mode trains on."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from .cells import FEEDBACKS, MODES, _as_csr, _check_choice


# --------------------------------------------------------------------------------------------
# Deletions
# --------------------------------------------------------------------------------------------
class ModifiedData(NamedTuple):
    """Training data after deletions: pass as ``fit(C, mask=mask, negatives=negatives)``."""

    C: sp.csr_matrix
    mask: sp.csr_matrix | None
    negatives: sp.csr_matrix | None


def as_deletions(deletions: Any, shape: tuple[int, int]) -> np.ndarray:
    """Normalise a deletion set to a sorted ``(n, 2)`` int64 array of (user, item) pairs.

    Accepts an ``(n, 2)`` array, a pair ``(users, items)`` of equal-length 1-D arrays, or a mapping
    ``{user: items}`` (use :func:`user_history` to delete whole histories). Out-of-range ids,
    non-integers and duplicate pairs raise ``ValueError`` naming ``deletions``.
    """
    if isinstance(deletions, Mapping):
        pairs = [(u, i) for u, items in deletions.items() for i in np.atleast_1d(items)]
        arr = np.asarray(pairs).reshape(-1, 2)
    elif isinstance(deletions, tuple) and len(deletions) == 2 and np.ndim(deletions[0]) == 1:
        users, items = (np.asarray(a) for a in deletions)
        if users.shape != items.shape:
            raise ValueError(
                f"deletions: users and items differ in length ({users.size} vs {items.size})"
            )
        arr = np.column_stack([users, items]) if users.size else np.empty((0, 2))
    else:
        arr = np.asarray(deletions)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"deletions must be an (n, 2) array of (user, item) pairs; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("deletions must contain integer user and item ids")
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
    _check_choice(mode, MODES, "mode")
    _check_choice(feedback, FEEDBACKS, "feedback")
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


