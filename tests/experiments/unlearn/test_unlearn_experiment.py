"""A tiny end-to-end Unlearn-ALS run on a small synthetic matrix, plus the file-level steps."""

import numpy as np
import pytest

from bilinrec.experiments.unlearn import plots, steps
from bilinrec.experiments.unlearn.experiment import (
    SYNTHETIC,
    run_experiment,
    time_to_reach,
)
from bilinrec.experiments.unlearn.report import write_checks, write_summary
from bilinrec.io import load_npz, read_json
from bilinrec.plotting import savefig

CFG = {
    "synthetic": {"n_users": 120, "n_items": 90, "rank": 4, "density": 0.1},
    "min_rating": 3,
    "holdout_fraction": 0.03,
    "confidence": {"scheme": "bm25", "scale": 5, "K1": 100, "B": 0.9, "bm25_rows": "items", "alpha": 40},
    "model": {"factors": 8, "regularization": 0.01, "iterations": 40, "tol": 1e-7, "solver": "cholesky",
              "cg_steps": 3, "dtype": "float64"},
    "band_size": 2,
    "deletion": {"quantile": 0.1, "history_share": 0.5},
    "unlearning": {"modes": ["retrain", "frozen", "mask", "naive"], "max_iterations": 40, "tol": 1e-7, "budget": 5},
    "evaluation": {"top_k": [10, 20], "fixed_point_tol": 1e-6, "mia_max_cells": 500,
                   "mia_folds": 5, "score_samples": 300},
}
MODELS = {"original", "retrained", "unlearn_retrain", "unlearn_retrain_budget", "unlearn_frozen",
          "unlearn_frozen_budget", "unlearn_mask", "unlearn_mask_budget", "naive", "naive_budget"}


@pytest.fixture(scope="module")
def run():
    return run_experiment(SYNTHETIC, None, CFG, root_seed=11, seed=5, strategy="uniform", fraction=0.1)


def test_run_reports_every_model_and_check(run):
    metrics, samples, models = run
    assert set(metrics["models"]) == MODELS | {"retrained_b1"} and set(models) == MODELS
    assert metrics["n_deleted"] == round(0.1 * metrics["n_train_positives"])
    assert len(metrics["retrain_band_auc"]) == 2
    checks = metrics["checks"]
    assert {"unlearn_fixed_point_rel_change", "retrained_fixed_point_rel_change",
            "frozen_fixed_point_rel_change"} <= set(checks)
    # BM25 depends on every record: deleting 10% changes the confidence of (nearly) every remaining cell
    assert checks["frozen_conf_changed_share"] > 0.9 and checks["frozen_conf_rel_change_max"] > 0.01
    # warm-started from a trained model, unlearning ends closer to a fixed point than retraining
    assert checks["unlearn_as_stationary_as_retrained"]
    assert checks["unlearn_fixed_point_rel_change"] <= checks["retrained_fixed_point_rel_change"]
    for name, row in metrics["models"].items():
        assert 0.5 < row["heldout_auc"] <= 1.0, name
        assert 0.0 <= row["mia_threshold_heldout"] <= 1.0
        assert np.isfinite(row["objective_reduced"])
        assert "jaccard_items_vs_retrained_k20" in row
    assert metrics["models"]["unlearn_retrain_budget"]["sweeps"] == 5
    exact, frozen = metrics["models"]["unlearn_retrain"], metrics["models"]["unlearn_frozen"]
    # exact unlearning reaches the retraining objective; the frozen-weight shortcut stops above it
    assert exact["objective_gap"] < 1e-3 and frozen["objective_gap"] > exact["objective_gap"]
    assert exact["speedup_sweeps"] > 0 and np.isnan(metrics["models"]["original"]["speedup_sweeps"])
    assert samples["original__deleted"].size == metrics["n_deleted"]


def test_unlearning_forgets_and_tracks_retraining(run):
    metrics, _, models = run
    m = metrics["models"]
    # the original model fits the deleted positives; exact unlearning and retraining do not
    assert m["original"]["deleted_mean_score"] > m["unlearn_retrain"]["deleted_mean_score"] + 0.1
    assert abs(m["unlearn_retrain"]["deleted_mean_score"] - m["retrained"]["deleted_mean_score"]) < 0.1
    # naive fine-tuning pushes deleted cells towards confident negatives: lower scores than retraining
    assert m["naive"]["deleted_mean_score"] < m["retrained"]["deleted_mean_score"]
    # the unlearned model is closer to the retrained one than the original is
    assert m["unlearn_retrain"]["jaccard_recs_vs_retrained"] > m["original"]["jaccard_recs_vs_retrained"]
    # warm-started unlearning stops before the full retraining budget
    assert models["unlearn_retrain"].objective[-1] <= models["unlearn_retrain"].objective[1]


