"""Tests of the synthetic experiment drivers, their summaries and figures (tiny grids)."""

import copy

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from bilinrec.experiments.lrs import plots
from bilinrec.experiments.lrs import steps as ex
from bilinrec.io import read_json

SCHEMA = ROOT / "workflow" / "schemas" / "lrs.schema.yaml"


def _defaults(schema):
    """The config implied by the schema defaults (recursively)."""
    if schema.get("type") == "object" and "properties" in schema:
        return {k: _defaults(v) for k, v in schema["properties"].items()}
    return copy.deepcopy(schema.get("default"))


@pytest.fixture(scope="module")
def cfg():
    c = _defaults(yaml.safe_load(SCHEMA.read_text()))
    c["problem"] |= {"n_users": 60, "dim": 12, "rank": 2, "sparsity": 2, "n_test": 5}
    c["estimator"] |= {"max_rounds": 15}
    c["baselines"] |= {"fedrep_max_rounds": 50}
    c["error_vs_m"] |= {"samples": [3, 20], "noise": [0.0, 0.1]}
    c["phase_m_t"] |= {"samples": [6, 25], "n_users": [30, 60]}
    c["phase_m_k"] |= {"samples": [6, 25], "sparsity": [1, 2], "n_users": 40}
    c["convergence"] |= {"samples": [20]}
    c["noise"] |= {"samples": 20, "noise": [0.1], "support": ["random", "adversarial"]}
    c["m50"] |= {"n_users": 40, "max_samples": 16, "methods": ["amht_lrs", "known_u", "oracle", "altmin", "local"],
                 "settings": [{"dim": 8, "rank": 1, "sparsity": 1}, {"dim": 12, "rank": 1, "sparsity": 1}]}
    return c


@pytest.fixture(scope="module")
def outputs(cfg, tmp_path_factory):
    root = tmp_path_factory.mktemp("lrs")
    paths = []
    for name in ex.EXPERIMENTS:
        for seed in (1, 2):
            path = root / f"{name}_s{seed}.csv"
            ex.run_experiment(name, cfg, seed).to_csv(path, index=False)
            paths.append(path)
    out = {k: root / f"{k}.csv" for k in ("records", "convergence", "table", "phase", "m50")}
    out["fit"] = root / "fit.json"
    ex.write_summaries(paths, out["records"], out["convergence"], out["table"], out["phase"], out["fit"],
                       m50_csv=out["m50"])
    return out


def test_runs_are_deterministic_per_seed(cfg):
    small = cfg | {"noise": cfg["noise"] | {"support": ["adversarial"]}}
    a = ex.run_experiment("noise", small, 3).drop(columns=["seconds", "job_seconds"])
    b = ex.run_experiment("noise", small, 3).drop(columns=["seconds", "job_seconds"])
    pd.testing.assert_frame_equal(a, b)


def test_records_cover_the_grid(outputs, cfg):
    records = pd.read_csv(outputs["records"])
    err = records[records["experiment"] == "error_vs_m"]
    assert len(err) == 2 * 2 * 2 * len(cfg["error_vs_m"]["methods"])
    # m = 3 < r + k = 4: AMHT-LRS refuses (not identifiable), the others still fit
    too_few = err[(err["samples"] == 3) & (err["method"] == "amht_lrs")]
    assert too_few["status"].str.startswith("not fitted").all() and too_few["error"].isna().all()
    ok = err[(err["samples"] == 20) & (err["noise"] == 0.0)]
    by_method = ok.groupby("method")["error"].mean()
    assert by_method["oracle"] < 1e-6
    assert by_method["amht_lrs"] < by_method["altmin"] < by_method["global"]
    assert set(records["experiment"]) == {"error_vs_m", "phase_m_t", "phase_m_k", "noise"}
    convergence = pd.read_csv(outputs["convergence"])
    assert set(convergence["method"]) == set(cfg["convergence"]["methods"])
    assert (convergence.groupby(["seed", "method", "sparsity"])["round"].min() == 0).all()
    # every method on the configured problem (k = 2), and A2's planted run, AltMin on it without sparse parts
    assert set(convergence[convergence["sparsity"] == 2]["method"]) == set(cfg["convergence"]["methods"])
    assert set(convergence[convergence["sparsity"] == 0]["method"]) == {ex.PLANTED_CONVERGENCE_METHOD}


def test_claim_a2_controls_on_measured_convergence(outputs):
    """A2 through the claims engine on the records this part writes: the near miss (AltMin on the
    problem with sparse parts) stalls and fails, the planted control (the same AltMin on the problem
    without them) contracts geometrically and holds."""
    from bilinrec.experiments.lrs.claims import CLAIMS as LRS_CLAIMS
    from bilinrec.experiments.verdict import evaluate_claims

    thresholds = _defaults(yaml.safe_load((SCHEMA.parent / "claims.schema.yaml").read_text()))
    a2 = [claim for claim in LRS_CLAIMS if claim.id == "A2"]
    row = evaluate_claims(a2, {"lrs_convergence": pd.read_csv(outputs["convergence"])}, thresholds).iloc[0]
    assert row["controls"] == ("low-rank only (AltMin) (must fail): does not hold; "
                              "AltMin on the same problem without sparse parts (k = 0) (planted, must hold): holds")


