"""The claims verdict is computed from result tables, covers every verdict, and fails
loudly on a missing or malformed table."""

import re

import numpy as np
import pandas as pd
import pytest

from dataclasses import replace

from bilinrec.experiments.claims import CLAIMS, CONFIG_KEYS
from bilinrec.experiments.unlearn.claims import claim_b3, claim_b5
from bilinrec.experiments.verdict import (
    FAILS,
    HOLDS,
    NOT_MEASURED,
    UNINFORMATIVE,
    Claim,
    ClaimInputError,
    Control,
    decide,
    evaluate_claims,
    load_table,
    write_claims,
)


#: The matched quality target of :func:`unlearn_paired` (relative objective gap to F*).
TARGET = 1e-3
#: Models whose history is the retraining objective (their cost to the target is recorded).
RETRAINING_OBJECTIVE = ("retrained", "retrained_b1", "retrained_b2", "unlearn_retrain", "unlearn_retrain_budget")


def unlearn_paired(auc_unlearn=0.840, deleted_unlearn=0.20, gap_unlearn=1e-5, sweeps_unlearn=20.0,
                   datasets=("ml-100k",), seeds=(1, 2, 3), auc_popularity=0.78, gap_band=2e-4):
    """A synthetic ``unlearn_paired`` table: retraining seed noise ~0.002 AUC / 0.01 deleted-cell score;
    the original model still scores the deleted cells high, naive fine-tuning pushes them to 0. A
    model whose objective gap is at most :data:`TARGET` is at the matched quality target, reached
    at its last sweep."""
    rows = []
    for ds in datasets:
        for s in seeds:
            jitter = 0.001 * (s - 2)
            models = {
                # model: (heldout_auc, deleted_mean_score, mia, objective_gap, sweep_equivalents)
                "original": (0.870, 0.80, 0.80, 0.05, 150.0),
                "retrained": (0.840 + jitter, 0.20, 0.50, 0.0, 200.0),
                "retrained_b1": (0.842 + jitter, 0.21, 0.51, gap_band * s, 210.0),
                "retrained_b2": (0.841 + jitter, 0.195 + 0.005 * (s % 2), 0.497, 1e-4 * s, 205.0),  # planted
                "unlearn_retrain": (auc_unlearn + jitter, deleted_unlearn, 0.505, gap_unlearn, sweeps_unlearn),
                "naive": (0.838 + jitter, 0.02, 0.20, 0.03, 15.0),
                # near misses: frozen weights and the sweep budget keep more of the deleted cells
                "unlearn_frozen": (0.839 + jitter, 0.30, 0.58, 0.01, 20.0),
                "unlearn_retrain_budget": (0.840 + jitter, 0.26, 0.56, 0.005, 10.0),
            }
            for model, (auc, deleted, mia, gap, sweeps) in models.items():
                at = gap <= TARGET
                rows.append({"dataset": ds, "strategy": "uniform", "fraction": 0.1, "seed": s, "model": model,
                             "heldout_auc": auc, "deleted_mean_score": deleted, "mia_threshold_heldout": mia,
                             "objective_gap": gap, "sweep_equivalents": sweeps, "at_target": at,
                             "target_sweep_equivalents": sweeps if at and model in RETRAINING_OBJECTIVE else np.nan})
            rows.append({"dataset": ds, "strategy": "uniform", "fraction": 0.1, "seed": s, "model": "popularity",
                         "heldout_auc": auc_popularity + jitter})
    return pd.DataFrame(rows)


@pytest.fixture
def thresholds():
    """The default thresholds, as the schema fills them in."""
    from conftest import ROOT
    from snakemake.utils import validate

    cfg = {}
    validate(cfg, str(ROOT / "workflow/schemas/claims.schema.yaml"))
    return cfg


def test_verdicts_hold_fail_and_not_measured(thresholds):
    tables = {"unlearn_paired": unlearn_paired()}
    df = evaluate_claims(CLAIMS, tables, thresholds).set_index("id")
    for claim in ("B1", "B2", "B3", "B4", "B5"):
        assert df.loc[claim, "verdict"] == HOLDS, (claim, df.loc[claim, "detail"], df.loc[claim, "controls"])
    assert df.loc["B3", "value"] == pytest.approx(10.0)  # 200 / 20 sweeps
    assert df.loc["A1", "verdict"] == NOT_MEASURED
    bad = {"unlearn_paired": unlearn_paired(auc_unlearn=0.80, deleted_unlearn=0.5, sweeps_unlearn=150.0)}
    df = evaluate_claims(CLAIMS, bad, thresholds).set_index("id")
    assert df.loc["B1", "verdict"] == FAILS
    assert df.loc["B2", "verdict"] == FAILS
    assert df.loc["B3", "verdict"] == FAILS


@pytest.mark.parametrize("claim", ["B1", "B2", "B3", "B4"])
def test_every_unlearning_claim_rejects_its_near_misses_and_accepts_its_planted_control(thresholds, claim):
    """Through the real claim code: the untouched model, naive fine-tuning and the near misses
    (frozen weights, Unlearn-ALS stopped at the sweep budget) in the unlearner's place fail every
    unlearning claim; the planted control (another retrain; for B3 retraining's answer in one sweep)
    passes it. Only then does the claim hold."""
    from bilinrec.experiments.unlearn.claims import CLAIMS as UNLEARN_CLAIMS

    spec = {c.id: c for c in UNLEARN_CLAIMS}[claim]
    tables = {"unlearn_paired": unlearn_paired()}
    assert spec.run(tables, thresholds).verdict == HOLDS
    names = [c.name for c in spec.controls]
    assert {"frozen weights (BM25 not recomputed)", "Unlearn-ALS stopped at the sweep budget"} <= set(names)
    assert [c.expect for c in spec.controls].count(HOLDS) == 1  # one planted control
    for control in spec.controls:
        outcome = spec.run(control.substitute(tables), thresholds)
        assert outcome.verdict == control.expect, (claim, control.name, outcome.detail)
    row = evaluate_claims([spec], tables, thresholds).iloc[0]
    assert row["verdict"] == HOLDS and "(planted, must hold): holds" in row["controls"]
    # each control is needed: a claim whose near miss passes, or whose planted case fails, cannot hold
    for i, control in enumerate(spec.controls):
        broken = Control(control.name, lambda t: t, expect=control.expect)  # the unlearner itself: holds
        rigged = replace(spec, controls=(*spec.controls[:i], broken, *spec.controls[i + 1:]))
        verdict = evaluate_claims([rigged], tables, thresholds).iloc[0]["verdict"]
        assert verdict == (UNINFORMATIVE if control.expect == FAILS else HOLDS), (claim, control.name)


