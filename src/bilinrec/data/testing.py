"""Tiny made-up ratings files for tests and workflow smoke tests (no MovieLens content).

A tiny file cannot pass a MovieLens checksum or count check, so tests register it as a
``custom`` dataset instead: :func:`write_tiny_ratings` writes the file and returns the
``data.custom.<name>`` config entry that describes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np


def tiny_ratings_text(n_users: int = 12, n_items: int = 15, per_user: int = 6, seed: int = 0) -> str:
    """CSV text ``user,item,rating,timestamp`` (with header), distinct pairs, ratings 1..5."""
    if not 1 <= per_user <= n_items:
        raise ValueError(f"per_user must be in 1..n_items={n_items}, got {per_user}")
    rng = np.random.default_rng(seed)
    lines = ["user,item,rating,timestamp"]
    for u in range(1, n_users + 1):
        items = np.sort(rng.choice(n_items, size=per_user, replace=False)) + 1
        for i in items:
            lines.append(f"u{u},{i},{rng.integers(1, 6)},{880_000_000 + rng.integers(0, 10**6)}")
    return "\n".join(lines) + "\n"


def write_tiny_ratings(path: str | os.PathLike, **kwargs: Any) -> dict[str, Any]:
    """Write :func:`tiny_ratings_text` to ``path``; return its ``data.custom.<name>`` config entry."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tiny_ratings_text(**kwargs), encoding="utf-8")
    return {
        "path": str(path),
        "sep": ",",
        "header": True,
        "columns": {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"},
        "rating_scale": [1, 5],
    }
