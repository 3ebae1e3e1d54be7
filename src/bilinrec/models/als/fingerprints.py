"""Content hashes of the data and the models a forgetting certificate names.

A certificate is only worth something if it says exactly which model and which data it is
about. These are SHA-256 digests of the bytes themselves -- shape, index arrays, values, factor
bytes, in order -- so a permutation of rows, an edited value or a re-ordered matrix gives a
different digest (an order-insensitive sum would not). Arrays are hashed in a canonical dtype
(int64 indices, float64 values) so the same matrix read from CSV or NPZ hashes the same.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import scipy.sparse as sp


def _update(h: Any, array: np.ndarray, dtype: str) -> None:
    a = np.ascontiguousarray(array, dtype=dtype)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))


def data_digest(X: sp.csr_matrix) -> str:
    """SHA-256 of a canonical CSR matrix: shape, ``indptr``, ``indices`` and values, in order."""
    h = hashlib.sha256(b"csr")
    h.update(repr(tuple(int(n) for n in X.shape)).encode())
    _update(h, X.indptr, "<i8")
    _update(h, X.indices, "<i8")
    _update(h, X.data, "<f8")
    return h.hexdigest()


def model_digest(objective: dict[str, Any], arrays: list[np.ndarray | None], global_mean: float) -> str:
    """SHA-256 of a model: the parameters of its objective (JSON, sorted keys), then every factor
    and bias array's dtype, shape and bytes, in order (``None`` hashed as absent), and the global mean."""
    h = hashlib.sha256(b"als-model")
    h.update(json.dumps(objective, sort_keys=True).encode())
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    h.update(np.float64(global_mean).tobytes())
    return h.hexdigest()
