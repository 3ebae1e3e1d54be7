"""Turn ratings into the implicit-feedback confidence matrices Unlearn-ALS trains on.

Following the authors' code: ratings below 3 are dropped, the rest become positives (1),
and the confidence of a positive is ``5 x BM25(K1=100, B=0.9)`` of the binary matrix.
The synthetic dataset is an exactly low-rank binary matrix ``1[U V^T > threshold]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from bilinrec.experiments.als_inputs import confidence_weighting
from bilinrec.models.als.weighting import Weighting, bm25_weight  # noqa: F401  (bm25_weight re-exported)


@dataclass(frozen=True)
class ImplicitData:
    """A users x items binary matrix of positives plus per-positive timestamps.

    ``binary`` is CSR with data 1.0 on positives (sorted indices); ``timestamps`` is CSR
    with the same sparsity pattern holding the interaction time (all zero when unknown).
    """

    binary: sp.csr_matrix
    timestamps: sp.csr_matrix

    @property
    def shape(self) -> tuple[int, int]:
        return self.binary.shape

    @property
    def n_positives(self) -> int:
        return int(self.binary.nnz)


def _csr(users, items, values, shape) -> sp.csr_matrix:
    mat = sp.csr_matrix((values, (users, items)), shape=shape)
    mat.sum_duplicates()
    mat.sort_indices()
    return mat


def binarize_ratings(
    user: np.ndarray,
    item: np.ndarray,
    rating: np.ndarray,
    timestamp: np.ndarray | None = None,
    n_users: int | None = None,
    n_items: int | None = None,
    min_rating: float = 3.0,
) -> ImplicitData:
    """Keep ratings ``>= min_rating`` as positives (value 1); drop the rest.

    The shape keeps every user and item of the input (``n_users``/``n_items`` default to
    ``max index + 1``), so ids stay aligned with the prepared dataset.
    """
    user = np.asarray(user, dtype=np.int64)
    item = np.asarray(item, dtype=np.int64)
    rating = np.asarray(rating, dtype=np.float64)
    if not (user.shape == item.shape == rating.shape) or user.ndim != 1:
        raise ValueError("user, item and rating must be 1-D arrays of equal length")
    if timestamp is None:
        timestamp = np.zeros_like(user)
    timestamp = np.asarray(timestamp, dtype=np.int64)
    if timestamp.shape != user.shape:
        raise ValueError("timestamp must have the same length as user")
    if user.size and (user.min() < 0 or item.min() < 0):
        raise ValueError("user and item indices must be non-negative")
    n_users = int(user.max() + 1 if n_users is None else n_users)
    n_items = int(item.max() + 1 if n_items is None else n_items)
    keep = rating >= min_rating
    u, i = user[keep], item[keep]
    pairs = u * n_items + i
    if np.unique(pairs).size != pairs.size:
        raise ValueError("duplicate (user, item) ratings; deduplicate before binarizing")
    binary = _csr(u, i, np.ones(u.size), (n_users, n_items))
    # +1 so that a zero timestamp is still stored; subtract again when reading.
    stamps = _csr(u, i, timestamp[keep].astype(np.float64) + 1.0, (n_users, n_items))
    stamps.data -= 1.0
    return ImplicitData(binary=binary, timestamps=stamps)


def synthetic_low_rank_binary(
    n_users: int, n_items: int, rank: int, density: float, rng: np.random.Generator
) -> ImplicitData:
    """Exactly low-rank binary matrix ``1[U V^T > t]`` with ``t`` set to hit ``density``.

    ``U`` and ``V`` are standard Gaussian with ``rank`` columns, so the score matrix has
    rank exactly ``rank``; thresholding at its ``1 - density`` quantile gives the positives.
    """
    if n_users < 2 or n_items < 2:
        raise ValueError("n_users and n_items must be at least 2")
    if not 1 <= rank <= min(n_users, n_items):
        raise ValueError(f"rank must be in [1, min(n_users, n_items)], got {rank}")
    if not 0.0 < density < 1.0:
        raise ValueError(f"density must be in (0, 1), got {density}")
    U = rng.standard_normal((n_users, rank))
    V = rng.standard_normal((n_items, rank))
    scores = U @ V.T
    threshold = np.quantile(scores, 1.0 - density)
    users, items = np.nonzero(scores > threshold)
    binary = _csr(users, items, np.ones(users.size), (n_users, n_items))
    stamps = binary.copy()
    stamps.data[:] = 0.0
    return ImplicitData(binary=binary, timestamps=stamps)


def confidence_matrix(
    binary: sp.csr_matrix,
    scheme: str = "bm25",
    scale: float = 5.0,
    K1: float = 100.0,
    B: float = 0.9,
    bm25_rows: str = "items",
    alpha: float = 40.0,
) -> sp.csr_matrix:
    """Confidence of each positive of the users x items ``binary`` matrix.

    ``scheme="bm25"``: ``scale * BM25(K1, B)``; ``bm25_rows`` says which axis plays the
    documents ("items": the item x user matrix is weighted, as in implicit's examples and the
    authors' item_users convention; "users": the user x item matrix). ``scheme="linear"``:
    ``1 + alpha * r`` (Hu et al. 2008) with ``r`` the binary value. Cells with a non-positive
    BM25 weight (idf <= 0: a column stored in every row but at most one) keep a tiny floor
    so they remain stored positives.
    """
    if scheme not in ("bm25", "linear"):
        raise ValueError(f"scheme must be 'bm25' or 'linear', got {scheme!r}")
    return confidence_weighting(scheme=scheme, scale=scale, K1=K1, B=B, bm25_rows=bm25_rows, alpha=alpha)(binary)
