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
    "evaluation": {"top_k": [10, 20], "fixed_point_tol": 1e-9, "mia_max_cells": 500,
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
