"""Tests of the privacy-utility experiment driver (bilinrec.experiments.dp.steps)."""

import json
import math

import matplotlib
import pandas as pd
import pytest

from bilinrec.experiments.dp.plots import plot_utility_vs_epsilon, plot_utility_vs_users
from bilinrec.experiments.dp.steps import (
    COMPARED_METHODS,
    audit_table,
    precompute_accounting,
    run_dp_audit,
    run_dp_method,
    utility_table,
)
from bilinrec.models.lrs.audit import epsilon_ceiling

CFG = {
    "n_seeds": 1, "epsilons": [2, "inf"], "delta": 1e-5, "test_users": 50, "n_test": 4, "local_alpha": 0.1,
    "problem": {"dim": 10, "rank": 2, "sparsity": 1, "samples": 10, "noise": 0.1, "w_scale": 1.0, "b_scale": 1.0},
    "mechanism": {"max_rounds": 2, "clip_multiplier": 1.0, "ridge_factor": 1.0, "sampling_rate": 1.0,
                  "accountant": "rdp"},
    "estimator": {"inner_iters": 5, "pursuit": "subspace", "step": "inverse_count", "step_scale": 1.0,
                  "restarts": False, "ridge": 1e-10},
    "reference": {"max_rounds": 10, "tol": 1e-6, "u_solver": "cg"},
}


@pytest.fixture(scope="module")
def records():
    rows = [r for t in (100, 400) for m in COMPARED_METHODS for r in run_dp_method(CFG, t, 3, m)]
    return pd.DataFrame(rows)


def test_records_cover_every_method_and_epsilon(records):
    for t in (100, 400):
        at_t = records[records["n_users"] == t]
        for method in ("dp_amht_lrs", "dp_altmin", "dp_global"):
            assert sorted(at_t.loc[at_t["method"] == method, "epsilon"]) == [2.0, math.inf]
        assert list(at_t.loc[at_t["method"] == "local", "epsilon"]) == [0.0]
        assert list(at_t.loc[at_t["method"] == "amht_lrs", "epsilon"]) == [math.inf]
    private = records[(records["epsilon"] == 2.0)]
    assert (private["epsilon_achieved"] <= 2.0 + 1e-9).all() and (private["epsilon_achieved"] > 1.9).all()
    assert (private["noise_multiplier"] > 0).all()
    assert records[["test_mse", "error"]].notna().all().all()
    # the same (t, seed) problem for every method: the non-private limits agree with the reference scale
    assert records.loc[records["method"] == "amht_lrs", "error"].max() < 0.5


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        run_dp_method(CFG, 100, 3, "dp_magic")


def test_table_and_figures(records):
    summary, shown = utility_table(records)
    assert len(summary) == 2 * (3 * 2 + 2)
    assert {"test MSE", "parameter error", "subspace distance", "achieved epsilon"} <= set(shown.columns)
    fig = plot_utility_vs_epsilon(records)
    assert len(fig.axes) == 3 * 2
    fig2 = plot_utility_vs_users(records, 2.0)
    assert len(fig2.axes) == 3
    with pytest.raises(ValueError, match="epsilon"):
        plot_utility_vs_users(records, 7.0)
    matplotlib.pyplot.close("all")



@pytest.fixture
def empty_accounting_cache(monkeypatch):
    """A fresh (empty) per-process accounting memo; the real one is restored after the test."""
    from bilinrec.models.lrs import accounting as dp

    monkeypatch.setattr(dp, "_NOISE_MULTIPLIERS", {})
    monkeypatch.setattr(dp, "_EPSILONS", {})
    return dp


def test_precomputed_accounting_gives_the_same_runs_without_the_accountant(empty_accounting_cache, monkeypatch):
    dp = empty_accounting_cache
    cfg = {**CFG, "methods": list(COMPARED_METHODS), "mechanism": {**CFG["mechanism"], "accountant": "pld"}}
    methods = ("dp_amht_lrs", "dp_global")
    fresh = [r for m in methods for r in run_dp_method(cfg, 100, 3, m)]
    monkeypatch.setattr(dp, "_NOISE_MULTIPLIERS", {})
    monkeypatch.setattr(dp, "_EPSILONS", {})
    cache = json.loads(json.dumps(precompute_accounting(cfg)))
    # one private epsilon; DP-AMHT-LRS and DP-AltMin share a release schedule, the global model has its own
    assert len(cache["noise_multipliers"]) == 2 and len(cache["epsilons"]) == 2
    monkeypatch.setattr(dp, "_NOISE_MULTIPLIERS", {})
    monkeypatch.setattr(dp, "_EPSILONS", {})
    dp.load_accounting_cache(cache)

    def no_accountant(*args, **kwargs):
        raise AssertionError("the accountant ran although the cache had the answer")

    monkeypatch.setattr(dp, "_search_noise_multiplier", no_accountant)
    monkeypatch.setattr(dp, "compute_epsilon", no_accountant)
    cached = [r for m in methods for r in run_dp_method(cfg, 100, 3, m)]
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop(cached) == drop(fresh)


