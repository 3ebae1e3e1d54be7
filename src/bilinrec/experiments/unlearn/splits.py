"""Held-out cells and deletion sets.

Held-out: a uniformly random share of ALL cells of the matrix (positives and negatives
alike), zeroed in training, as in the authors' code. Deletions: a share of the remaining
(training) positives, chosen by one of :data:`STRATEGIES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bilinrec.experiments.unlearn import STRATEGIES


@dataclass(frozen=True)
class CellSet:
    """A set of matrix cells as parallel index arrays (sorted by user, then item)."""

    users: np.ndarray
    items: np.ndarray

    def __len__(self) -> int:
        return int(self.users.size)

    def flat(self, shape: tuple[int, int]) -> np.ndarray:
        return self.users * np.int64(shape[1]) + self.items

    @classmethod
    def from_flat(cls, flat: np.ndarray, shape: tuple[int, int]) -> "CellSet":
        flat = np.sort(np.asarray(flat, dtype=np.int64))
        return cls(users=flat // shape[1], items=flat % shape[1])


@dataclass(frozen=True)
class HeldOut:
    """Held-out cells with their true labels, and the training matrix they were removed from."""

    cells: CellSet
    labels: np.ndarray
    train: sp.csr_matrix


def _check_fraction(fraction: float, name: str = "fraction") -> None:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {fraction!r}")


def remove_cells(matrix: sp.csr_matrix, cells: CellSet) -> sp.csr_matrix:
    """A copy of ``matrix`` without the stored entries at ``cells`` (they become unobserved)."""
    matrix = sp.csr_matrix(matrix)
    coo = matrix.tocoo()
    stored = coo.row.astype(np.int64) * matrix.shape[1] + coo.col
    keep = ~np.isin(stored, cells.flat(matrix.shape))
    out = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=matrix.shape)
    out.sort_indices()
    return out


def holdout_split(binary: sp.csr_matrix, fraction: float, rng: np.random.Generator) -> HeldOut:
    """Hold out ``fraction`` of all cells uniformly (without replacement).

    Returns the held-out cells, their labels (1 for positives of ``binary``) and ``binary``
    with the held-out positives removed.
    """
    _check_fraction(fraction)
    binary = sp.csr_matrix(binary)
    n_cells = binary.shape[0] * binary.shape[1]
    n_held = int(round(fraction * n_cells))
    if n_held < 1:
        raise ValueError(f"fraction={fraction} of {n_cells} cells holds out nothing")
    cells = CellSet.from_flat(rng.choice(n_cells, size=n_held, replace=False), binary.shape)
    labels = np.asarray(binary[cells.users, cells.items]).ravel() > 0
    return HeldOut(cells=cells, labels=labels.astype(np.int8), train=remove_cells(binary, cells))


def _positives(train: sp.csr_matrix) -> CellSet:
    coo = sp.csr_matrix(train).tocoo()
    order = np.lexsort((coo.col, coo.row))
    return CellSet(users=coo.row[order].astype(np.int64), items=coo.col[order].astype(np.int64))


def _quantile_group(counts: np.ndarray, quantile: float, top: bool) -> np.ndarray:
    """Ids of the top (or bottom) ``quantile`` share of ids with at least one positive.

    Ties are broken by id so the group is deterministic.
    """
    active = np.flatnonzero(counts > 0)
    n_group = max(1, int(round(quantile * active.size)))
    order = active[np.lexsort((active, counts[active]))]  # ascending count, then id
    return order[-n_group:] if top else order[:n_group]


def _sample(pool: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    n = int(round(fraction * pool.size))
    if n < 1:
        raise ValueError(f"fraction={fraction} of a pool of {pool.size} positives deletes nothing")
    return rng.choice(pool, size=n, replace=False)


def _user_history(
    positives: CellSet,
    timestamps: np.ndarray,
    n_target: int,
    history_share: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Indices into ``positives``: random users each forget their most recent ``history_share``.

    Users are visited in random order; each forgets ``ceil(history_share * n_u)`` of their
    most recent positives (random order among equal timestamps) until ``n_target`` cells are
    chosen; the last user forgets only what is needed to hit the target exactly.
    """
    n_users = int(positives.users.max()) + 1
    tiebreak = rng.random(positives.users.size)
    order = np.lexsort((tiebreak, -timestamps, positives.users))  # per user, newest first
    starts = np.searchsorted(positives.users[order], np.arange(n_users + 1))
    counts = np.diff(starts)
    chosen = []
    total = 0
    for user in rng.permutation(np.flatnonzero(counts > 0)):
        take = min(int(np.ceil(history_share * counts[user])), n_target - total)
        chosen.append(order[starts[user] : starts[user] + take])
        total += take
        if total >= n_target:
            break
    return np.concatenate(chosen)


def select_deletions(
    train: sp.csr_matrix,
    strategy: str,
    fraction: float,
    rng: np.random.Generator,
    quantile: float = 0.1,
    history_share: float = 0.5,
    timestamps: sp.csr_matrix | None = None,
) -> CellSet:
    """Choose the positives of ``train`` to delete.

    ``uniform`` and ``user_history`` delete ``fraction`` of all training positives. The
    quantile strategies (``user_top`` ...) delete ``fraction`` of the positives inside their
    group (top/bottom ``quantile`` of users by activity or items by popularity), because the
    bottom groups hold far fewer than ``fraction`` of all positives.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    _check_fraction(fraction)
    _check_fraction(quantile, "quantile")
    if not 0.0 < history_share <= 1.0:
        raise ValueError(f"history_share must be in (0, 1], got {history_share!r}")
    train = sp.csr_matrix(train)
    positives = _positives(train)
    if len(positives) == 0:
        raise ValueError("train has no positives to delete")
    if strategy == "uniform":
        picked = _sample(np.arange(len(positives)), fraction, rng)
    elif strategy in ("user_top", "user_bottom"):
        counts = np.bincount(positives.users, minlength=train.shape[0])
        group = _quantile_group(counts, quantile, top=strategy == "user_top")
        picked = _sample(np.flatnonzero(np.isin(positives.users, group)), fraction, rng)
    elif strategy in ("item_top", "item_bottom"):
        counts = np.bincount(positives.items, minlength=train.shape[1])
        group = _quantile_group(counts, quantile, top=strategy == "item_top")
        picked = _sample(np.flatnonzero(np.isin(positives.items, group)), fraction, rng)
    else:
        if timestamps is None:
            stamps = np.zeros(len(positives))
        else:
            stamps = np.asarray(sp.csr_matrix(timestamps)[positives.users, positives.items]).ravel()
        n_target = int(round(fraction * len(positives)))
        if n_target < 1:
            raise ValueError(f"fraction={fraction} of {len(positives)} positives deletes nothing")
        picked = _user_history(positives, stamps, n_target, history_share, rng)
    picked = np.sort(picked)
    return CellSet(users=positives.users[picked], items=positives.items[picked])