def test_time_to_reach_skips_the_start_record():
    objective = np.array([1.0, 5.0, 3.0, 2.0])
    seconds = np.array([0.0, 1.0, 2.0, 3.0])
    assert time_to_reach(objective, seconds, 3.0) == 2.0
    assert np.isnan(time_to_reach(objective, seconds, 1.5))


def test_file_steps_and_tables(tmp_path):
    cfg = {**CFG, "model": {**CFG["model"], "iterations": 15},
           "unlearning": {**CFG["unlearning"], "modes": ["retrain"], "max_iterations": 8}}
    models = {"original", "retrained", "unlearn_retrain", "unlearn_retrain_budget"}
    split, original = tmp_path / "split.npz", tmp_path / "original.npz"
    steps.split_step(SYNTHETIC, None, cfg, 3, 1, split)
    steps.original_step(split, cfg, 1, original)
    json_paths = []
    for strategy, fraction in (("uniform", 0.1), ("user_top", 0.2)):
        run_dir = tmp_path / f"{strategy}_{fraction}"
        deletions = run_dir / "deletions.npz"
        steps.deletions_step(split, SYNTHETIC, strategy, fraction, cfg, 3, 1, deletions)
        retrains = [run_dir / f"retrain_b{b}.npz" for b in range(cfg["band_size"])]
        for member, path in enumerate(retrains):
            steps.retrain_step(split, deletions, cfg, 1, member, path)
        steps.unlearn_step(split, deletions, original, cfg, 1, run_dir / "unlearned.npz")
        out = run_dir / "metrics.json"
        steps.evaluate_step(split, deletions, original, retrains, run_dir / "unlearned.npz", cfg,
                            {"dataset": SYNTHETIC, "strategy": strategy, "fraction": fraction, "seed": 1},
                            out, run_dir / "scores.npz", run_dir / "history.npz")
        json_paths.append(out)
    result = read_json(json_paths[0])
    assert result["strategy"] == "uniform" and set(result["models"]) == models | {"retrained_b1"}
    history = load_npz(tmp_path / "uniform_0.1" / "history.npz")
    assert history["retrained__objective"].size <= 16  # start + at most 15 sweeps
    summary = write_summary(json_paths, tmp_path / "unlearn_summary.csv")
    assert len(summary) == 2 * (len(models) + 1)  # + band member retrained_b1
    assert (summary["heldout_auc_count"] == 1).all()
    assert (tmp_path / "unlearn_summary.md").exists() and (tmp_path / "unlearn_summary.tex").exists()
    checks = write_checks(json_paths, tmp_path / "unlearn_checks.csv")
    assert len(checks) == 2 and "frozen_conf_rel_change_median" in checks
    # the notebook's figures can be drawn from these files
    runs = plots.representative_runs([str(p) for p in json_paths])
    assert runs == {SYNTHETIC: str(json_paths[0])}
    for name, fig in (("conv", plots.plot_convergence(runs)), ("scores", plots.plot_deleted_scores(runs)),
                      ("mia", plots.plot_mia(summary)), ("speedup", plots.plot_speedup(summary))):
        written = savefig(fig, tmp_path / name)
        assert all(path.stat().st_size > 0 for path in written)


RACE = {"datasets": [SYNTHETIC], "n_seeds": 1, "sizes": ["record", "user", 0.1], "strata": ["uniform", "popular"],
        "quantile": 0.1, "peers": ["exact", "cg", "implicit", "exact_accelerated"], "tol": 1e-4, "max_sweeps": 30,
        "within": 1e-4, "acceleration": "balanced_anderson",
        "converge_tol": 1e-6, "converge_max_sweeps": 60, "converge_sizes": [0.1]}


def test_split_files_keep_their_weighting_and_name_a_bad_one(tmp_path):
    import json

    from bilinrec.experiments.unlearn.experiment import load_split
    from bilinrec.io import save_npz

    path = tmp_path / "split.npz"
    steps.split_step(SYNTHETIC, None, CFG, 3, 1, path)
    arrays = load_npz(path)
    stored = json.loads(str(arrays["weighting"]))
    assert stored["bm25_rows"] == "items" and load_split(path).weighting.bm25_rows == "items"
    stored["rows"] = stored.pop("bm25_rows")  # a split file written before the field was named bm25_rows
    save_npz(path, **{**arrays, "weighting": np.array(json.dumps({**stored, "rows": "users"}))})
    assert load_split(path).weighting.bm25_rows == "users"
    save_npz(path, **{**arrays, "weighting": np.array(json.dumps({**stored, "K2": 1.0}))})
    with pytest.raises(ValueError, match=r"split\.npz: entry 'weighting': weighting has unknown key\(s\) 'K2'"):
        load_split(path)


