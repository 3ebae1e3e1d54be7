"""Claim A5 (Paper A on MovieLens), decided by the tables of part 'personalization'.

A5 holds when AMHT-LRS beats every pre-registered comparator (its own k = 0 version AltMin, full
fine-tuning, the ALS fold-in, and the best baseline chosen on validation RMSE) with a Holm-corrected,
user-clustered bootstrap interval entirely below zero, in every MovieLens cell (feature set, d,
m <= ``a5_max_m``). Negative controls (they must not "hold"): the global model in place of AMHT-LRS,
and AMHT-LRS against itself with labels swapped at random per user. Positive control: on the
planted ``synthetic-ml-sparse`` data (sparse deviations on genres every user rates many times)
AMHT-LRS must beat AltMin in every cell with genre features at the largest m <= ``a5_max_m``; if it does not,
the protocol cannot detect a win and A5 is reported ``uninformative`` whatever the MovieLens rows say.
"""

from __future__ import annotations

import pandas as pd

from bilinrec.experiments.personalization import CONTROL_DATASET
from bilinrec.experiments.verdict import UNINFORMATIVE, Claim, Control, Outcome, Tables, decide, not_measured


def _sparse_rows(paired: pd.DataFrame, max_m: float) -> pd.DataFrame:
    return paired[pd.to_numeric(paired["m"], errors="coerce") <= max_m]


def _cell(r) -> str:
    features = f" {r.features}" if hasattr(r, "features") else ""
    return f"{r.dataset}{features} d={r.d} m={r.m}"


def positive_control(paired: pd.DataFrame, max_m: float) -> tuple[bool | None, str]:
    """Whether AMHT-LRS beats AltMin (Holm CI below 0) on the planted control at the largest m <= ``max_m``.

    Pre-registered: every cell with genre features at that m must be won (at smaller m the planted
    k-sparse deviations may not be identifiable from so few ratings; those cells are reported too).
    """
    rows = _sparse_rows(paired[(paired["dataset"].astype(str) == CONTROL_DATASET) & (paired["tested"] == "amht_lrs")
                               & (paired["comparator"] == "altmin")], max_m)
    if "features" in rows.columns:
        rows = rows[rows["features"].astype(str).str.contains("genres")]
    if rows.empty:
        return None, "positive control not run"
    m = pd.to_numeric(rows["m"])
    decisive = rows[m == m.max()]
    wins = decisive["significant"].astype(bool) & (decisive["ci_high_holm"] < 0)
    cells = ", ".join(f"{_cell(r)}: {r.mean_delta:+.4f} [{r.ci_low_holm:+.4f}, {r.ci_high_holm:+.4f}]"
                      for r in rows.itertuples())
    return bool(wins.all()), (f"positive control (AMHT-LRS − AltMin on {CONTROL_DATASET}, decided at m={m.max():g}) "
                              f"{'passes' if wins.all() else 'FAILS'}: {cells}")


def claim_a5(tables: Tables, max_m: float) -> Outcome:
    """AMHT-LRS beats every pre-registered comparator on MovieLens for every m ≤ ``max_m`` (Holm CI < 0)."""
    paired = tables["personalization_paired"]
    movielens = paired[paired["dataset"].astype(str).str.startswith("ml-") & (paired["tested"] == "amht_lrs")]
    sparse = _sparse_rows(movielens, max_m)
    if sparse.empty:
        return not_measured(f"no MovieLens dataset with m ≤ {max_m:g} in this run")
    wins = sparse["significant"].astype(bool) & (sparse["ci_high_holm"] < 0)
    losses = sparse["significant"].astype(bool) & (sparse["ci_low_holm"] > 0)
    cells = "; ".join(f"{_cell(r)} vs {r.baseline}{' (best on val.)' if r.comparator == 'best_baseline' else ''}: "
                      f"{r.mean_delta:+.4f} [{r.ci_low_holm:+.4f}, {r.ci_high_holm:+.4f}]"
                      for r in sparse.itertuples())
    detail = (f"per-user test-RMSE difference AMHT-LRS − comparator (negative = better), Holm-adjusted CI; "
              f"{int(wins.sum())} significant wins, {int(losses.sum())} significant losses of {len(sparse)}: {cells}")
    control_ok, control_detail = positive_control(paired, max_m)
    outcome = decide(bool(wins.all()), float(sparse["mean_delta"].mean()), float(sparse["mean_delta"].std(ddof=0)),
                     f"{detail}. {control_detail}")
    if control_ok is False:
        return Outcome(outcome.value, outcome.spread, UNINFORMATIVE,
                       f"{outcome.detail}; uninformative: the positive control fails, so the protocol could not "
                       "have detected a win")
    return outcome


def _substitute(tested: str):
    """Tables in which the negative control ``tested`` takes the place of AMHT-LRS."""

    def substitute(tables: Tables) -> Tables:
        paired = tables["personalization_paired"]
        swapped = paired[paired["tested"] != "amht_lrs"].copy()
        swapped.loc[swapped["tested"] == tested, "tested"] = "amht_lrs"
        # the positive control keeps its real rows: only the method under test is replaced
        control = paired[(paired["dataset"].astype(str) == CONTROL_DATASET) & (paired["tested"] == "amht_lrs")]
        swapped = swapped[~((swapped["dataset"].astype(str) == CONTROL_DATASET) & (swapped["tested"] == "amht_lrs"))]
        return {**tables, "personalization_paired": pd.concat([swapped, control], ignore_index=True)}

    return substitute


CLAIMS = [
    Claim(id="A5", claim="Better accuracy than the standard approaches in the sparse-data regime",
          source="Paper A abstract",
          measure="per-user test-RMSE difference AMHT-LRS − {AltMin, fine-tuning, fold-in, best baseline on "
                  "validation}, Holm-corrected over the pre-registered comparisons, m ≤ threshold",
          threshold="a5_max_m", tables=("personalization_paired",), evaluate=claim_a5,
          controls=(Control("global model in place of AMHT-LRS", _substitute("global")),
                    Control("AMHT-LRS vs itself, labels swapped per user", _substitute("amht_lrs_swapped")))),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"personalization_paired": ("dataset", "d", "m", "tested", "comparator", "baseline", "mean_delta",
                                            "ci_low_holm", "ci_high_holm", "p_holm", "significant")}