def test_tables_and_phase_fit(outputs):
    table = pd.read_csv(outputs["table"])
    assert {"error_mean", "error_std", "error_count"} <= set(table.columns)
    md = outputs["table"].with_suffix(".md").read_text()
    assert "AMHT-LRS" in md and "±" in md
    assert outputs["table"].with_suffix(".tex").exists()
    fit = read_json(outputs["fit"])
    assert fit["rank"] == 2 and np.isfinite(fit["c"]) and fit["c"] > 0


def test_phase_boundary_interpolates_and_line_fit():
    frame = pd.DataFrame({"sparsity": [1] * 3 + [3] * 3, "samples": [10, 20, 30] * 2,
                          "success": [0.0, 1.0, 1.0, 0.0, 0.0, 1.0]})
    boundary = ex.phase_boundary(frame, "sparsity")
    np.testing.assert_allclose(boundary["m_boundary"], [15.0, 25.0])
    exact = pd.DataFrame({"sparsity": [1, 3, 5], "m_boundary": [12.0, 20.0, 28.0]})  # = 4 (2 + k)
    assert ex.fit_reference_line(exact, rank=2) == pytest.approx(4.0)
    never = ex.phase_boundary(frame.assign(success=0.0), "sparsity")
    assert never["m_boundary"].isna().all()


def test_figures_are_drawn(outputs):
    records = pd.read_csv(outputs["records"])
    convergence = pd.read_csv(outputs["convergence"])
    fit = read_json(outputs["fit"])
    figures = [plots.plot_error_vs_m(records), plots.plot_phase_transition(records, fit["c"], 2, 2),
               plots.plot_convergence(convergence), plots.plot_noise(records),
               plots.plot_m50(pd.read_csv(outputs["m50"]), 8)]
    for fig in figures:
        assert fig.axes and all(ax.has_data() for ax in fig.axes if ax.get_label() != "<colorbar>")


def test_unknown_names_are_rejected(cfg):
    with pytest.raises(ValueError, match="experiment"):
        ex.run_experiment("nope", cfg, 1)
    with pytest.raises(ValueError, match="method"):
        ex.build_method("nope", None, cfg)


@pytest.mark.parametrize("threshold", [1, 5, 13, 16])
def test_smallest_success_finds_the_threshold_by_bisection(threshold):
    calls = []

    def succeeds(m):
        calls.append(m)
        return m >= threshold

    found = ex.smallest_success(succeeds, 1, 16)
    assert found == threshold and len(calls) <= 7
    assert ex.smallest_success(lambda m: False, 1, 16) is None


def test_m50_table_oracle_needs_r_plus_k_and_local_needs_d(outputs):
    """The references bracket the search: the oracle recovers at exactly r + k, per-user least squares
    at exactly d (or never, when d > max_samples), AltMin (low-rank only) never on a sparse problem."""
    table = pd.read_csv(outputs["m50"]).set_index(["dim", "method"])
    for d in (8, 12):
        assert table.loc[(d, "oracle"), "m50"] == 2
        assert table.loc[(d, "oracle"), "over_rk"] == 1
        assert np.isnan(table.loc[(d, "altmin"), "m50"])
        assert not table.loc[(d, "known_u"), "m50"] < 2
        assert not table.loc[(d, "amht_lrs"), "m50"] < 2  # not below the floor (NaN: not reached by 16)
        floor = 2 + d * 1 / 40
        assert table.loc[(d, "amht_lrs"), "floor_dof"] == pytest.approx(floor)
        assert table.loc[(d, "oracle"), "over_dof"] == pytest.approx(2 / floor)
        assert table.loc[(d, "amht_lrs"), "over_dof"] == pytest.approx(table.loc[(d, "amht_lrs"), "m50"] / floor,
                                                                       nan_ok=True)
    assert table.loc[(8, "local"), "m50"] == 8 and table.loc[(12, "local"), "m50"] == 12


def test_m50_is_the_median_of_per_seed_thresholds():
    rec = pd.DataFrame({"setting": 0, "n_users": 10, "dim": 20, "rank": 2, "sparsity": 1, "method": "amht_lrs",
                        "m_star": [10, 12, np.nan], "max_samples": 30})
    row = ex.m50_table(rec).iloc[0]
    assert row["m50"] == 12 and row["seeds_reached"] == 2 and row["floor_dof"] == pytest.approx(7)
    assert np.isnan(ex.m50_table(rec.assign(m_star=[10, np.nan, np.nan])).iloc[0]["m50"])
