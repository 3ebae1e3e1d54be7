"""The whole workflow runs end to end on a small config (synthetic-ml plus a tiny file in
MovieLens 100K format), writes every figure, table, notebook and the provenance, and a
second run has nothing to do."""

import json

import numpy as np
import pytest
import yaml
from conftest import copy_workflow, run_snakemake

pytestmark = pytest.mark.workflow


def write_ml100k_format_fixture(path, n_users=40, n_items=30, per_user=18, seed=0):
    """A tiny tab-separated `user item rating timestamp` file, as MovieLens 100K's u.data."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for i in np.sort(rng.choice(n_items, size=per_user, replace=False)) + 1:
            rows.append(f"{u}\t{i}\t{rng.integers(1, 6)}\t{880000000 + rng.integers(0, 10**6)}")
    path.write_text("\n".join(rows) + "\n")
    return {
        "path": str(path),
        "sep": "\t",
        "header": False,
        "columns": {"user": 0, "item": 1, "rating": 2, "timestamp": 3},
        "rating_scale": [1, 5],
    }


def smoke_config(tmp_path):
    """Every part of the workflow, shrunk to run in a few minutes."""
    tiny = write_ml100k_format_fixture(tmp_path / "u.data")
    return {
        "datasets": ["tiny", "synthetic-ml"],
        "data": {
            "allow_download": False,
            "custom": {"tiny": tiny},
            "synthetic_ml": {
                "n_users": 60, "n_items": 80, "n_ratings": 1500, "min_ratings_per_user": 12,
                "rank": 3, "sparse_per_user": 2,
            },
        },
        "unlearn": {
            "datasets": ["synthetic-lowrank", "tiny"],
            "n_seeds": 1,
            "grid": [{"strategy": "uniform", "fractions": [0.1]}, {"strategy": "user_history", "fractions": [0.1]}],
            "synthetic": {"n_users": 40, "n_items": 30, "rank": 3, "density": 0.2},
            "model": {"factors": 4, "iterations": 6},
            "band_size": 2,
            "unlearning": {"max_iterations": 5, "budget": 2},
            "evaluation": {"top_k": [5, 10], "mia_max_cells": 50, "mia_folds": 2, "score_samples": 50},
            "race": {"datasets": ["tiny"], "sizes": ["record", "user", 0.1], "strata": ["uniform", "popular"],
                     "peers": ["exact", "cg", "implicit"], "max_sweeps": 8, "converge_max_sweeps": 12,
                     "converge_sizes": [0.1]},
        },
        "lrs": {
            "n_seeds": 1,
            "problem": {"n_users": 60, "dim": 10, "rank": 2, "sparsity": 1, "n_test": 5},
            "estimator": {"max_rounds": 5},
            "baselines": {"fedrep_max_rounds": 20},
            "error_vs_m": {"samples": [8, 20], "noise": [0.0]},
            "phase_m_t": {"samples": [10, 20], "n_users": [30, 60]},
            "phase_m_k": {"samples": [10, 20], "sparsity": [1, 2, 3], "n_users": 60},
            "convergence": {"samples": [20]},
            "noise": {"samples": 20, "noise": [0.0, 0.1]},
            "m50": {"n_users": 40, "max_samples": 16,
                    "settings": [{"dim": 8, "rank": 1, "sparsity": 1}, {"dim": 12, "rank": 1, "sparsity": 1}]},
        },
        "dp": {
            "n_seeds": 1, "n_users": [50], "epsilons": [1, 8, "inf"], "fixed_epsilon": 1,
            "large_users": {"n_users": [150], "methods": ["dp_amht_lrs", "amht_lrs"], "epsilons": [8]},
            "test_users": 20, "n_test": 5,
            "problem": {"dim": 10, "rank": 2, "sparsity": 1, "samples": 20},
            "reference": {"max_rounds": 5},
            "audit": {"trials": 10, "calibration_trials": 10, "known_seed_trials": 20},
        },
        "personalization": {
            "factors": [4], "n_seeds": 2, "train_sizes": [5, "all"], "min_eval_users": 5,
            "als": {"iterations": 3},
            "grid": {"alpha": [10], "rank": [1], "sparsity": [1], "ridge": [1]},
            "amht": {"max_rounds": 3}, "fedrep": {"max_rounds": 5},
            "dp": {"epsilons": [1], "max_rounds": 3},
            "bootstrap": 100, "tuning_budget": 1,
            "positive_control": {"n_users": 60, "n_items": 80, "n_ratings": 2400, "min_ratings_per_user": 25,
                                 "n_genres": 6},
        },
        "storage": {
            "n_users": [100, 1000], "figure_train_size": 5,
            "trained": {"dims": [16, 64], "n_users": 20, "rank": 1, "sparsity": 1, "samples": 12, "max_rounds": 3},
            "models": [{"name": "network P=1e4", "parameters": 10000, "layers": 2, "last_layer_parameters": 1000}],
        },
        "forget": {
            "n_forgotten": [1, 3],
            "als": {"datasets": ["tiny"]},
            "lrs": {"problem": {"n_users": 30, "dim": 6, "rank": 2, "sparsity": 1, "samples": 20}, "max_rounds": 20},
            "dp": {"rounds": 3},
        },
    }


def run_smoke(base):
    """The whole workflow on the smoke config in ``base``/wf: (wf, first run, dry run, report)."""
    wf = copy_workflow(base / "wf")
    cfg = wf / "smoke.yaml"
    cfg.write_text(yaml.safe_dump(smoke_config(base)))
    env = {"BILINREC_DATA_DIR": ""}
    first = run_snakemake(wf, "--cores", "2", "--configfile", str(cfg), env=env)
    second = run_snakemake(wf, "-n", "--cores", "2", "--configfile", str(cfg), env=env)
    report = run_snakemake(wf, "report", "--cores", "1", "--configfile", str(cfg), env=env)
    return wf, first, second, report


@pytest.fixture(scope="module")
def smoke_run(smoke_local_run):
    """The local smoke run (made once per session: the cluster test compares with it too)."""
    return smoke_local_run


FIGURES = [
    "datasets_overview", "unlearn_convergence", "unlearn_deleted_scores", "unlearn_mia", "unlearn_speedup",
    "unlearn_race_speedup",
    "lrs_error_vs_m", "lrs_phase_transition", "lrs_convergence", "lrs_noise", "dp_utility", "dp_users",
    "personalization_rmse_vs_m", "personalization_paired", "storage_scaling", "storage_vs_rmse", "lrs_m50",
    "storage_trained", "forget_time",
]
TABLES = [
    "datasets", "unlearn_summary", "unlearn_checks", "unlearn_paired", "unlearn_race", "lrs_sample_complexity",
    "lrs_phase_transition", "dp_utility", "dp_audit", "personalization", "personalization_buckets",
    "personalization_paired", "storage", "lrs_m50", "storage_trained", "forget",
]
NOTEBOOKS = ["datasets", "unlearn", "lrs", "dp", "personalization", "storage"]


def test_smoke_run_writes_every_output(smoke_run):
    wf, first, *_ = smoke_run
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-5000:]
    results = wf / "results"
    expected = (
        [f"figures/{name}.{ext}" for name in FIGURES for ext in ("pdf", "png")]
        + [f"tables/{name}.{ext}" for name in TABLES for ext in ("csv", "md")]
        + [f"notebooks/{name}.{ext}" for name in NOTEBOOKS for ext in ("ipynb", "html")]
        + ["claims.csv", "claims.md", "provenance.json"]
    )
    missing = [rel for rel in expected if not (results / rel).is_file()]
    assert not missing, missing
    claims = (results / "claims.md").read_text()
    assert claims.startswith("# Claims verdict") and "B5" in claims
    assert "original (no unlearning)" in claims and "naive fine-tuning" in claims  # the negative controls
    race = (results / "tables" / "unlearn_race.csv").read_text()
    assert "retrain_exact" in race and "retrain_cg" in race and "unlearn" in race
    prov = json.loads((results / "provenance.json").read_text())
    assert prov["config"]["datasets"] == ["tiny", "synthetic-ml"]
    assert prov["packages"]["snakemake"]


def test_report_lists_every_figure_and_table(smoke_run):
    wf, first, _, report = smoke_run
    assert first.returncode == 0
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    html = (wf / "results" / "report.html").read_text(errors="replace")
    produced = sorted(p.name for p in (wf / "results" / "figures").glob("*.png"))
    produced += sorted(p.name for p in (wf / "results" / "tables").glob("*.csv")) + ["claims.csv"]
    assert len(produced) == len(FIGURES) + len(TABLES) + 1
    absent = [name for name in produced if name not in html]
    assert not absent, f"not in the report: {absent}"


def test_second_run_has_nothing_to_do(smoke_run):
    _, first, second, _ = smoke_run
    assert first.returncode == 0
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert "Nothing to be done" in out, out[-3000:]
