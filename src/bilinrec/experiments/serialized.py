"""How per-user parameters are stored, shared by the parts that count their bytes (storage,
personalization): float32 values, the smallest unsigned integer type for indices, and the byte
length of arrays serialized as an uncompressed ``.npz``."""

from __future__ import annotations

import io
from typing import Mapping

import numpy as np

VALUE_DTYPE = np.dtype(np.float32)


def index_dtype(size: int) -> np.dtype:
    """Smallest unsigned integer type that can index ``size`` positions."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if size - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"cannot index {size} positions")


def serialized_nbytes(arrays: Mapping[str, np.ndarray]) -> int:
    """Length in bytes of ``arrays`` serialized as an uncompressed ``.npz``."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getbuffer().nbytes
