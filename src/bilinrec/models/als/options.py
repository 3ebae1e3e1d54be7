"""The values the settings of ALS take: feedback kinds, row solvers, unlearning modes, the
default memory budget of one chunk of work, and the checks of choices, iteration counts and tolerances."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

FEEDBACKS = ("implicit", "explicit")
SOLVERS = ("cholesky", "cg")
MODES = ("retrain", "mask", "naive")
#: Memory budget (bytes) for one chunk of gathered factors / stacked normal matrices.
DEFAULT_CHUNK_BYTES = 16 * 2**20


def check_choice(value: str, choices: Sequence[str], name: str) -> None:
    """``value`` is one of ``choices``, else a ``ValueError`` naming the setting ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_iterations(value: Any, name: str) -> None:
    """``value`` is a non-negative integer, else a ``ValueError`` naming the setting ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def check_tol(tol: Any) -> None:
    """``tol`` is a finite number >= 0, else a ``ValueError``."""
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