@pytest.mark.parametrize("cache", [{}, {"noise_multipliers": [{"epsilon": 1}], "epsilons": []},
                                   {"noise_multipliers": [], "epsilons": [{"noise_multiplier": 1.0, "releases": [2],
                                    "sampling_rate": 1.0, "delta": 1e-5, "accountant": "magic", "epsilon": 1.0}]}])
def test_malformed_accounting_cache_is_refused(empty_accounting_cache, cache):
    with pytest.raises(ValueError, match="malformed accounting cache"):
        empty_accounting_cache.load_accounting_cache(cache)
    assert empty_accounting_cache.accounting_cache() == {"noise_multipliers": [], "epsilons": []}


AUDIT = {"epsilons": [1, 32], "trials": 1000, "calibration_trials": 200, "broken_noise_scales": [0.1, 0.01],
         "known_seed_epsilon": 1, "known_seed_trials": 20, "confidence": 0.95, "canary_scale": 10,
         "problem": {"n_users": 6, "dim": 4, "rank": 1, "sparsity": 1, "samples": 8}}


def test_records_label_the_simulation_mode(records):
    dp_rows = records[records["method"].isin(["dp_amht_lrs", "dp_altmin", "dp_global"]) & (records["epsilon"] == 2.0)]
    assert (dp_rows["release"] == "simulation (seeded noise; not a private release)").all()
    assert set(records.loc[records["method"] == "local", "release"]) == {"nothing released"}


def test_private_mode_records_have_no_clipped_fractions():
    cfg = {**CFG, "mechanism": {**CFG["mechanism"], "mode": "private"}}
    rows = run_dp_method(cfg, 100, 3, "dp_amht_lrs")
    private = [r for r in rows if r["epsilon"] == 2.0]
    assert private[0]["release"] == "private release (secret noise)"
    assert not any(k.startswith("clipped_") for r in rows for k in r)


def test_audit_step_and_tables(records):
    """Every row is what a working audit must say: the real mechanism is not refuted, both
    planted-broken controls are, the null control gives 0, the seeded simulation falls to the
    known seed; at epsilon 32, above the ceiling of 1000 trials, the table says "cannot test"."""
    cfg = {**CFG, "audit": AUDIT}
    audit = pd.DataFrame(run_dp_audit(cfg, seed=5))
    summary, shown = audit_table(audit)
    lr = summary[summary["attack"] == "likelihood_ratio"]
    assert sorted(zip(lr["epsilon"], lr["control"], lr["noise_scale"])) == sorted(
        (e, c, s) for e in (1.0, 32.0) for c, s in (("real", 1.0), ("broken", 0.1), ("broken", 0.01), ("null", 0.01)))
    assert summary["as_expected"].all(), shown
    testable = lr[lr["epsilon"] == 1.0].set_index("control")
    assert (testable.loc["broken", "epsilon_lb"] > 1.0).all() and testable.loc["null", "epsilon_lb"] == 0.0
    assert lr["ceiling"].to_list() == pytest.approx([epsilon_ceiling(1000, 1000, cfg["delta"])] * len(lr))
    assert (shown.loc[lr.index[lr["epsilon"] == 32.0], "verdict"].str.startswith("cannot test ε = 32")).all()
    known = summary[summary["attack"] == "known_seed"].set_index("mode")
    assert known.loc["simulation", "verdict"] == "claim refuted" and known.loc["private", "verdict"] == "not refuted"
    assert {"ε lower bound", "ceiling", "audited", "expected"} <= set(shown.columns)
    assert shown["audited"].str.startswith("planted-broken control").sum() == 4

    summary, shown = utility_table(records, audit.assign(epsilon=audit["epsilon"].replace(1.0, 2.0)))
    column = "audit ε lower bound (ceiling)"
    rows = shown[summary["method"].eq("dp_amht_lrs") & summary["epsilon"].eq(2.0)]
    assert (rows[column] != "n/a").all() and rows[column].str.contains(r"\(\d", regex=True).all()
    assert (shown.loc[~summary["method"].eq("dp_amht_lrs"), column] == "n/a").all()
