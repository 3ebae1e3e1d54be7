"""Claim A3 (Paper A, private variant), decided by the table of part 'dp'."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bilinrec.experiments.verdict import (
    Claim,
    ClaimInputError,
    Control,
    Outcome,
    Tables,
    decide,
    not_measured,
    planted,
)


def claim_a3(tables: Tables, max_gap: float, *, epsilon: float) -> Outcome:
    """The error gap between DP-AMHT-LRS at ``epsilon`` and non-private AMHT-LRS never grows with t
    and is at most ``max_gap`` at the largest t."""
    dp = tables["dp_utility"]
    private = dp[(dp["method"] == "dp_amht_lrs") & np.isclose(dp["epsilon"], epsilon)].set_index("n_users")
    public = dp[(dp["method"] == "amht_lrs")].groupby("n_users")["error_mean"].mean()
    if private.empty or public.empty:
        return not_measured(f"no DP-AMHT-LRS rows at ε = {epsilon:g} or no non-private reference")
    gap = (private["error_mean"] - public.reindex(private.index)).dropna().sort_index()
    if len(gap) < 2:
        return not_measured("fewer than two numbers of users")
    shrinking = bool(np.all(np.diff(gap.to_numpy()) <= 0))  # never growing: a gap that is already 0 stays 0
    ok = shrinking and gap.iloc[-1] <= max_gap
    steps = ", ".join(f"t={int(t)}: {g:.3f}" for t, g in gap.items())
    release = ", ".join(sorted(set(private["release"])))
    return decide(ok, float(gap.iloc[-1]), float(private["error_std"].iloc[-1]),
                  f"parameter-error gap to non-private at ε = {epsilon:g} ({steps}); shrinking with t: {shrinking}; "
                  f"DP rows: {release}", release)



def _dp_method_as_ours(method: str):
    """Negative control: the private ``method``'s rows in place of DP-AMHT-LRS's. It must have been
    run at every (t, epsilon) DP-AMHT-LRS was, else the comparison is not like for like: an error
    (the control is then not measured, and A3 uninformative)."""
    def substitute(tables: Tables) -> Tables:
        table = tables["dp_utility"]
        cells = {(int(r.n_users), float(r.epsilon)) for r in table.itertuples() if r.method == "dp_amht_lrs"}
        have = {(int(r.n_users), float(r.epsilon)) for r in table.itertuples() if r.method == method}
        missing = sorted(cells - have)
        if missing:
            t, eps = missing[-1]
            raise ClaimInputError(f"dp_utility: the control {method} was not run at t = {t}, ε = {eps:g} "
                                  f"({len(missing)} (t, ε) of DP-AMHT-LRS's missing; dp.large_users.methods)")
        swapped = table[table["method"] != "dp_amht_lrs"].replace({"method": {method: "dp_amht_lrs"}})
        return dict(tables) | {"dp_utility": swapped}
    return substitute


def _non_private_as_ours(tables: Tables) -> Tables:
    """Planted control: the non-private AMHT-LRS's rows in DP-AMHT-LRS's place at the claim's
    epsilons -- a method with no privacy cost, whose gap is 0 at every t, so A3 must hold."""
    table = tables["dp_utility"]
    private = table[table["method"] == "dp_amht_lrs"]
    public = table[table["method"] == "amht_lrs"].groupby("n_users", as_index=False).first()
    planted_rows = private[["n_users", "epsilon", "release"]].merge(
        public.drop(columns=["epsilon", "release", "method"]), on="n_users").assign(method="dp_amht_lrs")
    return dict(tables) | {"dp_utility": pd.concat([table[table["method"] != "dp_amht_lrs"], planted_rows],
                                                     ignore_index=True)}


CLAIMS = [
    Claim(id="A3", claim="Private with strong generalization: the DP error approaches the non-private error as users "
          "grow", source="Paper A abstract",
          measure="parameter-error gap DP − non-private at the largest t (utility of the mechanism, measured in "
          "simulation mode unless dp.mechanism.mode is private)",
          threshold="a3_max_gap", settings={"epsilon": "a3_epsilon"}, tables=("dp_utility",), evaluate=claim_a3,
          controls=(Control("DP global model (no per-user part)", _dp_method_as_ours("dp_global")),
                    Control("DP low-rank only (AltMin, no sparse part)", _dp_method_as_ours("dp_altmin")),
                    planted("non-private AMHT-LRS in DP-AMHT-LRS's place", _non_private_as_ours))),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"dp_utility": ("n_users", "epsilon", "method", "release", "error_mean", "error_std")}