def ideal_pass_rate(evaluate, runs, rng, jump_probability=0.0):
    """How often ``evaluate(tables, 0.95)`` holds for an ideal unlearner (another retrain) over
    ``runs`` simulated runs of the default grid's shape (13 settings x 3 seeds): normal seed noise
    per setting, and with ``jump_probability`` each model lands on another fixed point (a jump of
    100 sigma, both statistics)."""
    passed = []
    for _ in range(runs):
        rows = []
        for setting in range(13):
            for seed in (1, 2, 3):
                mu, sigma = rng.normal(0.5, 0.1), 0.01 * (1 + setting)
                for model in ("unlearn_retrain", "retrained", "retrained_b1"):
                    jump = 100 * sigma * (rng.random() < jump_probability) * rng.choice([-1, 1])
                    value = mu + sigma * rng.standard_normal() + jump
                    rows.append({"dataset": "d", "strategy": "s", "fraction": setting, "seed": seed,
                                 "model": model, "heldout_auc": 0.8 + jump, "deleted_mean_score": value,
                                 "mia_threshold_heldout": value, "at_target": True})
        passed.append(evaluate({"unlearn_paired": pd.DataFrame(rows)}, 0.95).verdict == HOLDS)
    return float(np.mean(passed))


@pytest.mark.parametrize("claim", ["B1", "B4"])
def test_the_consistency_rule_passes_an_ideal_unlearner_at_its_level(thresholds, claim):
    """Many simulated runs with an ideal unlearner (another retrain, normal seed noise, 13 settings
    x 3 seeds as the default grid): the calibrated rule passes it in about ``level`` of them."""
    from bilinrec.experiments.unlearn.claims import claim_b1, claim_b4

    rate = ideal_pass_rate(claim_b1 if claim == "B1" else claim_b4, 300, np.random.default_rng(5))
    assert 0.90 <= rate <= 0.99


@pytest.mark.parametrize("claim", ["B1", "B2", "B4"])
def test_consistency_claims_say_when_retrains_end_at_different_fixed_points(thresholds, claim):
    """Retrains from other seeds 1e-4 or more apart in objective (relative) ended at different fixed
    points: the seed noise is heavy-tailed and the claim's detail says so, with the count."""
    from bilinrec.experiments.unlearn.claims import CLAIMS as UNLEARN_CLAIMS

    spec = {c.id: c for c in UNLEARN_CLAIMS}[claim]
    paired = unlearn_paired(gap_band=1e-6)
    paired.loc[paired["model"] == "retrained_b2", "objective_gap"] = 1e-6
    assert "several fixed points" not in spec.run({"unlearn_paired": paired}, thresholds).detail
    paired.loc[(paired["model"] == "retrained_b2") & (paired["seed"] == 2), "objective_gap"] = -3e-4
    detail = spec.run({"unlearn_paired": paired}, thresholds).detail
    assert "several fixed points" in detail and "3.0e-04" in detail and "in 1 of 3 runs (ml-100k)" in detail


def test_the_consistency_rule_often_fails_an_ideal_unlearner_where_retrains_jump_between_fixed_points():
    """The calibration's limit, documented in docs/unlearn.md: when each retrain lands on another
    fixed point (a jump of 100 sigma) with probability 0.13, as on synthetic-lowrank, 3 seeds rarely
    see a jump in the noise band and the rule passes an ideal unlearner in only ~10% of runs."""
    from bilinrec.experiments.unlearn.claims import claim_b1

    assert ideal_pass_rate(claim_b1, 100, np.random.default_rng(7), jump_probability=0.13) <= 0.25


def test_b3_counts_no_speedup_where_unlearning_stopped_short_of_the_target():
    tables = {"unlearn_paired": unlearn_paired(gap_unlearn=0.01)}
    outcome = claim_b3(tables, 3.0)
    assert outcome.verdict == FAILS and outcome.value == 0.0 and "3 of 3 runs" in outcome.detail


@pytest.mark.parametrize("claim", ["B1", "B2", "B4"])
def test_an_unlearner_short_of_the_target_is_inconsistent_whatever_its_gap(thresholds, claim):
    """Matched convergence: an unlearner whose metrics match retraining's but whose objective stopped
    short of the quality target fails the consistency claims (it was not compared at equal quality)."""
    from bilinrec.experiments.unlearn.claims import CLAIMS as UNLEARN_CLAIMS

    spec = {c.id: c for c in UNLEARN_CLAIMS}[claim]
    assert spec.run({"unlearn_paired": unlearn_paired()}, thresholds).verdict == HOLDS
    short = spec.run({"unlearn_paired": unlearn_paired(gap_unlearn=2 * TARGET)}, thresholds)
    assert short.verdict == FAILS, short.detail


