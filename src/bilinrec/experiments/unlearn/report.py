"""Summary and exactness-check tables of the Unlearn-ALS runs."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bilinrec.io import read_json
from bilinrec.tables import display_table, summarize, write_table

GROUP = ["dataset", "strategy", "fraction", "model"]
#: Metrics of the summary table (CSV has all; Markdown/LaTeX show :data:`SHOWN`).
METRICS = [
    "heldout_auc", "heldout_mse", "heldout_accuracy", "deleted_mse", "deleted_accuracy", "deleted_mean_score",
    "jaccard_items_vs_original", "jaccard_users_vs_original", "jaccard_recs_vs_original",
    "jaccard_items_vs_retrained", "jaccard_users_vs_retrained", "jaccard_recs_vs_retrained",
    "mia_threshold_heldout", "mia_logistic_heldout", "mia_threshold_unobserved", "mia_logistic_unobserved",
    "auc_in_band", "sweeps", "sweep_equivalents", "objective_gap", "objective_gap_star", "fixed_point_change", "at_target",
    "target_sweep_equivalents", "compute_seconds", "speedup_sweeps", "speedup_target_sweeps", "speedup_seconds_timing",
]
SHOWN = [
    "heldout_auc", "deleted_mse", "deleted_accuracy", "jaccard_items_vs_retrained", "jaccard_recs_vs_retrained",
    "mia_threshold_heldout", "mia_logistic_heldout", "objective_gap_star", "at_target", "speedup_sweeps",
    "speedup_target_sweeps", "speedup_seconds_timing",
]
#: Row order of the models in every table.
MODEL_ORDER = ["original", "retrained", "retrained_b1", "retrained_b2", "unlearn_retrain", "unlearn_retrain_budget",
               "unlearn_frozen", "unlearn_frozen_budget", "unlearn_mask",
               "unlearn_mask_budget", "naive", "naive_budget"]


def load_runs(json_paths: Sequence[str | os.PathLike]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(models, checks)``: one row per (run, model) and one row per run."""
    model_rows, check_rows = [], []
    for path in json_paths:
        result = read_json(path)
        base = {k: result[k] for k in ("dataset", "strategy", "fraction", "seed", "n_deleted")}
        for model, metrics in result["models"].items():
            model_rows.append({**base, "model": model, **metrics})
        in_band = {f"auc_in_band_{m}": v["auc_in_band"] for m, v in result["models"].items()
                   if m not in ("original", "retrained")}
        popularity = {k: result[k] for k in ("popularity_heldout_auc",) if k in result}
        check_rows.append({**base, **result["checks"], **in_band, **popularity,
                           "band_size": len(result["retrain_band_auc"]),
                           "band_auc_min": min(result["retrain_band_auc"]),
                           "band_auc_max": max(result["retrain_band_auc"])})
    models = pd.DataFrame(model_rows)
    for col in models.columns:
        if models[col].dtype == bool:
            models[col] = models[col].astype(float)
    return models, pd.DataFrame(check_rows)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    key = df["model"].map(lambda m: rank.get(m, len(rank)))
    return df.assign(_k=key).sort_values(["dataset", "strategy", "fraction", "_k"]).drop(columns="_k")


def write_summary(json_paths: Sequence[str | os.PathLike], csv_path: str | os.PathLike) -> pd.DataFrame:
    """``unlearn_summary``: mean/std over seeds per dataset x strategy x fraction x model."""
    models, _ = load_runs(json_paths)
    metrics = [m for m in METRICS if m in models.columns]
    summary = _ordered(summarize(models, GROUP, metrics))
    shown = display_table(summary, GROUP, [m for m in SHOWN if m in metrics])
    shown.insert(len(GROUP), "seeds", summary["heldout_auc_count"].astype(int).to_numpy())
    write_table(summary, csv_path, display=shown,
                caption="Unlearn-ALS: mean ± std over seeds (full metrics in the CSV).")
    return summary


def write_checks(json_paths: Sequence[str | os.PathLike], csv_path: str | os.PathLike) -> pd.DataFrame:
    """``unlearn_checks``: the exactness checks of every run."""
    _, checks = load_runs(json_paths)
    checks = checks.sort_values(["dataset", "strategy", "fraction", "seed"]).reset_index(drop=True)
    shown = checks.copy()
    for col in shown.columns:
        if shown[col].dtype == float and col not in ("fraction",):
            shown[col] = shown[col].map(lambda v: f"{v:.2e}" if np.isfinite(v) else "n/a")
    write_table(checks, csv_path, display=shown, caption="Unlearn-ALS exactness checks per run.")
    return checks


#: The ``model`` of ``unlearn_paired``'s rows that score held-out cells by item popularity (only
#: ``heldout_auc`` is set).
POPULARITY = "popularity"
#: Columns of ``unlearn_paired`` (one row per run and model: what the claims pair per seed).
PAIRED_COLUMNS = ["dataset", "strategy", "fraction", "seed", "model", "heldout_auc", "deleted_mean_score",
                  "deleted_mse", "mia_threshold_heldout", "objective_gap", "objective_gap_star", "fixed_point_change",
                  "at_target",
                  "sweep_equivalents", "target_sweep_equivalents", "compute_seconds"]


def write_paired(json_paths: Sequence[str | os.PathLike], csv_path: str | os.PathLike) -> pd.DataFrame:
    """``unlearn_paired``: per run (dataset, strategy, fraction, seed) and model, the statistics the
    claims compare seed by seed (unlearned - retrained against retrained(seed a) - retrained(seed b))."""
    models, checks = load_runs(json_paths)
    if "popularity_heldout_auc" in checks:  # item popularity as a model: the control of claim B5
        popularity = checks[["dataset", "strategy", "fraction", "seed", "popularity_heldout_auc"]].rename(
            columns={"popularity_heldout_auc": "heldout_auc"}).assign(model=POPULARITY)
        models = pd.concat([models, popularity], ignore_index=True)
    paired = _ordered(models.reindex(columns=PAIRED_COLUMNS)).sort_values(["dataset", "strategy", "fraction", "seed"],
                                                         kind="stable").reset_index(drop=True)
    write_table(paired, csv_path, caption="Unlearn-ALS: per-seed statistics the claims pair.")
    return paired
