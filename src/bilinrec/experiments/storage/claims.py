"""Claim A4 (Paper A, storage), decided by the table of part 'storage'."""

from __future__ import annotations

from bilinrec.experiments.verdict import Claim, Outcome, Tables, decide, not_measured


def claim_a4(tables: Tables, min_ratio: float) -> Outcome:
    """Per-user storage of full fine-tuning over LRS reaches ``min_ratio`` ("two orders of magnitude")."""
    storage = tables["storage"]
    lrs = storage[storage["scheme"] == "amht_lrs"]
    if lrs.empty:
        return not_measured("no LRS rows in storage")
    largest = lrs[lrs["n_users"] == lrs["n_users"].max()]
    best = largest.loc[largest["full_over_scheme"].idxmax()]
    per_model = largest.groupby("model")["full_over_scheme"].agg(["min", "max"])
    listing = "; ".join(f"{m}: {r['min']:.3g}–{r['max']:.3g}×" for m, r in per_model.iterrows())
    return decide(bool(best["full_over_scheme"] >= min_ratio), float(best["full_over_scheme"]), None,
                  f"largest ratio at N = {int(best['n_users']):,} users ({best['model']}, {best['variant']}); "
                  f"range per model over LRS variants: {listing}")




CLAIMS = [
    Claim(id="A4", claim="Up to two orders of magnitude less storage than per-user fine-tuning",
          source="Paper A abstract", measure="per-user storage ratio full fine-tuning ÷ LRS", threshold="a4_min_ratio",
          tables=("storage",), evaluate=claim_a4),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"storage": ("model", "scheme", "variant", "n_users", "full_over_scheme")}
