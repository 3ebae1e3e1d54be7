"""Claim A5 (Paper A on MovieLens), decided by the tables of part 'personalization'."""

from __future__ import annotations

import pandas as pd

from bilinrec.experiments.verdict import Claim, Outcome, Tables, decide, not_measured


def claim_a5(tables: Tables, max_m: float) -> Outcome:
    """AMHT-LRS beats the best baseline on MovieLens for every m ≤ ``max_m`` (paired CI below zero)."""
    paired = tables["personalization_paired"]
    movielens = paired[paired["dataset"].astype(str).str.startswith("ml-")]
    numeric = pd.to_numeric(movielens["m"], errors="coerce")
    sparse = movielens[numeric <= max_m]
    if sparse.empty:
        return not_measured(f"no MovieLens dataset with m ≤ {max_m:g} in this run")
    wins = sparse["ci_high"] < 0
    cells = ", ".join(f"{r.dataset} d={r.d} m={r.m}: {r.mean_delta:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}] vs "
                      f"{r.baseline}" for r in sparse.itertuples())
    return decide(bool(wins.all()), float(sparse["mean_delta"].mean()), float(sparse["mean_delta"].std(ddof=0)),
                  f"per-user test-RMSE difference AMHT-LRS − best baseline (negative = better), 95% CI: {cells}")




CLAIMS = [
    Claim(id="A5", claim="Better accuracy than the standard approaches in the sparse-data regime",
          source="Paper A abstract", measure="mean per-user test-RMSE difference AMHT-LRS − best baseline, m ≤ threshold",
          threshold="a5_max_m", tables=("personalization_paired",), evaluate=claim_a5),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"personalization_paired": ("dataset", "d", "m", "baseline", "mean_delta", "ci_low", "ci_high")}
