"""The claims verdict: one row per claim of the two papers, computed from result tables.

Every claim names the tables it reads, what it measures, and the threshold (from the
``claims`` section of config.yaml) that decides its verdict: ``holds``,
``does not hold`` or ``not measured`` (with the reason). A table the workflow was asked to
produce must exist and have the expected columns; otherwise evaluation fails loudly
rather than quietly reporting ``not measured``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from .io import write_text
from .tables import format_mean_std

HOLDS, FAILS, NOT_MEASURED = "holds", "does not hold", "not measured"
VERDICTS = (HOLDS, FAILS, NOT_MEASURED)


class ClaimInputError(ValueError):
    """A result table the claims read is missing or malformed."""


@dataclass(frozen=True)
class Outcome:
    """What a claim's evaluator found."""

    value: float | None
    spread: float | None
    verdict: str
    detail: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    measure: str
    threshold_key: str
    tables: tuple[str, ...]
    evaluate: Callable[[Mapping[str, pd.DataFrame], float], Outcome] = field(repr=False)


def not_measured(reason: str) -> Outcome:
    return Outcome(None, None, NOT_MEASURED, reason)


def decide(ok: bool, value: float, spread: float | None, detail: str) -> Outcome:
    return Outcome(float(value), None if spread is None else float(spread), HOLDS if ok else FAILS, detail)


def load_table(path: str | os.PathLike, required_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a result CSV; raise :class:`ClaimInputError` naming the file if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise ClaimInputError(f"result table {path} is missing: run the workflow part that writes it")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ClaimInputError(f"result table {path} is malformed: {exc}") from exc
    missing = [c for c in required_columns if c not in df.columns]
    if missing:
        raise ClaimInputError(f"result table {path} lacks columns {missing} (has {list(df.columns)})")
    return df


def evaluate_claims(
    claims: list[Claim], tables: Mapping[str, pd.DataFrame | None], thresholds: Mapping[str, float]
) -> pd.DataFrame:
    """Evaluate each claim; a claim whose tables were not produced is ``not measured``."""
    rows = []
    for claim in claims:
        absent = [t for t in claim.tables if tables.get(t) is None]
        threshold = thresholds[claim.threshold_key]
        if absent:
            outcome = not_measured(f"not produced by this run: {', '.join(absent)}")
        else:
            outcome = claim.evaluate(tables, threshold)
        rows.append(
            {
                "id": claim.id,
                "claim": claim.claim,
                "source": claim.source,
                "measure": claim.measure,
                "threshold": threshold,
                "value": outcome.value,
                "spread": outcome.spread,
                "verdict": outcome.verdict,
                "detail": outcome.detail,
            }
        )
    return pd.DataFrame(rows)


def _fmt(value: Any, spread: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    spread = None if spread is None or (isinstance(spread, float) and math.isnan(spread)) else spread
    if spread is None:
        return f"{value:.4g}"
    return format_mean_std(value, spread)


def write_claims(df: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike) -> None:
    """Write the verdicts as CSV (machine-readable) and Markdown (opens the report)."""
    write_text(csv_path, df.to_csv(index=False))
    counts = df["verdict"].value_counts()
    lines = [
        "# Claims verdict",
        "",
        "Computed by the workflow from the result tables of this run "
        f"({counts.get(HOLDS, 0)} hold, {counts.get(FAILS, 0)} do not hold, "
        f"{counts.get(NOT_MEASURED, 0)} not measured). Thresholds are set in the `claims` section of config.yaml.",
        "",
        "| id | claim | source | measured | value | threshold | verdict | detail |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in df.itertuples(index=False):
        value = None if pd.isna(row.value) else row.value
        spread = None if pd.isna(row.spread) else row.spread
        lines.append(
            f"| {row.id} | {row.claim} | {row.source} | {row.measure} | {_fmt(value, spread)} | "
            f"{row.threshold:g} | **{row.verdict}** | {row.detail} |"
        )
    write_text(md_path, "\n".join(lines) + "\n")