@pytest.mark.parametrize("claim", ["B1", "B2", "B3", "B4"])
def test_unlearning_claims_are_not_measured_when_the_band_misses_the_target(thresholds, claim):
    """A retraining band short of the quality target cannot anchor a comparison at matched convergence."""
    from bilinrec.experiments.unlearn.claims import CLAIMS as UNLEARN_CLAIMS

    spec = {c.id: c for c in UNLEARN_CLAIMS}[claim]
    outcome = spec.run({"unlearn_paired": unlearn_paired(gap_band=TARGET)}, thresholds)  # seeds 2, 3 miss it
    assert outcome.verdict == NOT_MEASURED and "2 of 3 runs" in outcome.detail, outcome.detail


def test_unlearning_claims_need_a_second_retraining_seed(thresholds):
    paired = unlearn_paired()
    tables = {"unlearn_paired": paired[paired["model"] != "retrained_b1"]}
    df = evaluate_claims(CLAIMS, tables, thresholds).set_index("id")
    assert df.loc["B1", "verdict"] == NOT_MEASURED and "band_size" in df.loc["B1", "detail"]


def test_b5_is_not_measured_without_ml100k(thresholds):
    tables = {"unlearn_paired": unlearn_paired(datasets=("synthetic-lowrank",))}
    outcome = claim_b5(tables, thresholds["b5_auc_tolerance"], target=thresholds["b5_target_auc"])
    assert outcome.verdict == NOT_MEASURED and "ml-100k" in outcome.detail


def test_b5_is_uninformative_when_item_popularity_also_reaches_the_target(thresholds):
    """B5's control scores the held-out cells by item popularity: far from 0.87 it fails and B5
    holds; near 0.87 it passes, and B5 can no longer tell a fitted model from popularity."""
    from bilinrec.experiments.unlearn.claims import CLAIMS as UNLEARN_CLAIMS

    b5 = [c for c in UNLEARN_CLAIMS if c.id == "B5"]
    row = evaluate_claims(b5, {"unlearn_paired": unlearn_paired()}, thresholds).iloc[0]
    assert row["verdict"] == HOLDS and row["controls"] == "item popularity (not personalized) (must fail): does not hold"
    assert "item popularity scores 0.7800" in row["detail"]
    row = evaluate_claims(b5, {"unlearn_paired": unlearn_paired(auc_popularity=0.86)}, thresholds).iloc[0]
    assert row["verdict"] == UNINFORMATIVE


def test_missing_and_malformed_tables_fail_loudly(tmp_path):
    with pytest.raises(ClaimInputError, match="missing"):
        load_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ClaimInputError, match="malformed"):
        load_table(tmp_path / "empty.csv")
    unlearn_paired().drop(columns="sweep_equivalents").to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ClaimInputError, match="sweep_equivalents"):
        load_table(tmp_path / "s.csv", ("dataset", "sweep_equivalents"))


def test_write_claims_markdown(tmp_path, thresholds):
    tables = {"unlearn_paired": unlearn_paired()}
    df = evaluate_claims(CLAIMS, tables, thresholds)
    write_claims(df, tmp_path / "claims.csv", tmp_path / "claims.md")
    md = (tmp_path / "claims.md").read_text()
    assert md.startswith("# Claims verdict")
    assert "**holds**" in md and "**not measured**" in md
    assert len(pd.read_csv(tmp_path / "claims.csv")) == len(CLAIMS)


def dp_utility(gaps=(0.5, 0.2, 0.05), controls=True, mode="simulation"):
    """A3's table, its DP rows released in ``mode``; with ``controls`` also its negative controls'
    rows (large gaps: they fail), without which A3 cannot be decided."""
    from bilinrec.models.lrs import NON_PRIVATE, RELEASE_LABELS

    dp = {"epsilon": 8.0, "release": RELEASE_LABELS[mode], "error_std": 0.01}
    rows = []
    for t, gap in zip((1000, 10000, 100000), gaps):
        rows.append({"n_users": t, "method": "dp_amht_lrs", "error_mean": 0.1 + gap, **dp})
        rows.append({"n_users": t, "epsilon": float("inf"), "method": "amht_lrs", "release": NON_PRIVATE,
                     "error_mean": 0.1, "error_std": 0.0})
        if controls:
            rows += [{"n_users": t, "method": m, "error_mean": e, **dp} for m, e in (("dp_global", 1.0), ("dp_altmin", 0.5))]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("mode", ["simulation", "private"])
def test_a3_names_the_release_of_its_dp_rows_in_claims_and_readme(tmp_path, thresholds, mode):
    """A3 rests on DP rows: its verdict in claims.csv/claims.md and the README row says whether they were a
    seeded simulation or a private release, also when the claim is uninformative."""
    from bilinrec.cli.readme import verdict_block
    from bilinrec.models.lrs import RELEASE_LABELS

    label = RELEASE_LABELS[mode]
    verdict = evaluate_claims(CLAIMS, {"dp_utility": dp_utility(mode=mode)}, thresholds)
    write_claims(verdict, tmp_path / "claims.csv", tmp_path / "claims.md")
    claims = pd.read_csv(tmp_path / "claims.csv").set_index("id")
    assert claims.loc["A3", "verdict"] == HOLDS and claims.loc["A3", "release"] == label
    assert claims.drop(index="A3")["release"].isna().all()  # the other claims read no DP rows
    a3_md = next(line for line in (tmp_path / "claims.md").read_text().splitlines() if line.startswith("| A3 |"))
    assert f"DP rows: {label}" in a3_md
    block = verdict_block(pd.read_csv(tmp_path / "claims.csv"), {})
    a3_readme = next(line for line in block.splitlines() if line.startswith("| A3 |"))
    assert f"**holds** (DP rows: {label})" in a3_readme
    assert "DP rows" not in block.replace(a3_readme, "")
    # a control going the wrong way makes A3 uninformative; its release is still named
    swapped = dp_utility(mode=mode).replace({"method": {"dp_altmin": "x", "dp_amht_lrs": "dp_altmin"}})
    swapped = swapped.replace({"method": {"x": "dp_amht_lrs"}})
    outcome = evaluate_claims(CLAIMS, {"dp_utility": swapped}, thresholds).set_index("id").loc["A3"]
    assert outcome["verdict"] == UNINFORMATIVE and outcome["release"] == label


