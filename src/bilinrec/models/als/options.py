"""The values the settings of ALS take: feedback kinds, row solvers, unlearning modes, and the
default memory budget of one chunk of work."""

from __future__ import annotations

from collections.abc import Sequence

FEEDBACKS = ("implicit", "explicit")
SOLVERS = ("cholesky", "cg")
MODES = ("retrain", "mask", "naive")
#: Memory budget (bytes) for one chunk of gathered factors / stacked normal matrices.
DEFAULT_CHUNK_BYTES = 16 * 2**20


def check_choice(value: str, choices: Sequence[str], name: str) -> None:
    """``value`` is one of ``choices``, else a ``ValueError`` naming the setting ``name``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
