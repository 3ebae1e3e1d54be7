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


# --------------------------------------------------------------------------------------
# Paper B: Unlearn-ALS (table unlearn_summary, one row per dataset x strategy x fraction x model;
# table unlearn_checks, one row per run)

_RUN = ["dataset", "strategy", "fraction"]
UNLEARN_SUMMARY_COLUMNS = (*_RUN, "model", "heldout_auc_mean", "heldout_auc_std", "speedup_mean",
                           "mia_threshold_heldout_mean")
UNLEARN_CHECKS_COLUMNS = (*_RUN, "seed", "objective_identity_rel_diff", "unlearn_fixed_point_ok",
                          "auc_in_band_unlearn_retrain")


def _models_side_by_side(summary: pd.DataFrame, column: str, models: tuple[str, ...]) -> pd.DataFrame:
    wide = summary.pivot_table(index=_RUN, columns="model", values=column, aggfunc="first")
    missing = [m for m in models if m not in wide.columns]
    if missing:
        raise ClaimInputError(f"unlearn_summary has no rows for models {missing}")
    return wide[list(models)].dropna()


def claim_b1(tables: Mapping[str, pd.DataFrame], z: float) -> Outcome:
    """Unlearned (retrain mode) AUC inside the retraining band (mean ± z·std over seeds)
    in every setting, and the objective identity exact to 1e-10."""
    summary, checks = tables["unlearn_summary"], tables["unlearn_checks"]
    mean = _models_side_by_side(summary, "heldout_auc_mean", ("retrained", "unlearn_retrain"))
    std = _models_side_by_side(summary, "heldout_auc_std", ("retrained",))["retrained"].reindex(mean.index)
    if mean.empty:
        return not_measured("no unlearning runs in unlearn_summary")
    inside = (mean["unlearn_retrain"] - mean["retrained"]).abs() <= z * std
    identity = float(checks["objective_identity_rel_diff"].abs().max())
    fixed = float(checks["unlearn_fixed_point_ok"].astype(float).mean())
    strict = float(checks["auc_in_band_unlearn_retrain"].astype(float).mean())
    ok = bool(inside.all()) and identity <= 1e-10
    return decide(
        ok, float(inside.mean()), None,
        f"fraction of {len(inside)} settings inside retrained mean ± {z:g}·std; max objective-identity "
        f"rel. diff {identity:.1e} (needs ≤ 1e-10); per-run fixed point (< 1e-9) reached in {fixed:.0%} of runs; "
        f"inside the per-run [min, max] of the init-seed band in {strict:.0%} of runs",
    )


def claim_b2(tables: Mapping[str, pd.DataFrame], tolerance: float) -> Outcome:
    """Unlearned AUC no worse than retrained AUC (by more than ``tolerance``); naive degrades."""
    mean = _models_side_by_side(tables["unlearn_summary"], "heldout_auc_mean", ("retrained", "unlearn_retrain", "naive"))
    if mean.empty:
        return not_measured("no unlearning runs in unlearn_summary")
    gap = mean["unlearn_retrain"] - mean["retrained"]
    naive_gap = mean["naive"] - mean["retrained"]
    return decide(
        bool(gap.min() >= -tolerance), float(gap.mean()), float(gap.std(ddof=0)),
        f"AUC(unlearned) − AUC(retrained) over {len(gap)} settings, worst {gap.min():+.4f}; "
        f"naive fine-tune: mean {naive_gap.mean():+.4f}, worst {naive_gap.min():+.4f}",
    )


def claim_b3(tables: Mapping[str, pd.DataFrame], min_speedup: float) -> Outcome:
    """Unlearn-ALS reaches the retraining objective much faster than retraining."""
    speed = _models_side_by_side(tables["unlearn_summary"], "speedup_mean", ("unlearn_retrain",))["unlearn_retrain"]
    if speed.empty:
        return not_measured("no speedup measured (unlearning never reached the retraining objective)")
    return decide(
        bool(speed.min() >= min_speedup), float(speed.median()), None,
        f"median over {len(speed)} settings (min {speed.min():.1f}, max {speed.max():.1f}) of retraining time ÷ "
        "unlearning time to the same objective",
    )


def claim_b4(tables: Mapping[str, pd.DataFrame], tolerance: float) -> Outcome:
    """A membership-inference attacker tells deleted records apart no better after unlearning than after retraining."""
    mia = _models_side_by_side(tables["unlearn_summary"], "mia_threshold_heldout_mean",
                               ("original", "retrained", "unlearn_retrain"))
    if mia.empty:
        return not_measured("no membership-inference audit in unlearn_summary")
    gap = (mia["unlearn_retrain"] - mia["retrained"]).abs()
    return decide(
        bool(gap.max() <= tolerance), float(gap.mean()), float(gap.std(ddof=0)),
        f"|attack AUC(unlearned) − attack AUC(retrained)|, deleted vs held-out positives, worst {gap.max():.3f}; "
        f"attack AUC on the original model {mia['original'].mean():.3f}, unlearned {mia['unlearn_retrain'].mean():.3f}, "
        f"retrained {mia['retrained'].mean():.3f}",
    )


def claim_b5(tables: Mapping[str, pd.DataFrame], tolerance: float, target: float = 0.87) -> Outcome:
    """Held-out AUC of the original model on ML-100K near the authors' ~0.87."""
    summary = tables["unlearn_summary"]
    rows = summary[(summary["dataset"] == "ml-100k") & (summary["model"] == "original")]
    if rows.empty:
        return not_measured("ml-100k is not among unlearn.datasets in this run")
    auc, spread = float(rows["heldout_auc_mean"].mean()), float(rows["heldout_auc_std"].mean())
    return decide(abs(auc - target) <= tolerance, auc, spread,
                  f"original model, 150 iterations, factors 100, λ 0.01; target {target} ± {tolerance:g}")