def test_race_step_and_table(tmp_path):
    """The fair race: every peer and the unlearner stopped by one rule; sweeps are deterministic."""
    import pandas as pd

    cfg = {**CFG, "model": {**CFG["model"], "iterations": 30, "tol": 1e-4}, "race": RACE}
    split, original = tmp_path / "split.npz", tmp_path / "original.npz"
    steps.split_step(SYNTHETIC, None, cfg, 3, 1, split)
    steps.original_step(split, cfg, 1, original)
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"race_{name}.csv")
        steps.race_step(split, original, SYNTHETIC, cfg, 3, 1, paths[-1])
    a, b = (pd.read_csv(p) for p in paths)
    racers = set(a["racer"])
    # every configured peer, and CG / accelerated unlearning against CG / accelerated retraining
    assert racers == {"retrain_exact", "retrain_cg", "retrain_implicit", "retrain_exact_accelerated", "unlearn",
                      "unlearn_cg", "unlearn_accelerated"}
    acc = a[a["racer"] == "unlearn_accelerated"]
    assert (acc["speedup_rule_sweeps_vs_exact_accelerated"] > 0).all()
    assert (a.loc[a["racer"] == "unlearn_cg", "speedup_rule_sweeps_vs_cg"] > 0).all()
    # F* is the lowest objective any racer reached: no racer ends below it
    assert (a["rule_objective"] >= a["converged_objective"] * (1 - 1e-12)).all()
    assert set(a["converged_by"]) <= racers
    # record + user (uniform only) + 0.1 in two strata = 4 deletion sets
    assert len(a.groupby(["size", "stratum"])) == 4
    # deterministic measures repeat exactly; only the *_timing columns may differ
    timing = [c for c in a.columns if "timing" in c or "rss" in c]
    pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))
    unl = a[a["racer"] == "unlearn"]
    assert (unl["speedup_rule_sweeps_vs_exact"] > 0).all()
    converged = a[a["converged_view"]]
    assert set(converged["size"].astype(str)) == {"0.1"}
    steps.race_table_step(paths[:1], tmp_path / "unlearn_race.csv", tmp_path / "unlearn_race_speedup")
    assert (tmp_path / "unlearn_race.md").exists() and (tmp_path / "unlearn_race_speedup.png").stat().st_size > 0


def test_a_configured_peer_that_cannot_run_is_an_error(tmp_path, monkeypatch):
    """implicit listed in unlearn.race.peers but not importable: an error naming the key, never a
    race without it."""
    import sys

    cfg = {**CFG, "model": {**CFG["model"], "iterations": 5, "tol": 1e-4},
           "race": {**RACE, "sizes": ["record"], "strata": ["uniform"], "converge_sizes": []}}
    split, original = tmp_path / "split.npz", tmp_path / "original.npz"
    steps.split_step(SYNTHETIC, None, cfg, 3, 1, split)
    steps.original_step(split, cfg, 1, original)
    monkeypatch.setitem(sys.modules, "implicit.cpu.als", None)  # the import now fails
    with pytest.raises(RuntimeError, match="unlearn.race.peers lists 'implicit', but the implicit library cannot"):
        steps.race_step(split, original, SYNTHETIC, cfg, 3, 1, tmp_path / "race.csv")
    assert not (tmp_path / "race.csv").exists()


def test_same_config_gives_the_same_verdicts(tmp_path):
    """Two runs of one config: identical claim verdicts (B3 counts sweeps, not seconds)."""
    from bilinrec.experiments.claims import CLAIMS
    from bilinrec.experiments.unlearn.report import write_paired
    from bilinrec.experiments.verdict import evaluate_claims
    from bilinrec.io import write_json

    cfg = {**CFG, "model": {**CFG["model"], "iterations": 25, "tol": 1e-4},
           "unlearning": {**CFG["unlearning"], "modes": ["retrain", "naive"], "max_iterations": 25, "tol": 1e-4}}
    thresholds = {"b1_level": 0.95, "b2_auc_tolerance": 0.0, "b3_min_speedup": 3, "b4_level": 0.95,
                  "b5_auc_tolerance": 0.03, "b5_target_auc": 0.87}
    verdicts = []
    for attempt in ("first", "second"):
        paths = []
        for seed in (1, 2):
            metrics, _, _ = run_experiment(SYNTHETIC, None, cfg, root_seed=11, seed=seed, strategy="uniform",
                                           fraction=0.1)
            paths.append(tmp_path / f"{attempt}_{seed}.json")
            write_json(paths[-1], {"dataset": SYNTHETIC, "strategy": "uniform", "fraction": 0.1, "seed": seed,
                                   **metrics})
        paired = write_paired(paths, tmp_path / f"{attempt}_paired.csv")
        popularity = paired[paired["model"] == "popularity"]  # B5's control, one row per run
        assert len(popularity) == 2 and popularity["heldout_auc"].between(0, 1).all()
        b_claims = [c for c in CLAIMS if c.id.startswith("B")]
        df = evaluate_claims(b_claims, {"unlearn_paired": paired}, thresholds)
        verdicts.append(df[["id", "verdict", "value", "controls"]])
    assert verdicts[0].equals(verdicts[1])


