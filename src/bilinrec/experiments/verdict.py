"""The claims engine: evaluate claims on result tables, with negative controls, and write the verdict.

A :class:`Claim` names the tables it reads, what it measures, the config key of the threshold that
decides it and the config keys of its other operating points (passed to its evaluator as keyword
arguments). Its verdict is ``holds``, ``does not hold`` or ``not measured`` (with the reason).
A claim may carry controls: the same evaluator run on tables in which the method under test is
replaced by something else. A *negative* control (``expect=FAILS``: the untouched model, or a
near miss -- the most plausible wrong method, such as frozen weights or an unconverged unlearner)
must fail the claim; a *planted* control (``expect=HOLDS``: a case built so the claim is true,
such as another retrain in the unlearner's place) must pass it. If any control goes the wrong way
the claim is ``uninformative`` -- never ``holds``, and never ``does not hold`` either: a rule that
passes a wrong method, or fails a planted true case, cannot decide.
A table the workflow was asked to produce must exist and have the expected columns; otherwise
evaluation fails loudly rather than quietly reporting ``not measured``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from bilinrec.io import write_text
from bilinrec.tables import format_mean_std

HOLDS, FAILS, NOT_MEASURED, UNINFORMATIVE = "holds", "does not hold", "not measured", "uninformative"
VERDICTS = (HOLDS, FAILS, NOT_MEASURED, UNINFORMATIVE)

Tables = Mapping[str, pd.DataFrame]


class ClaimInputError(ValueError):
    """A result table the claims read is missing or malformed."""


@dataclass(frozen=True)
class Outcome:
    """What a claim's evaluator found; ``release`` names what the DP rows it read released (e.g. a
    seeded simulation), empty for a claim that reads no DP rows."""

    value: float | None
    spread: float | None
    verdict: str
    detail: str = ""
    release: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {self.verdict!r}")


@dataclass(frozen=True)
class Control:
    """A control: ``substitute(tables)`` puts something in place of the method under test, whose
    verdict must be ``expect`` -- :data:`FAILS` for a negative control or near miss, :data:`HOLDS`
    for a planted positive control."""

    name: str
    substitute: Callable[[Tables], Tables] = field(repr=False)
    expect: str = FAILS

    def __post_init__(self):
        if self.expect not in (HOLDS, FAILS):
            raise ValueError(f"Control {self.name!r}: expect must be {HOLDS!r} or {FAILS!r}, got {self.expect!r}")

    def wrong_way(self, verdict: str) -> bool:
        """Whether ``verdict`` is not what this control must show: a negative control that holds,
        a planted one that does not, or either one that could not be measured."""
        return verdict != self.expect

    def label(self, verdict: str) -> str:
        kind = "planted, must hold" if self.expect == HOLDS else "must fail"
        return f"{self.name} ({kind}): {verdict}"


def planted(name: str, substitute: Callable[[Tables], Tables]) -> Control:
    """A planted positive control: a case built so that the claim is true; the rule must pass it."""
    return Control(name, substitute, expect=HOLDS)


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One claim of a paper and how the tables decide it.

    ``evaluate(tables, threshold, **settings)`` gets the value of config key ``threshold`` and, for
    each ``argument: key`` of ``settings``, the value of config key ``key``.
    """

    id: str
    claim: str
    source: str
    measure: str
    threshold: str
    tables: tuple[str, ...]
    evaluate: Callable[..., Outcome] = field(repr=False)
    settings: Mapping[str, str] = field(default_factory=dict)
    controls: tuple[Control, ...] = ()

    @property
    def config_keys(self) -> tuple[str, ...]:
        return (self.threshold, *self.settings.values())

    def run(self, tables: Tables, config: Mapping[str, Any]) -> Outcome:
        return self.evaluate(tables, config[self.threshold],
                             **{arg: config[key] for arg, key in self.settings.items()})


def not_measured(reason: str) -> Outcome:
    return Outcome(None, None, NOT_MEASURED, reason)


def decide(ok: bool, value: float, spread: float | None, detail: str, release: str = "") -> Outcome:
    return Outcome(float(value), None if spread is None else float(spread), HOLDS if ok else FAILS, detail, release)


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


def evaluate_claims(claims: list[Claim], tables: Mapping[str, pd.DataFrame | None],
                    config: Mapping[str, Any]) -> pd.DataFrame:
    """Evaluate each claim (and its controls); a claim whose tables were not produced is ``not measured``."""
    with_controls = any(claim.controls for claim in claims)
    rows = []
    for claim in claims:
        absent = [t for t in claim.tables if tables.get(t) is None]
        controls: dict[Control, str] = {}
        if absent:
            outcome = not_measured(f"not produced by this run: {', '.join(absent)}")
        else:
            outcome = claim.run(tables, config)
            for control in claim.controls:
                try:
                    controls[control] = claim.run(control.substitute(tables), config).verdict
                except ClaimInputError:  # the run did not produce what the control needs
                    controls[control] = NOT_MEASURED
            wrong = [c.label(v) for c, v in controls.items() if c.wrong_way(v)]
            if outcome.verdict in (HOLDS, FAILS) and wrong:
                outcome = replace(outcome, verdict=UNINFORMATIVE,
                                  detail=f"{outcome.detail}; uninformative (the rule said {outcome.verdict!r}), "
                                         f"controls going the wrong way: {'; '.join(wrong)}")
        row = {
            "id": claim.id,
            "claim": claim.claim,
            "source": claim.source,
            "measure": claim.measure,
            "threshold": config[claim.threshold],
            "value": outcome.value,
            "spread": outcome.spread,
            "verdict": outcome.verdict,
            "detail": outcome.detail,
            "release": outcome.release,
        }
        if with_controls:
            row["controls"] = "; ".join(c.label(v) for c, v in controls.items())
        rows.append(row)
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
    with_controls = "controls" in df.columns
    summary = (f"{counts.get(HOLDS, 0)} hold, {counts.get(FAILS, 0)} do not hold, "
               + (f"{counts.get(UNINFORMATIVE, 0)} uninformative, " if with_controls else "")
               + f"{counts.get(NOT_MEASURED, 0)} not measured")
    lines = [
        "# Claims verdict",
        "",
        f"Computed by the workflow from the result tables of this run ({summary}). "
        "Thresholds are set in the `claims` section of config.yaml.",
        "",
        "| id | claim | source | measured | value | threshold | verdict | detail |"
        + (" controls |" if with_controls else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if with_controls else ""),
    ]
    for row in df.to_dict("records"):
        value = None if pd.isna(row["value"]) else row["value"]
        spread = None if pd.isna(row["spread"]) else row["spread"]
        line = (f"| {row['id']} | {row['claim']} | {row['source']} | {row['measure']} | {_fmt(value, spread)} | "
                f"{row['threshold']:g} | **{row['verdict']}** | {row['detail']} |")
        if with_controls:
            line += f" {row['controls'] or '—'} |"
        lines.append(line)
    write_text(md_path, "\n".join(lines) + "\n")