def test_a3_controls_must_fail_for_the_claim_to_hold(thresholds):
    """A3's negative controls put another private method in DP-AMHT-LRS's place: one whose gap to
    the non-private error stays large (the DP global model) fails, and the claim holds; if a control
    also closed the gap, A3 would be uninformative."""
    from bilinrec.experiments.dp.claims import CLAIMS as DP_CLAIMS

    table = dp_utility(controls=False)
    dp_row = table[table["method"] == "dp_amht_lrs"].iloc[0]
    rows = [{"n_users": t, "epsilon": 8.0, "method": m, "release": dp_row["release"], "error_mean": e, "error_std": 0.01}
            for t in (1000, 10000, 100000) for m, e in (("dp_global", 1.0), ("dp_altmin", 0.5))]
    result = evaluate_claims(DP_CLAIMS, {"dp_utility": pd.concat([table, pd.DataFrame(rows)])}, thresholds)
    row = result.set_index("id").loc["A3"]
    assert row["verdict"] == HOLDS and row["controls"].count("does not hold") == 2
    # without its controls' rows A3 cannot be decided: a control that was not measured is not a pass
    alone = evaluate_claims(DP_CLAIMS, {"dp_utility": table}, thresholds).set_index("id").loc["A3"]
    assert alone["verdict"] == UNINFORMATIVE and "(must fail): not measured" in alone["controls"]
    closing = pd.DataFrame([{**r, "error_mean": 0.1 + 0.5 / r["n_users"] ** 0.5} for r in rows])
    result = evaluate_claims(DP_CLAIMS, {"dp_utility": pd.concat([table, closing])}, thresholds)
    assert result.set_index("id").loc["A3", "verdict"] == UNINFORMATIVE


def test_a3_accepts_its_planted_control_a_method_without_privacy_cost(thresholds):
    """Non-private AMHT-LRS in DP-AMHT-LRS's place has a gap of exactly 0 at every t: A3's rule must
    pass it (a rule demanding a strictly shrinking gap failed this ideal case)."""
    from bilinrec.experiments.dp.claims import CLAIMS as DP_CLAIMS
    from bilinrec.experiments.dp.claims import _non_private_as_ours, claim_a3

    tables = _non_private_as_ours({"dp_utility": dp_utility()})
    outcome = claim_a3(tables, thresholds["a3_max_gap"], epsilon=thresholds["a3_epsilon"])
    assert outcome.verdict == HOLDS and outcome.value == 0.0
    row = evaluate_claims(DP_CLAIMS, {"dp_utility": dp_utility()}, thresholds).set_index("id").loc["A3"]
    assert row["verdict"] == HOLDS and "(planted, must hold): holds" in row["controls"]


def test_a3_controls_must_reach_the_same_t_as_the_claim(thresholds):
    """A control run only to t = 1e4 says nothing about A3 at t = 1e5: it is not measured there,
    so A3 is uninformative until its controls run to the claim's largest t."""
    from bilinrec.experiments.dp.claims import CLAIMS as DP_CLAIMS

    full = dp_utility()
    row = evaluate_claims(DP_CLAIMS, {"dp_utility": full}, thresholds).set_index("id").loc["A3"]
    assert row["verdict"] == HOLDS
    short = full[~((full["method"] == "dp_global") & (full["n_users"] == 100000))]
    row = evaluate_claims(DP_CLAIMS, {"dp_utility": short}, thresholds).set_index("id").loc["A3"]
    assert row["verdict"] == UNINFORMATIVE and "DP global model (no per-user part) (must fail): not measured" in \
        row["controls"]


