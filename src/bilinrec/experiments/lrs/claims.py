"""Claims A1 and A2 (Paper A, synthetic linear setting), decided by the tables of part 'lrs'."""

from __future__ import annotations

import math

import numpy as np

from bilinrec.experiments.verdict import Claim, ClaimInputError, Outcome, Tables, decide, not_measured


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Slope, intercept and R² of the least-squares line y = a x + b."""
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - (resid**2).sum() / total if total > 0 else float("nan")
    return float(slope), float(intercept), float(r2)




def claim_a1(tables: Tables, min_r2: float, *, success: float) -> Outcome:
    """Samples needed grow linearly in r + k, and AMHT-LRS recovers where the baselines do not."""
    phase = tables["lrs_phase_transition"]
    k_rows = phase[(phase["parameter"] == "sparsity")].dropna(subset=["m_boundary"])
    if len(k_rows) < 3:
        return not_measured("fewer than 3 sparsity levels reached the 50% success boundary")
    slope, intercept, r2 = _linear_fit(k_rows["r_plus_k"].to_numpy(float), k_rows["m_boundary"].to_numpy(float))
    errors = tables["lrs_sample_complexity"]
    clean = errors[errors["noise"] == 0].pivot_table(index="samples", columns="method", values="error_mean")
    needed = [m for m in ("amht_lrs", "altmin", "sparse_only") if m not in clean.columns]
    if needed:
        raise ClaimInputError(f"lrs_sample_complexity has no noiseless rows for {needed}")
    alone = clean[(clean["amht_lrs"] < success) & (clean["altmin"] >= success) & (clean["sparse_only"] >= success)]
    ok = r2 >= min_r2 and not alone.empty
    where = ", ".join(str(int(m)) for m in alone.index) or "none"
    return decide(ok, r2, None,
                  f"R² of m₅₀ = {slope:.2f}(r + k) {intercept:+.1f} over {len(k_rows)} sparsity levels; "
                  f"m where only AMHT-LRS recovers (error < {success:g}): {where}")



def claim_a2(tables: Tables, max_rate: float, *, error_floor: float) -> Outcome:
    """Error falls geometrically per round (fitted rate below ``max_rate``)."""
    conv = tables["lrs_convergence"]
    runs = conv[conv["method"] == "amht_lrs"]
    if runs.empty:
        return not_measured("no AMHT-LRS convergence records")
    largest = runs["samples"].max()
    rates = []
    for _, run in runs[runs["samples"] == largest].groupby("seed"):
        run = run.sort_values("round")
        err = run["error"].to_numpy(float)
        keep = (err > error_floor) & np.isfinite(err)  # the geometric phase, before machine precision
        if keep.sum() >= 3:
            slope, _, _ = _linear_fit(run["round"].to_numpy(float)[keep], np.log(err[keep]))
            rates.append(math.exp(slope))
    if not rates:
        return not_measured("too few rounds above machine precision to fit a rate")
    rate = float(np.mean(rates))
    return decide(rate < max_rate, rate, float(np.std(rates)),
                  f"error ratio per round fitted on log error (m = {int(largest)}, {len(rates)} seeds)")




CLAIMS = [
    Claim(id="A1", claim="Near-optimal sample complexity: samples needed grow linearly in r + k; AMHT-LRS recovers "
          "where low-rank-only and sparse-only cannot", source="Paper A abstract",
          measure="R² of the linear fit of the 50%-success m against r + k", threshold="a1_min_r2",
          settings={"success": "a1_success_error"}, tables=("lrs_phase_transition", "lrs_sample_complexity"),
          evaluate=claim_a1),
    Claim(id="A2", claim="Efficient: error decreases geometrically per round", source="Paper A abstract",
          measure="fitted error ratio per round (noiseless)", threshold="a2_max_rate",
          settings={"error_floor": "a2_error_floor"}, tables=("lrs_convergence",), evaluate=claim_a2),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {
    "lrs_phase_transition": ("parameter", "m_boundary", "r_plus_k"),
    "lrs_sample_complexity": ("noise", "samples", "method", "error_mean"),
    "lrs_convergence": ("method", "samples", "seed", "round", "error"),
}