def test_top_k_beyond_the_matrix_is_undefined_not_an_error(caplog):
    """The default config asks for top-200 lists; on a matrix with at most 200 items (users) those
    overlaps are undefined: NaN and a warning, and every other metric is still computed."""
    cfg = {**CFG, "synthetic": {"n_users": 60, "n_items": 30, "rank": 3, "density": 0.2},
           "unlearning": {**CFG["unlearning"], "modes": ["retrain"]},
           "evaluation": {**CFG["evaluation"], "top_k": [10, 30]}}
    with caplog.at_level("WARNING"):
        metrics, _, _ = run_experiment(SYNTHETIC, None, cfg, root_seed=11, seed=5, strategy="uniform", fraction=0.1)
    row = metrics["models"]["unlearn_retrain"]
    assert np.isnan(row["jaccard_items_vs_retrained_k30"]) and np.isnan(row["jaccard_recs_vs_retrained_k30"])
    assert 0.0 <= row["jaccard_users_vs_retrained_k30"] <= 1.0 and 0.0 <= row["jaccard_items_vs_retrained"] <= 1.0
    assert "evaluation.top_k = 30" in caplog.text


@pytest.mark.parametrize("acceleration", [{}, {"anderson_mixing": 4.0}, {"acceleration": "ncg"}])
def test_models_are_compared_at_matched_convergence(acceleration):
    """With balanced Anderson (plain or over-relaxed) or ALS-NCG every exact model of the run ends at a fixed
    point of the retraining objective (one more exact sweep changes it by < fixed_point_tol) and its
    whole run is its cost to that target; the fixed-budget snapshot does not get there, and frozen
    weights converge to a fixed point of another objective."""
    cfg = {**CFG, "model": {**CFG["model"], "factors": 4, "regularization": 1.0, "iterations": 400, "tol": 1e-10,
                            "acceleration": "balanced_anderson", **acceleration},
           "unlearning": {**CFG["unlearning"], "modes": ["retrain", "frozen"], "max_iterations": 400, "tol": 1e-10,
                          "budget": 1},
           "evaluation": {**CFG["evaluation"], "fixed_point_tol": 1e-8}}
    metrics, _, _ = run_experiment(SYNTHETIC, None, cfg, root_seed=11, seed=5, strategy="item_top", fraction=0.2)
    rows = metrics["models"]
    assert metrics["converged_objective"] == min(rows[m]["objective_reduced"]
                                                 for m in ("retrained", "retrained_b1", "unlearn_retrain"))
    for name in ("retrained", "retrained_b1", "unlearn_retrain"):
        assert rows[name]["at_target"] and rows[name]["fixed_point_change"] < 1e-8, name
        assert rows[name]["target_sweep_equivalents"] == rows[name]["sweep_equivalents"]
    for name in ("unlearn_retrain_budget", "unlearn_frozen", "original"):
        assert not rows[name]["at_target"] and rows[name]["fixed_point_change"] > 1e-8, name
        assert np.isnan(rows[name]["target_sweep_equivalents"])
    assert rows["unlearn_retrain"]["speedup_target_sweeps"] == pytest.approx(
        rows["retrained"]["sweep_equivalents"] / rows["unlearn_retrain"]["sweep_equivalents"])
    assert metrics["checks"]["unlearn_fixed_point_rel_change"] == rows["unlearn_retrain"]["fixed_point_change"]


def test_the_model_section_sets_the_anderson_mixing():
    """``model.anderson_mixing`` reaches every ALS of the run (absent: ALS's own default)."""
    from bilinrec.experiments.als_inputs import als_params
    from bilinrec.models.als import ALS

    assert ALS(**als_params({**CFG["model"], "anderson_mixing": 4.0}, seed=1)).anderson_mixing == 4.0
    assert ALS(**als_params(CFG["model"], seed=1)).anderson_mixing == ALS().anderson_mixing
