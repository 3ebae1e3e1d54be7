"""Samples of many users sorted by user, with the per-user segment operations AMHT-LRS batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import scipy.sparse as sp

from . import compiled, segment_kernels

#: Upper bound on the number of floats a batched temporary may hold (about 400 MB).
_MAX_BATCH_ELEMENTS = 50_000_000
#: Largest per-user Gram cache (floats, about 100 MB) that ``LRSData.user_grams`` keeps.
_MAX_GRAM_CACHE_ELEMENTS = 12_500_000
#: Rows per block of the matrix-free U-step product (a block of X stays in cache).
_MATVEC_BLOCK_ROWS = 2048

# --------------------------------------------------------------------------------------
# Data: rows sorted by user, per-user segment operations
# --------------------------------------------------------------------------------------
@dataclass
class LRSData:
    """Samples sorted by user with the segment bookkeeping every batched operation uses.

    ``X[indptr[i]:indptr[i+1]]`` are the samples of user ``i``; ``order`` maps sorted rows
    back to the caller's row order (``X_sorted = X_input[order]``; ``None`` when the caller's
    rows were already sorted by user: no (N,) identity permutation is stored).
    """

    X: np.ndarray
    y: np.ndarray
    indptr: np.ndarray
    order: np.ndarray | None
    counts: np.ndarray = field(init=False)
    _row_user: np.ndarray | None = field(default=None, init=False, repr=False)
    _buckets: list | None = field(default=None, init=False, repr=False)
    _user_grams: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.counts = np.diff(self.indptr)

    @property
    def row_user(self) -> np.ndarray:
        """The user of every sorted row, (N,); made on first use and kept (the fused kernels and
        the 1-D segment sums work from ``indptr`` and never need it)."""
        if self._row_user is None:
            self._row_user = np.repeat(np.arange(self.n_users), self.counts)
        return self._row_user

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    @property
    def dim(self) -> int:
        return self.X.shape[1]

    def subset_rows(self, mask: np.ndarray) -> "LRSData":
        """The data restricted to sorted rows where ``mask`` is true (user ids kept)."""
        counts = np.bincount(self.row_user[mask], minlength=self.n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return LRSData(self.X[mask], self.y[mask], indptr, self._original_rows(mask))

    def subset_users(self, users: np.ndarray) -> tuple["LRSData", np.ndarray]:
        """The data of ``users`` only (renumbered ``0..len(users)-1``) and the sorted rows taken."""
        counts = self.counts[users]
        first = np.cumsum(counts) - counts
        rows = np.repeat(self.indptr[users] - first, counts) + np.arange(counts.sum())
        indptr = np.concatenate([[0], np.cumsum(counts)])
        return LRSData(self.X[rows], self.y[rows], indptr, self._original_rows(rows)), rows

    def _original_rows(self, rows: np.ndarray) -> np.ndarray:
        """The caller's row numbers of sorted ``rows`` (indices or a boolean mask)."""
        if self.order is None:
            return np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows)
        return self.order[rows]

    def segment_sum(self, values: np.ndarray, row_weights: np.ndarray | None = None) -> np.ndarray:
        """Per-user sums ``sum_j row_weights_j * values_j`` -> shape ``(t,) + values.shape[1:]``."""
        if values.ndim == 1:
            w = values if row_weights is None else values * row_weights
            if compiled.ENABLED:  # bitwise the bincount sums (rows added in order), without row_user
                return segment_kernels.segment_sums(np.asarray(w, dtype=np.float64), self.indptr)
            return np.bincount(self.row_user, weights=w, minlength=self.n_users)
        data = np.ones(self.n_samples) if row_weights is None else row_weights
        summer = sp.csr_matrix(
            (data, np.arange(self.n_samples), self.indptr), shape=(self.n_users, self.n_samples)
        )
        flat = values.reshape(self.n_samples, -1)
        return np.asarray(summer @ flat).reshape((self.n_users,) + values.shape[1:])

    def buckets(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Users grouped by sample count: list of ``(users, rows)`` with ``rows`` of shape (n, c)."""
        if self._buckets is None:
            self._buckets = []
            for c in np.unique(self.counts):
                if c == 0:
                    continue
                users = np.flatnonzero(self.counts == c)
                rows = self.indptr[users][:, None] + np.arange(c)
                self._buckets.append((users, rows))
        return self._buckets

    def iter_batches(self, width: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(users, rows)`` batches of equal-count users, each at most ~_MAX_BATCH_ELEMENTS
        floats once ``width`` columns are gathered per row and a ``width x width`` Gram is made."""
        for users, rows in self.buckets():
            per_user = rows.shape[1] * width + width * width
            step = max(1, _MAX_BATCH_ELEMENTS // max(per_user, 1))
            for start in range(0, len(users), step):
                yield users[start : start + step], rows[start : start + step]

    def user_grams(self) -> np.ndarray | None:
        """Per-user ``X_i^T X_i`` as ``(t, d * d)``, computed once and kept (they do not change
        between rounds); ``None`` when the cache would exceed ``_MAX_GRAM_CACHE_ELEMENTS``."""
        if self.n_users * self.dim**2 > _MAX_GRAM_CACHE_ELEMENTS:
            return None
        if self._user_grams is None:
            self._user_grams = self.segment_gram(self.X).reshape(self.n_users, -1)
        return self._user_grams

    def segment_gram(self, F: np.ndarray, row_weights: np.ndarray | None = None) -> np.ndarray:
        """Per-user Gram matrices ``sum_j w_j f_j f_j^T`` of the rows of ``F`` -> ``(t, p, p)``."""
        p = F.shape[1]
        out = np.zeros((self.n_users, p, p))
        for users, rows in self.iter_batches(p):
            Fu = F[rows]
            Fw = Fu if row_weights is None else Fu * row_weights[rows][..., None]
            out[users] = _batched_gram(Fw, Fu)
        return out


def _batched_gram(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A[i]^T B[i]`` for stacks (n, m, p); the transposed operand is made contiguous so
    that NumPy dispatches every product to BLAS (about 25x faster than a strided view)."""
    return np.matmul(np.ascontiguousarray(A.transpose(0, 2, 1)), B)


#: Most users without samples a data set may declare (``n_users`` or the largest id + 1 beyond
#: the number of samples): every user costs per-user parameter rows, so an id like 1e9 would
#: silently allocate gigabytes. Ids must be dense indices ``0..t-1``.
_MAX_EXTRA_USERS = 1_000_000

_REMAP_HINT = ("map arbitrary ids to dense indices first, e.g. "
               "`index, users = np.unique(users, return_inverse=True)` (index[i] is the id of user i)")


def _as_user_ids(users: np.ndarray, name: str = "users") -> np.ndarray:
    """``users`` as an int64 array of non-negative ids, with a clear error for anything else
    (strings, booleans, non-integral or non-finite floats, ids beyond int64). An int64 array is
    returned as is (no copy of an (N,) array; callers never write to it)."""
    try:
        users = np.asarray(users)
    except (ValueError, TypeError) as exc:  # ragged input
        raise ValueError(f"{name} must be a one-dimensional array of integer user ids: {exc}") from None
    if users.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {users.shape}")
    if users.size and (users.dtype == bool or not (
        np.issubdtype(users.dtype, np.integer) or np.issubdtype(users.dtype, np.floating)
    )):
        raise ValueError(
            f"{name} must hold integer user ids 0..t-1, got dtype {users.dtype} "
            f"(e.g. {users[0]!r}); {_REMAP_HINT}"
        )
    if users.size and not np.issubdtype(users.dtype, np.integer):
        if not np.all(np.isfinite(users)) or np.any(users != np.round(users)):
            raise ValueError(f"{name} must hold integer user ids, got non-integral values of dtype {users.dtype}")
        if np.max(np.abs(users)) >= 2.0**62:
            raise ValueError(f"{name} holds an id too large for an index ({np.max(np.abs(users)):g}); {_REMAP_HINT}")
    users = users.astype(np.int64, copy=False)
    if users.size and users.min() < 0:
        raise ValueError(f"{name} must hold non-negative user ids, found {users.min()}")
    return users


def count_users(users: np.ndarray, n_samples: int, n_users: int | None = None) -> int:
    """The number of users ``t`` (``n_users``, or the largest id + 1), validated: at least the
    largest id + 1 and at most ``n_samples + _MAX_EXTRA_USERS`` (ids are dense indices; a
    huge id would otherwise allocate per-user arrays of that size)."""
    t = int(users.max()) + 1 if users.size else 0
    if n_users is not None:
        if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)):
            raise ValueError(f"n_users must be an integer, got {n_users!r}")
        if int(n_users) < t:
            raise ValueError(f"n_users={n_users} is smaller than the largest user id + 1 ({t})")
        t = int(n_users)
    if t > n_samples + _MAX_EXTRA_USERS:
        raise ValueError(
            f"{t} users (largest id + 1 or n_users) for only {n_samples} samples: user ids must be "
            f"dense indices 0..t-1 (at most {_MAX_EXTRA_USERS} users without samples); {_REMAP_HINT}"
        )
    return t


def prepare_data(X, y, users, n_users: int | None = None) -> LRSData:
    """Validate stacked samples and sort them by user.

    ``X`` (N, d) features, ``y`` (N,) targets, ``users`` (N,) non-negative integer ids that
    index users densely (``0..t-1``; ids are *not* remapped: strings, non-integral values and
    ids far beyond the number of samples are refused with an error that shows how to remap);
    ``n_users`` (default ``max(users) + 1``) allows users without samples at the end.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    users = _as_user_ids(users)
    if not (len(X) == len(y) == len(users)):
        raise ValueError(
            f"X, y and users must have the same length, got {len(X)}, {len(y)} and {len(users)}"
        )
    if len(X) == 0:
        raise ValueError("X has no samples")
    if not _all_finite(X):
        raise ValueError("X contains NaN or infinite values")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    t = count_users(users, len(users), n_users)
    counts = np.bincount(users, minlength=t)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    if np.all(users[1:] >= users[:-1]):
        # already sorted by user: use X and y as given (no copies; never written), order None
        return LRSData(np.ascontiguousarray(X), y, indptr, None)
    order = np.argsort(users, kind="stable")
    return LRSData(np.ascontiguousarray(X[order]), y[order], indptr, order)


def _all_finite(X: np.ndarray, block_rows: int = 65_536) -> bool:
    """``np.all(np.isfinite(X))`` without an (N, d) temporary."""
    return all(np.isfinite(X[s : s + block_rows]).all() for s in range(0, len(X), block_rows))


def sparse_features(data: LRSData, heads) -> np.ndarray:
    """Columns of every sample's features on its user's support (``heads.S``), (N, k); inactive
    slots are 0."""
    flat = (np.arange(data.n_samples) * data.dim)[:, None] + heads.S[data.row_user]
    return data.X.ravel()[flat] * heads.active[data.row_user]


def sparse_prediction(data: LRSData, heads) -> np.ndarray:
    """``<x_ij, b_i>`` per sample from the support form of ``b_i`` (``heads.S``, ``heads.V``), (N,)."""
    return np.einsum("nk,nk->n", sparse_features(data, heads), heads.V[data.row_user])
