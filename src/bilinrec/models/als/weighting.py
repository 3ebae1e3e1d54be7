"""Data-derived confidence weighting: interactions (binary or counts) -> confidences.

A :class:`Weighting` is part of an :class:`~bilinrec.models.als.ALS` model: with one, ``fit``
and ``unlearn`` take the *raw* interactions and compute the confidences themselves, so that
forgetting recomputes them on the reduced data -- exactly what retraining from scratch on the
reduced data does. Weightings such as BM25 depend on every record (idf, row lengths): deleting
one record changes the confidence of others.

Schemes:

* ``"identity"``: the stored values are the confidences (``c = x``);
* ``"scale"``: ``c = scale * x`` (the ``alpha`` of the ``implicit`` library >= 0.5);
* ``"linear"``: ``c = 1 + alpha * x`` (Hu, Koren & Volinsky 2008);
* ``"bm25"``: ``c = scale * BM25(K1, B)`` with ``bm25_rows`` ("items" or "users") as documents, as
  ``implicit.nearest_neighbours.bm25_weight``; weights are floored at machine epsilon so every
  stored cell stays a positive.

Only ``bm25`` depends on other records; the other schemes are cell-wise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

SCHEMES = ("identity", "scale", "linear", "bm25")


def bm25_weight(X: sp.spmatrix, K1: float = 100.0, B: float = 0.8) -> sp.csr_matrix:
    """BM25-weight the rows of ``X`` exactly as ``implicit.nearest_neighbours.bm25_weight``.

    Rows are "documents" (length-normalised by their sum), columns are "terms" (idf from
    the number of stored entries per column). Returns a new CSR matrix.
    """
    if K1 < 0 or not 0.0 <= B <= 1.0:
        raise ValueError(f"need K1 >= 0 and 0 <= B <= 1, got K1={K1}, B={B}")
    X = sp.coo_matrix(X, dtype=np.float64)
    n_rows = float(X.shape[0])
    idf = np.log(n_rows) - np.log1p(np.bincount(X.col, minlength=X.shape[1]))
    row_sums = np.ravel(X.sum(axis=1))
    average_length = row_sums.mean()
    if average_length <= 0:
        raise ValueError("X has no positive entries; BM25 is undefined")
    length_norm = (1.0 - B) + B * row_sums / average_length
    data = X.data * (K1 + 1.0) / (K1 * length_norm[X.row] + X.data) * idf[X.col]
    out = sp.csr_matrix((data, (X.row, X.col)), shape=X.shape)
    out.sort_indices()
    return out


@dataclass(frozen=True)
class Weighting:
    """Confidence of each stored cell computed from the whole interaction matrix (see module)."""

    scheme: str = "identity"
    scale: float = 1.0
    alpha: float = 40.0
    K1: float = 100.0
    B: float = 0.9
    bm25_rows: str = "items"

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"weighting scheme must be one of {', '.join(SCHEMES)}; got {self.scheme!r}")
        for name in ("scale", "alpha", "K1", "B"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise ValueError(f"weighting {name} must be a finite number, got {value!r}")
        if self.scheme in ("scale", "bm25") and self.scale <= 0:
            raise ValueError(f"weighting scale must be positive, got {self.scale}")
        if self.scheme == "linear" and self.alpha <= 0:
            raise ValueError(f"weighting alpha must be positive, got {self.alpha}")
        if self.scheme == "bm25":
            if self.K1 < 0 or not 0.0 <= self.B <= 1.0:
                raise ValueError(f"bm25 needs K1 >= 0 and 0 <= B <= 1, got K1={self.K1}, B={self.B}")
            if self.bm25_rows not in ("items", "users"):
                raise ValueError(f"weighting bm25_rows must be 'items' or 'users', got {self.bm25_rows!r}")

    @property
    def cellwise(self) -> bool:
        """Whether a cell's confidence depends on that cell alone (deleting others changes nothing)."""
        return self.scheme != "bm25"

    @property
    def affine(self) -> tuple[float, float]:
        """``(a, b)`` with confidence ``a + b * value``, for the cellwise schemes."""
        if not self.cellwise:
            raise ValueError(f"the {self.scheme} weighting is not cellwise")
        return {"identity": (0.0, 1.0), "scale": (0.0, float(self.scale)),
                "linear": (1.0, float(self.alpha))}[self.scheme]

    def __call__(self, X: Any) -> sp.csr_matrix:
        """Confidences (float64 CSR, same stored cells as ``X``)."""
        X = sp.csr_matrix(X, dtype=np.float64, copy=True)
        X.sum_duplicates()
        X.sort_indices()
        if self.scheme == "identity":
            return X
        if self.scheme == "scale":
            X.data = self.scale * X.data
            return X
        if self.scheme == "linear":
            X.data = 1.0 + self.alpha * X.data
            return X
        if X.nnz == 0:
            return X
        if self.bm25_rows == "items":
            conf = bm25_weight(X.T, K1=self.K1, B=self.B).T.tocsr()
        else:
            conf = bm25_weight(X, K1=self.K1, B=self.B)
        conf.sort_indices()
        conf.data = np.maximum(self.scale * conf.data, np.finfo(np.float64).eps)
        return conf

    def to_dict(self) -> dict[str, Any]:
        return {k: (float(v) if isinstance(v, (int, float, np.number)) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Weighting:
        """The weighting of a mapping of its fields (clear error naming any unknown key)."""
        unknown = sorted(str(key) for key in set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"weighting has unknown key(s) {', '.join(map(repr, unknown))}; "
                             f"expected some of {', '.join(cls.__dataclass_fields__)}")
        return cls(**dict(value))


def as_weighting(value: Any) -> Weighting | None:
    """``None``, a :class:`Weighting`, a mapping of its fields, or a scheme name."""
    if value is None or isinstance(value, Weighting):
        return value
    if isinstance(value, str):
        return Weighting(scheme=value)
    if isinstance(value, Mapping):
        return Weighting.from_dict(value)
    raise ValueError(f"weighting must be None, a Weighting, a mapping or a scheme name; got {value!r}")