def test_cli_evaluates_the_claims_of_the_tables_given(tmp_path, capsys):
    from conftest import ROOT

    from bilinrec.cli import main

    dp_utility().to_csv(tmp_path / "dp.csv", index=False)
    overlay = tmp_path / "strict.yaml"
    overlay.write_text("claims:\n  a3_max_gap: 0.01\n")
    assert main(["claims", f"dp_utility={tmp_path / 'dp.csv'}", "--config", str(ROOT / "config.yaml"),
                 "--out", str(tmp_path / "verdict")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].startswith("A3: holds 0.05") and sum("not measured" in line for line in lines) == len(CLAIMS) - 1
    assert pd.read_csv(tmp_path / "verdict.csv").set_index("id").loc["A3", "verdict"] == HOLDS
    # a later config file overrides the thresholds of an earlier one
    assert main(["claims", "--config", str(ROOT / "config.yaml"), "--config", str(overlay),
                 f"dp_utility={tmp_path / 'dp.csv'}"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("A3: does not hold")


@pytest.mark.parametrize("table, message", [("dp_utilty=x.csv", "no claim reads a table 'dp_utilty'"),
                                            ("dp_utility", "NAME=PATH"),
                                            ("dp_utility=missing.csv", "missing")])
def test_cli_rejects_bad_tables_clearly(tmp_path, capsys, table, message):
    from conftest import ROOT

    from bilinrec.cli import main

    assert main(["claims", table, "--config", str(ROOT / "config.yaml")]) == 2
    assert message in capsys.readouterr().err


def test_cli_lays_config_overlays_over_the_repository_config(tmp_path, monkeypatch, capsys):
    """`--config overlay.yaml` alone works like `snakemake --configfile overlay.yaml`."""
    import shutil

    from conftest import ROOT

    from bilinrec.cli import main

    dp_utility().to_csv(tmp_path / "dp.csv", index=False)
    (tmp_path / "strict.yaml").write_text("claims:\n  a3_max_gap: 0.01\n")
    (tmp_path / "no_claims.yaml").write_text("seed: 1\n")
    monkeypatch.chdir(tmp_path)
    # without ./config.yaml an overlay that sets no thresholds gets the schema's defaults
    assert main(["claims", "dp_utility=dp.csv", "--config", "no_claims.yaml"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("A3: holds")
    (tmp_path / "config.yaml").write_text("claims:\n  a3_max_gap: 0.01\n")
    assert main(["claims", "dp_utility=dp.csv"]) == 0  # ./config.yaml is read first
    assert capsys.readouterr().out.splitlines()[2].startswith("A3: does not hold")
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    assert main(["claims", "dp_utility=dp.csv", "--config", "no_claims.yaml"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("A3: holds")
    assert main(["claims", "dp_utility=dp.csv", "--config", "strict.yaml"]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("A3: does not hold")


@pytest.mark.parametrize("overlay, expected", [
    ("claims:\n  b1_band_z: 2\n", ["unknown key(s) claims.b1_band_z", "b1_level"]),
    ("claims:\n  b4_mia_tolerance: 0.05\n", ["unknown key(s) claims.b4_mia_tolerance", "use b4_level"]),
    ("claims:\n  a3_max_gapp: 0.1\n", ["unknown key(s) claims.a3_max_gapp", "known keys: a1_max_d_growth"]),
    ("claims:\n  a3_max_gap: small\n", ["claims.a3_max_gap: 'small' is not of type 'number'"]),
    ("claims:\n  b1_level: 1.5\n", ["claims.b1_level: 1.5 is greater than or equal to the maximum of 1"]),
    ("claims: [a3_max_gap]\n", ["claims must be a mapping", "got list ['a3_max_gap']"]),
])
def test_cli_validates_each_config_file_against_the_workflow_schema(tmp_path, monkeypatch, capsys, overlay, expected):
    """An unknown (renamed) key or a wrong value is an error naming the key and the file, found with the
    schema of the checkout the package runs from even outside it (no ./workflow here)."""
    from conftest import ROOT

    from bilinrec.cli import main

    dp_utility().to_csv(tmp_path / "dp.csv", index=False)
    (tmp_path / "overlay.yaml").write_text(overlay)
    monkeypatch.chdir(tmp_path)
    assert main(["claims", "dp_utility=dp.csv", "--config", str(ROOT / "config.yaml"), "--config", "overlay.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bilinrec: error: --config: overlay.yaml: ") and "Traceback" not in err, err
    assert all(part in err for part in expected), err
    assert str(ROOT / "workflow" / "schemas" / "claims.schema.yaml") in err, err


def test_every_operating_point_of_every_claim_comes_from_the_config_schema(thresholds):
    assert set(CONFIG_KEYS) <= set(thresholds)


def test_a_claim_whose_negative_control_passes_is_uninformative(thresholds):
    """The same evaluator on a control that must fail: if the control passes too, the claim says nothing."""
    table = pd.DataFrame({"method": ["ours", "control"], "score": [1.0, 0.0]})

    def better_than(tables, threshold):
        score = float(tables["t"].set_index("method").loc["ours", "score"])
        return decide(score >= threshold, score, None, "score of 'ours'")

    def swap_in(name):
        return lambda tables: {"t": tables["t"].replace({"method": {"ours": "_", name: "ours"}})}

    claim = Claim(id="X", claim="x", source="test", measure="score", threshold="x_min", tables=("t",),
                  evaluate=better_than, controls=(Control("control", swap_in("control")),))
    df = evaluate_claims([claim], {"t": table}, {"x_min": 0.5}).set_index("id")
    assert df.loc["X", "verdict"] == HOLDS and df.loc["X", "controls"] == "control (must fail): does not hold"
    df = evaluate_claims([claim], {"t": table}, {"x_min": -1.0}).set_index("id")
    assert df.loc["X", "verdict"] == UNINFORMATIVE and "control" in df.loc["X", "detail"]


def test_readme_verdict_block_is_generated_from_the_results(tmp_path, thresholds):
    from bilinrec.cli import main
    from bilinrec.io import write_json

    tables = {"unlearn_paired": unlearn_paired()}
    results = tmp_path / "results"
    write_claims(evaluate_claims(CLAIMS, tables, thresholds), results / "claims.csv", results / "claims.md")
    write_json(results / "provenance.json", {"git": {"commit": "0123456789abcdef", "dirty": False},
                                             "config": {"datasets": ["ml-100k"]}, "cpu_count": 2})
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- verdict:start -->\nold text\n<!-- verdict:end -->\n\nrest\n")
    assert main(["readme-verdict", "--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    assert "old text" not in text and text.endswith("<!-- verdict:end -->\n\nrest\n")
    assert "commit 0123456789" in text and "| B5 | Held-out AUC" in text and "**holds**" in text
    readme.write_text("# no markers\n")
    assert main(["readme-verdict", "--readme", str(readme), "--results", str(results)]) == 2
    # with the fair race table of the run, its speedups are summarised from it under the verdict
    race = pd.DataFrame({"dataset": "ml-100k", "size": ["record", "0.1", "0.2", "0.2"],
                         "stratum": ["uniform", "uniform", "uniform", "uniform"],
                         "racer": ["unlearn", "unlearn", "unlearn", "retrain_exact"],
                         "speedup_rule_sweeps_vs_exact": [150.0, 6.0, 4.0, float("nan")],
                         "speedup_rule_seconds_timing_vs_cg": [20.0, 0.9, 0.5, float("nan")]})
    (results / "tables").mkdir()
    race.to_csv(results / "tables" / "unlearn_race.csv", index=False)
    readme.write_text("<!-- verdict:start -->\n<!-- verdict:end -->\n")
    assert main(["readme-verdict", "--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    assert "4.0–150.0× fewer sweeps than exact retraining (4.0× at the largest deletion, 20%; 150.0× for one" in text
    assert "0.50–20.00× against cg retraining" in text
    assert "At matched quality" not in text  # no accelerated racers in this race
    matched = pd.DataFrame({"dataset": "ml-100k", "size": ["record", "0.1"], "stratum": "uniform",
                            "racer": "unlearn_accelerated",
                            "speedup_target_sweeps_vs_exact_accelerated": [40.0, float("nan")]})
    pd.concat([race, matched]).to_csv(results / "tables" / "unlearn_race.csv", index=False)
    assert main(["readme-verdict", "--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    assert "**At matched quality**" in text and "fewer sweeps by 40.0× at one record (the target reached in 1 of 2" in text
    # CG unlearning against CG retraining, with where each stopped
    cg = pd.DataFrame({"dataset": "ml-100k", "size": ["0.1", "0.1"], "stratum": "uniform",
                       "racer": ["unlearn_cg", "retrain_cg"], "speedup_rule_sweeps_vs_cg": [7.0, float("nan")],
                       "rule_objective_gap": [0.002, 0.021]})
    pd.concat([race, matched, cg]).to_csv(results / "tables" / "unlearn_race.csv", index=False)
    assert main(["readme-verdict", "--readme", str(readme), "--results", str(results)]) == 0
    assert ("CG unlearning against CG retraining (like for like, the same rule): 7.0× fewer sweeps; CG unlearning "
            "stops 0.2% above the converged objective, CG retraining 2.1%.") in readme.read_text()


# --------------------------------------------------------------------------------------
# A1 (m₅₀ over the information floor) and A4 (storage of trained models) can fail
# --------------------------------------------------------------------------------------
def lrs_m50(amht=(10.0, 11.0, 12.0), dims=(50, 100, 200), t=300, r=2, k=2, known_u=8.0):
    """An lrs_m50 table: AMHT-LRS m₅₀ per d; references and controls as measured (AltMin never,
    per-user least squares at m = d, or never when d exceeds the 60 samples searched)."""
    from bilinrec.experiments.lrs.steps import m50_table

    rows = []
    for i, d in enumerate(dims):
        stars = {"amht_lrs": amht[i], "known_u": known_u, "oracle": r + k, "altmin": np.nan,
                 "local": d if d <= 60 else np.nan}
        rows += [{"setting": i, "n_users": t, "dim": d, "rank": r, "sparsity": k, "method": method,
                  "m_star": star, "max_samples": 60} for method, star in stars.items()]
    return m50_table(pd.DataFrame(rows))


def test_a1_holds_within_the_floor_ratio_and_each_control_fails(thresholds):
    df = evaluate_claims(CLAIMS, {"lrs_m50": lrs_m50()}, thresholds).set_index("id")
    row = df.loc["A1"]
    assert row["verdict"] == HOLDS, row["detail"]
    assert row["value"] == pytest.approx(11 / (4 + 100 * 2 / 300))  # the worst setting: d = 100
    assert row["controls"] == ("low-rank only (AltMin) (must fail): does not hold; "
                              "per-user least squares (must fail): does not hold; "
                              "known-U oracle (supports unknown) (planted, must hold): holds")


def test_a1_is_uninformative_when_its_planted_known_u_oracle_fails_or_is_missing(thresholds):
    """The known-U oracle must pass A1's rule; if it does not (never recovered), or was not run, the
    rule cannot show anything about AMHT-LRS."""
    never = evaluate_claims(CLAIMS, {"lrs_m50": lrs_m50(known_u=np.nan)}, thresholds).set_index("id").loc["A1"]
    assert never["verdict"] == UNINFORMATIVE and "(planted, must hold): does not hold" in never["controls"]
    table = lrs_m50().query("method != 'known_u'")
    missing = evaluate_claims(CLAIMS, {"lrs_m50": table}, thresholds).set_index("id").loc["A1"]
    assert missing["verdict"] == UNINFORMATIVE


@pytest.mark.parametrize("control", ["altmin", "local"])
def test_a1_control_alone_fails(thresholds, control):
    """Each negative control, put in AMHT-LRS's place, fails the claim on its own."""
    from bilinrec.experiments.lrs.claims import _method_as_ours, claim_a1

    tables = _method_as_ours(control)({"lrs_m50": lrs_m50()})
    outcome = claim_a1(tables, thresholds["a1_max_floor_ratio"], max_growth=thresholds["a1_max_d_growth"])
    assert outcome.verdict == FAILS


def lrs_convergence(altmin_rate=0.999, amht_rate=0.3, planted_rate=0.1):
    """An lrs_convergence table: AMHT-LRS's error falls by ``amht_rate`` per round down to machine
    precision; AltMin (no sparse part) stalls near the sparse components' size; the planted run
    (AltMin on the problem without sparse parts, k = 0) falls by ``planted_rate`` (None: not run)."""
    rows = []
    for seed in range(3):
        for rnd in range(12):
            rows.append({"method": "amht_lrs", "sparsity": 5, "samples": 60, "seed": seed, "round": rnd,
                         "error": max(0.5 * amht_rate**rnd, 1e-15)})
            rows.append({"method": "altmin", "sparsity": 5, "samples": 60, "seed": seed, "round": rnd,
                         "error": 0.41 + 0.05 * altmin_rate**rnd * (rnd == 0)})
            if planted_rate is not None:
                rows.append({"method": "altmin", "sparsity": 0, "samples": 60, "seed": seed, "round": rnd,
                             "error": max(0.2 * planted_rate**rnd, 1e-15)})
    return pd.DataFrame(rows)


def test_a2_holds_on_a_geometric_decrease_its_near_miss_fails_and_its_planted_control_holds(thresholds):
    df = evaluate_claims(CLAIMS, {"lrs_convergence": lrs_convergence()}, thresholds).set_index("id")
    row = df.loc["A2"]
    assert row["verdict"] == HOLDS, row["detail"]
    assert row["value"] == pytest.approx(0.3) and "k = 5" in row["detail"]
    assert row["controls"] == ("low-rank only (AltMin) (must fail): does not hold; "
                              "AltMin on the same problem without sparse parts (k = 0) (planted, must hold): holds")


def test_a2_is_uninformative_if_its_control_also_decreases_geometrically(thresholds):
    table = lrs_convergence().replace({"method": {"altmin": "other"}})
    fast = lrs_convergence().query("method == 'amht_lrs'").assign(method="altmin")
    planted = lrs_convergence().query("method == 'altmin' and sparsity == 0")
    df = evaluate_claims(CLAIMS, {"lrs_convergence": pd.concat([table, fast, planted])}, thresholds).set_index("id")
    assert df.loc["A2", "verdict"] == UNINFORMATIVE
    assert "low-rank only (AltMin) (must fail): holds" in df.loc["A2", "controls"]


@pytest.mark.parametrize("planted_rate", [0.9, None], ids=["planted-stalls", "planted-missing"])
def test_a2_is_uninformative_when_its_planted_control_fails_or_is_missing(thresholds, planted_rate):
    """AltMin on a problem it models exactly must pass A2's rule; if it does not (a rule that could
    not accept a geometric decrease), or was not run, the rule shows nothing about AMHT-LRS."""
    table = lrs_convergence(planted_rate=planted_rate)
    row = evaluate_claims(CLAIMS, {"lrs_convergence": table}, thresholds).set_index("id").loc["A2"]
    assert row["verdict"] == UNINFORMATIVE
    expected = "does not hold" if planted_rate else "not measured"
    assert f"(k = 0) (planted, must hold): {expected}" in row["controls"]


def test_a2_planted_control_alone_is_judged_by_a2s_rule(thresholds):
    """The planted control is the k = 0 run, read by claim_a2 itself (the near miss, AltMin on the
    configured problem, is read at its k = 5)."""
    from bilinrec.experiments.lrs.claims import _low_rank_problem_as_ours, _method_as_ours, claim_a2

    args = thresholds["a2_max_rate"], thresholds["a2_error_floor"]
    planted = claim_a2(_low_rank_problem_as_ours({"lrs_convergence": lrs_convergence()}), args[0], error_floor=args[1])
    assert planted.verdict == HOLDS and planted.value == pytest.approx(0.1) and "k = 0" in planted.detail
    near_miss = claim_a2(_method_as_ours("altmin", "lrs_convergence")({"lrs_convergence": lrs_convergence()}),
                         args[0], error_floor=args[1])
    assert near_miss.verdict == FAILS and "k = 5" in near_miss.detail


def test_a1_fails_far_from_the_floor_growing_with_d_or_not_recovered(thresholds):
    def verdict(table):
        return evaluate_claims(CLAIMS, {"lrs_m50": table}, thresholds).set_index("id").loc["A1"]

    far = verdict(lrs_m50(amht=(10.0, 11.0, 45.0)))            # 45 / 5.33 = 8.4 > 8
    assert far["verdict"] == FAILS and far["value"] > thresholds["a1_max_floor_ratio"]
    growing = verdict(lrs_m50(amht=(6.0, 12.0, 22.0)))          # ratio ×2.7 from d = 50 to 200
    assert growing["verdict"] == FAILS and "growth with d" in growing["detail"]
    never = verdict(lrs_m50(amht=(10.0, 11.0, np.nan)))
    assert never["verdict"] == FAILS and never["value"] == float("inf")


def storage_trained(amht_ratio=(14.0, 57.0, 205.0), amht_mse=(0.1, 0.1, 0.1), ft_mse=(0.5, 0.5, 0.5),
                    dense_compressed=0.9, oracle_ratio=(14.0, 57.0, 206.0)):
    """storage_trained rows; the claim reads the compressed ratios (``ratio`` is uncompressed). The
    planted oracle rows (``oracle_ratio`` None: not stored) predict better than AMHT-LRS."""
    rows = []
    for i, (d, ratio, mse_a, mse_f) in enumerate(zip((64, 256, 1024), amht_ratio, amht_mse, ft_mse)):
        base = {"dim": d, "n_users": 200, "rank": 2, "sparsity": 2}
        rows += [base | {"scheme": "finetune", "test_mse": mse_f, "ratio": 2.0, "ratio_compressed": 1.0},
                 base | {"scheme": "amht_lrs", "test_mse": mse_a, "ratio": ratio / 0.9, "ratio_compressed": ratio},
                 base | {"scheme": "amht_lrs_dense_b", "test_mse": mse_a, "ratio": 0.99,
                         "ratio_compressed": dense_compressed * ratio / 205.0}]
        if oracle_ratio is not None:
            rows.append(base | {"scheme": "oracle", "test_mse": 0.09, "ratio": oracle_ratio[i] / 0.9,
                                "ratio_compressed": oracle_ratio[i]})
    return pd.DataFrame(rows)


def test_a4_reads_measured_ratios_its_near_miss_fails_and_its_planted_control_holds(thresholds):
    row = evaluate_claims(CLAIMS, {"storage_trained": storage_trained()}, thresholds).set_index("id").loc["A4"]
    assert row["verdict"] == HOLDS and row["value"] == 205.0
    assert row["controls"] == ("dense per-user part (must fail): does not hold; "
                              "oracle fit (U* and supports known) in AMHT-LRS's format (planted, must hold): holds")
    assert "reached from P ≈" in row["detail"] and "compressed" in row["detail"]


def test_a4_is_uninformative_when_the_compressed_dense_store_also_reaches_the_ratio(thresholds):
    """Measured on the default config: a dense per-user part, deflate-compressed, costs about as
    little as the sparse format (150× against 197× at d = 1024). The near miss then passes, and
    A4 cannot credit AMHT-LRS's storage format: uninformative."""
    table = storage_trained(dense_compressed=151.0)
    row = evaluate_claims(CLAIMS, {"storage_trained": table}, thresholds).set_index("id").loc["A4"]
    assert row["verdict"] == UNINFORMATIVE and "dense per-user part (must fail): holds" in row["controls"]


@pytest.mark.parametrize("oracle_ratio", [(14.0, 57.0, 98.0), None], ids=["planted-below", "planted-missing"])
def test_a4_is_uninformative_when_its_planted_control_fails_or_is_missing(thresholds, oracle_ratio):
    """The oracle fit in AMHT-LRS's format (r + k numbers per user, the best test MSE) must reach the
    ratio; if it does not (e.g. no measured size large enough), or was not stored, the rule cannot
    credit AMHT-LRS either."""
    table = storage_trained(oracle_ratio=oracle_ratio)
    row = evaluate_claims(CLAIMS, {"storage_trained": table}, thresholds).set_index("id").loc["A4"]
    assert row["verdict"] == UNINFORMATIVE
    expected = "does not hold" if oracle_ratio else "not measured"
    assert f"AMHT-LRS's format (planted, must hold): {expected}" in row["controls"]


def test_a4_controls_alone(thresholds):
    """Through claim_a4 itself: the near miss fails, the planted oracle store holds."""
    from bilinrec.experiments.storage.claims import _dense_per_user_part, _oracle_store, claim_a4

    outcome = claim_a4(_dense_per_user_part({"storage_trained": storage_trained()}), thresholds["a4_min_ratio"])
    assert outcome.verdict == FAILS and outcome.value < 1
    planted = claim_a4(_oracle_store({"storage_trained": storage_trained()}), thresholds["a4_min_ratio"])
    assert planted.verdict == HOLDS and planted.value == 206.0


def test_a4_fails_below_the_ratio_or_where_lrs_predicts_worse(thresholds):
    def verdict(table):
        return evaluate_claims(CLAIMS, {"storage_trained": table}, thresholds).set_index("id").loc["A4"]

    small = verdict(storage_trained(amht_ratio=(14.0, 40.0, 80.0)))
    assert small["verdict"] == FAILS and "not reached" in small["detail"]
    worse = verdict(storage_trained(amht_mse=(0.1, 0.1, 0.9)))   # the 205× model predicts worse: not counted
    assert worse["verdict"] == FAILS and worse["value"] == 57.0


def retraining_band(rng, jump_probability=0.0):
    """The three retrains per run and seed of the default grid's shape (13 settings x 3 seeds):
    normal seed noise per setting, and with ``jump_probability`` each lands on another fixed
    point (a jump of 100 sigma, every statistic)."""
    rows = []
    for setting in range(13):
        mu, sigma = rng.normal(0.5, 0.1), 0.01 * (1 + setting)
        for seed in (1, 2, 3):
            for model in ("retrained", "retrained_b1", "retrained_b2"):
                jump = 100 * sigma * (rng.random() < jump_probability) * rng.choice([-1, 1])
                value = mu + sigma * rng.standard_normal() + jump
                rows.append({"dataset": "d", "strategy": "s", "fraction": setting, "seed": seed, "model": model,
                             "heldout_auc": 0.8 + jump + 0.1 * sigma * rng.standard_normal(),
                             "deleted_mean_score": value, "mia_threshold_heldout": value, "at_target": True})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_band_pass_rate_is_near_the_level_under_normal_noise_and_low_where_retrains_jump(seed):
    """Each run's own retrains in random roles estimate how often a rule passes an ideal unlearner:
    near the calibrated level when the seed noise is normal, far below it when retrains land on
    other fixed points (as on synthetic-lowrank); deterministic."""
    from bilinrec.experiments.unlearn.claims import band_pass_rate, consistency

    def rule(table):
        return bool((consistency(table, ("deleted_mean_score", "heldout_auc"), 0.95)["ratio"] <= 1.0).all())

    normal = retraining_band(np.random.default_rng(seed))
    jumpy = retraining_band(np.random.default_rng(seed), jump_probability=0.13)
    assert band_pass_rate(normal, f"test normal {seed}", rule) >= 0.8
    assert band_pass_rate(jumpy, f"test jumpy {seed}", rule) <= 0.5
    assert band_pass_rate(normal, f"again {seed}", rule) == band_pass_rate(normal, f"test normal {seed}", rule)


@pytest.mark.parametrize("claim", ["B1", "B2", "B4"])
def test_consistency_claims_state_how_often_an_ideal_unlearner_passes_them(thresholds, claim):
    """The detail of B1, B2 and B4 gives the band pass rate when the run has a planted retrain,
    and nothing it cannot compute without one."""
    from bilinrec.experiments.unlearn.claims import CLAIMS as UNLEARN_CLAIMS

    spec = {c.id: c for c in UNLEARN_CLAIMS}[claim]
    paired = unlearn_paired()
    assert re.search(r"an ideal unlearner passes this rule in \d+% of 100 draws",
                     spec.run({"unlearn_paired": paired}, thresholds).detail)
    without = paired[paired["model"] != "retrained_b2"]
    assert "passes this rule in" not in spec.run({"unlearn_paired": without}, thresholds).detail
