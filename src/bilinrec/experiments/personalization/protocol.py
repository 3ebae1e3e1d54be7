"""The sparse-data personalization protocol: background/evaluation users and per-user splits.

Half of the users (chosen by seed) are *background* users: only they train the item
embeddings. Every other user is an *evaluation* user whose ratings are shuffled once per
seed and cut into a fixed test set, a fixed validation set and a training pool; the
training set for ``m`` ratings is the first ``m`` ratings of the pool, so the sets are
nested in ``m`` and every ``m`` is scored on the same test ratings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: The training-size label of "all but the validation and test ratings".
ALL = "all"


@dataclass(frozen=True)
class UserSplit:
    """Rating indices (into the dataset arrays) of every evaluation user, grouped by user.

    ``pool_ptr`` etc. are CSR-style offsets: the ratings of evaluation user ``j`` in
    the pool are ``pool[pool_ptr[j]:pool_ptr[j + 1]]`` (already in random order).
    """

    background_users: np.ndarray
    eval_users: np.ndarray
    n_ratings: np.ndarray
    pool: np.ndarray
    pool_ptr: np.ndarray
    validation: np.ndarray
    validation_ptr: np.ndarray
    test: np.ndarray
    test_ptr: np.ndarray

    @property
    def pool_sizes(self) -> np.ndarray:
        return np.diff(self.pool_ptr)

    def eligible(self, m: int | str) -> np.ndarray:
        """Boolean mask over evaluation users whose pool holds at least ``m`` ratings."""
        if m == ALL:
            return self.pool_sizes >= 1
        return self.pool_sizes >= int(m)

    def training(self, m: int | str) -> tuple[np.ndarray, np.ndarray]:
        """Rating indices and evaluation-user positions of the ``m`` training ratings of each eligible user."""
        keep = self.eligible(m)
        starts = self.pool_ptr[:-1][keep]
        counts = self.pool_sizes[keep] if m == ALL else np.full(keep.sum(), int(m))
        return _gather(self.pool, starts, counts, np.flatnonzero(keep))

    def held_out(self, kind: str, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rating indices and user positions of the ``kind`` ('validation'/'test') ratings of ``users``."""
        if kind not in ("validation", "test"):
            raise ValueError(f"kind must be 'validation' or 'test', got {kind!r}")
        idx, ptr = (self.validation, self.validation_ptr) if kind == "validation" else (self.test, self.test_ptr)
        return _gather(idx, ptr[:-1][users], np.diff(ptr)[users], users)


def _gather(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, owners: np.ndarray):
    """Concatenate ``values[s:s+c]`` for every (start, count) and tag each with its owner."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(owners, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return values[np.repeat(starts, counts) + offsets], owner


def parse_train_sizes(train_sizes: Sequence[int | str]) -> list[int | str]:
    """Validate the training sizes ``m`` (positive integers or ``"all"``), keeping their order."""
    out: list[int | str] = []
    for m in train_sizes:
        if m == ALL:
            out.append(ALL)
        elif isinstance(m, (int, np.integer)) and not isinstance(m, bool) and m >= 1:
            out.append(int(m))
        else:
            raise ValueError(f"train_sizes entries must be positive integers or {ALL!r}, got {m!r}")
    if not out or len(set(out)) != len(out):
        raise ValueError(f"train_sizes must be non-empty and without duplicates, got {list(train_sizes)!r}")
    return out


def held_out_counts(n_ratings: np.ndarray, test_fraction: float, validation_fraction: float):
    """Test and validation ratings per user: a fraction of the user's history, at least one each."""
    n_ratings = np.asarray(n_ratings, dtype=np.int64)
    n_test = np.maximum(1, np.ceil(test_fraction * n_ratings).astype(np.int64))
    n_val = np.maximum(1, np.ceil(validation_fraction * n_ratings).astype(np.int64))
    return n_test, n_val


def check_protocol(
    user: np.ndarray,
    train_sizes: Sequence[int | str],
    background_fraction: float,
    test_fraction: float,
    validation_fraction: float,
    min_eval_users: int,
) -> None:
    """Raise ``ValueError`` before any compute if the dataset cannot support the protocol.

    It needs at least one background user, ``min_eval_users`` evaluation users, and for
    every integer ``m`` at least one user whose training pool can hold ``m`` ratings.
    """
    if not 0.0 < background_fraction < 1.0:
        raise ValueError(f"background_fraction must be in (0, 1), got {background_fraction!r}")
    for name, value in (("test_fraction", test_fraction), ("validation_fraction", validation_fraction)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    if test_fraction + validation_fraction >= 1.0:
        raise ValueError("test_fraction + validation_fraction must be below 1")
    sizes = parse_train_sizes(train_sizes)
    user = np.asarray(user)
    if user.size == 0:
        raise ValueError("the dataset has no ratings")
    counts = np.bincount(user)
    counts = counts[counts > 0]
    n_users = counts.size
    n_background = int(round(background_fraction * n_users))
    n_eval = n_users - n_background
    if n_background < 1 or n_eval < min_eval_users:
        raise ValueError(
            f"the dataset has {n_users} users: a background fraction of {background_fraction} leaves "
            f"{n_background} background and {n_eval} evaluation users, but at least 1 and "
            f"{min_eval_users} (min_eval_users) are needed"
        )
    n_test, n_val = held_out_counts(counts, test_fraction, validation_fraction)
    largest_pool = int((counts - n_test - n_val).max())
    if largest_pool < 1:
        raise ValueError("no user keeps a training rating after the validation and test ratings are held out")
    too_large = [m for m in sizes if m != ALL and m > largest_pool]
    if too_large:
        raise ValueError(
            f"train_sizes {too_large} exceed every user's history: the largest training pool after "
            f"holding out validation and test ratings is {largest_pool} ratings"
        )


def split_users(
    user: np.ndarray,
    rng: np.random.Generator,
    background_fraction: float = 0.5,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
) -> UserSplit:
    """Choose background users and cut every evaluation user's ratings into pool/validation/test.

    ``user`` holds the 0-based user of every rating. Users without ratings are ignored.
    """
    user = np.asarray(user, dtype=np.int64)
    counts = np.bincount(user)
    present = np.flatnonzero(counts > 0)
    order = rng.permutation(present)
    n_background = int(round(background_fraction * present.size))
    background, evaluation = np.sort(order[:n_background]), np.sort(order[n_background:])

    # Shuffle every rating once, then group by user while keeping the shuffled order.
    shuffled = rng.permutation(user.size)
    shuffled = shuffled[np.argsort(user[shuffled], kind="stable")]
    starts = np.concatenate([[0], np.cumsum(counts)])[evaluation]
    n_ratings = counts[evaluation]
    n_test, n_val = held_out_counts(n_ratings, test_fraction, validation_fraction)
    n_test = np.minimum(n_test, n_ratings)
    n_val = np.minimum(n_val, n_ratings - n_test)
    n_pool = n_ratings - n_test - n_val
    positions = np.arange(evaluation.size)
    test, _ = _gather(shuffled, starts, n_test, positions)
    validation, _ = _gather(shuffled, starts + n_test, n_val, positions)
    pool, _ = _gather(shuffled, starts + n_test + n_val, n_pool, positions)

    def ptr(c):
        return np.concatenate([[0], np.cumsum(c)]).astype(np.int64)

    return UserSplit(
        background_users=background,
        eval_users=evaluation,
        n_ratings=n_ratings,
        pool=pool,
        pool_ptr=ptr(n_pool),
        validation=validation,
        validation_ptr=ptr(n_val),
        test=test,
        test_ptr=ptr(n_test),
    )
