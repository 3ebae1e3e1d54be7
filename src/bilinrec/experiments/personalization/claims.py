"""Claim A5 (Paper A on MovieLens), decided by the tables of part 'personalization'.

A5 holds when AMHT-LRS beats every pre-registered comparator (its own k = 0 version AltMin, full
fine-tuning, the ALS fold-in, and the best baseline chosen on validation RMSE) with a Holm-corrected,
user-clustered bootstrap interval entirely below zero, in every MovieLens cell (feature set, d,
m <= ``a5_max_m``). Negative controls (they must not "hold"): the global model in place of AMHT-LRS,
and AMHT-LRS against itself with labels swapped at random per user. Planted control (it must
"hold", by A5's own rule): the planted ``synthetic-ml-sparse`` data (sparse deviations on genres
every user rates many times, the model AMHT-LRS fits) in MovieLens' place; if A5's rule cannot
show AMHT-LRS winning there, it cannot show a real win on MovieLens either, and A5 is
"uninformative" whatever the MovieLens rows say.
"""

from __future__ import annotations

import pandas as pd

from bilinrec.experiments.personalization import CONTROL_DATASET
from bilinrec.experiments.verdict import Claim, Control, Outcome, Tables, decide, not_measured, planted

#: The name the planted data takes in MovieLens' place (A5 reads datasets named ``ml-*``).
PLANTED_NAME = f"ml-planted ({CONTROL_DATASET})"


def _sparse_rows(paired: pd.DataFrame, max_m: float) -> pd.DataFrame:
    return paired[pd.to_numeric(paired["m"], errors="coerce") <= max_m]


def _cell(r) -> str:
    features = f" {r.features}" if hasattr(r, "features") else ""
    return f"{r.dataset}{features} d={r.d} m={r.m}"


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
    return decide(bool(wins.all()), float(sparse["mean_delta"].mean()), float(sparse["mean_delta"].std(ddof=0)),
                  detail)


def _planted_data(tables: Tables) -> Tables:
    """Tables in which the planted data's rows take the place of MovieLens' (A5's own rule then
    judges them: the planted control)."""
    paired = tables["personalization_paired"]
    name = paired["dataset"].astype(str)
    planted_rows = paired[name == CONTROL_DATASET].assign(dataset=PLANTED_NAME)
    rest = paired[~name.str.startswith("ml-") & (name != CONTROL_DATASET)]
    return {**tables, "personalization_paired": pd.concat([rest, planted_rows], ignore_index=True)}


def _substitute(tested: str):
    """Tables in which the negative control ``tested`` takes the place of AMHT-LRS."""

    def substitute(tables: Tables) -> Tables:
        paired = tables["personalization_paired"]
        swapped = paired[paired["tested"] != "amht_lrs"].copy()
        swapped.loc[swapped["tested"] == tested, "tested"] = "amht_lrs"
        return {**tables, "personalization_paired": swapped}

    return substitute


CLAIMS = [
    Claim(id="A5", claim="Better accuracy than the standard approaches in the sparse-data regime",
          source="Paper A abstract",
          measure="per-user test-RMSE difference AMHT-LRS − {AltMin, fine-tuning, fold-in, best baseline on "
                  "validation}, Holm-corrected over the pre-registered comparisons, m ≤ threshold",
          threshold="a5_max_m", tables=("personalization_paired",), evaluate=claim_a5,
          controls=(Control("global model in place of AMHT-LRS", _substitute("global")),
                    Control("AMHT-LRS vs itself, labels swapped per user", _substitute("amht_lrs_swapped")),
                    planted(f"planted data ({CONTROL_DATASET}) in MovieLens' place", _planted_data))),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"personalization_paired": ("dataset", "d", "m", "tested", "comparator", "baseline", "mean_delta",
                                            "ci_low_holm", "ci_high_holm", "p_holm", "significant")}
