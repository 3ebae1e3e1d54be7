"""Per-run seeds derived from one root seed.

Every random choice in the project takes its seed from ``derive_seed(root, *keys)``,
so the same config gives the same numbers and runs with different keys are independent.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _key_to_int(key: object) -> int:
    digest = hashlib.sha256(repr(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def derive_seed(root: int, *keys: object) -> int:
    """Return a 32-bit seed determined by ``root`` and the ordered ``keys``.

    Keys may be any values with a stable ``repr`` (str, int, float, tuples of them).
    """
    if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or root < 0:
        raise ValueError(f"root seed must be a non-negative integer, got {root!r}")
    seq = np.random.SeedSequence([int(root)] + [_key_to_int(k) for k in keys])
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def derive_rng(root: int, *keys: object) -> np.random.Generator:
    """A NumPy ``Generator`` seeded with ``derive_seed(root, *keys)``."""
    return np.random.default_rng(derive_seed(root, *keys))
