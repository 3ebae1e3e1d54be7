"""Claim A4 (Paper A, storage), decided by the storage of trained models (table ``storage_trained``)."""

from __future__ import annotations

import numpy as np

from bilinrec.experiments.storage.trained import crossing_size
from bilinrec.experiments.verdict import Claim, Control, Outcome, Tables, decide, not_measured, planted


def claim_a4(tables: Tables, min_ratio: float) -> Outcome:
    """Bytes per user of trained full fine-tuning over trained AMHT-LRS -- both deflate-compressed,
    the shared store amortised over the paper's number of users -- reach ``min_ratio`` ("two
    orders of magnitude") at some measured model size where AMHT-LRS predicts at least as well."""
    table = tables["storage_trained"]
    ours = table[table["scheme"] == "amht_lrs"].sort_values("dim")
    reference = table[table["scheme"] == "finetune"].set_index("dim")
    if ours.empty or reference.empty:
        return not_measured("no trained AMHT-LRS or fine-tuning rows in storage_trained")
    as_good = ours["test_mse"].to_numpy(float) <= ours["dim"].map(reference["test_mse"]).to_numpy(float)
    ratios = ours["ratio_compressed"].to_numpy(float)
    counted = np.where(as_good, ratios, np.nan)
    if np.isnan(counted).all():
        return decide(False, float(np.nanmax(ratios)), None,
                      "AMHT-LRS predicts worse than fine-tuning (test MSE) at every measured size")
    best = float(np.nanmax(counted))
    dims = ours["dim"].to_numpy(float)
    crossing = crossing_size(dims[as_good], ratios[as_good], min_ratio)
    listing = "; ".join(f"d={int(d)}: {c:.3g}× compressed ({r:.3g}× uncompressed), test MSE {m:.3g} vs "
                        f"{reference.loc[d, 'test_mse']:.3g}" + ("" if g else ": worse, not counted")
                        for d, r, c, m, g in zip(dims, ours["ratio"], ratios, ours["test_mse"], as_good))
    where = ("not reached at the measured sizes" if np.isnan(crossing)
             else f"reached from P ≈ {crossing:,.0f} parameters per user (log-log interpolation)")
    return decide(best >= min_ratio, best, None,
                  f"bytes per user, full fine-tuning ÷ AMHT-LRS, deflate-compressed, shared part amortised "
                  f"(t = {int(ours['n_users'].iloc[0])} trained users, r = {int(ours['rank'].iloc[0])}, "
                  f"k = {int(ours['sparsity'].iloc[0])}): {listing}; {min_ratio:g}× {where}")


def _scheme_as_ours(scheme: str):
    """A control: ``scheme``'s rows of ``storage_trained`` in place of AMHT-LRS's."""
    def substitute(tables: Tables) -> Tables:
        table = tables["storage_trained"]
        swapped = table[table["scheme"] != "amht_lrs"].replace({"scheme": {scheme: "amht_lrs"}})
        return dict(tables) | {"storage_trained": swapped}
    return substitute


#: Near miss: the same trained AMHT-LRS models stored with a dense per-user part (compressed, as
#: every scheme is counted: a compressor may recover what the sparse format saves).
_dense_per_user_part = _scheme_as_ours("amht_lrs_dense_b")
#: Planted: the oracle fit (U* and supports given) in AMHT-LRS's format -- per user exactly r + k
#: numbers, the shared U amortised, the best test MSE -- which the rule must accept.
_oracle_store = _scheme_as_ours("oracle")


CLAIMS = [
    Claim(id="A4", claim="Up to two orders of magnitude less storage than per-user fine-tuning",
          source="Paper A abstract",
          measure="compressed bytes per user of trained models (shared part amortised), full fine-tuning ÷ AMHT-LRS "
                  "(largest over model sizes where AMHT-LRS's test MSE is no worse)",
          threshold="a4_min_ratio", tables=("storage_trained",), evaluate=claim_a4,
          controls=(Control("dense per-user part", _dense_per_user_part),
                    planted("oracle fit (U* and supports known) in AMHT-LRS's format", _oracle_store))),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"storage_trained": ("dim", "scheme", "n_users", "rank", "sparsity", "test_mse", "ratio",
                                     "ratio_compressed")}
