"""Figures of the Unlearn-ALS experiments (called by notebooks/unlearn.ipynb)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bilinrec.experiments.methods import method_color, method_label
from bilinrec.io import load_npz, read_json

#: Models drawn as curves / distributions, in legend order.
CURVE_MODELS = ["retrained", "unlearn_retrain", "unlearn_mask", "naive"]
SCORE_MODELS = ["original", "retrained", "unlearn_retrain", "unlearn_mask", "naive"]
UNLEARNERS = ["unlearn_retrain", "unlearn_frozen", "unlearn_mask", "naive"]


def run_files(metrics_path: str | os.PathLike) -> tuple[dict, dict, dict]:
    """``(metrics, score samples, histories)`` of the run whose ``metrics.json`` is given (same folder)."""
    run_dir = os.path.dirname(os.fspath(metrics_path))
    return (read_json(metrics_path), load_npz(os.path.join(run_dir, "scores.npz")),
            load_npz(os.path.join(run_dir, "history.npz")))


def representative_runs(metrics_paths: Sequence[str], strategy: str = "uniform", fraction: float = 0.1) -> dict:
    """Per dataset, the metrics path of the lowest seed of ``strategy`` at ``fraction``.

    Falls back to the first run of the dataset if that combination was not run.
    """
    chosen: dict[str, tuple] = {}
    for path in sorted(metrics_paths):
        m = read_json(path)
        key = (m["strategy"] != strategy or abs(m["fraction"] - fraction) > 1e-12, m["seed"])
        if m["dataset"] not in chosen or key < chosen[m["dataset"]][0]:
            chosen[m["dataset"]] = (key, path)
    return {d: p for d, (_, p) in sorted(chosen.items())}


def plot_convergence(runs: dict[str, str]) -> plt.Figure:
    """Objective relative to the converged retrain objective, and held-out AUC, vs record.

    Records: 0 is the start (random init / original model); for the unlearners record 1 is
    the local update of the affected rows, later records are full sweeps. mask and naive
    minimise other objectives, so their curves level off away from 0.
    """
    fig, axes = plt.subplots(2, len(runs), figsize=(5.4 * len(runs), 6.4), squeeze=False)
    for col, (dataset, path) in enumerate(runs.items()):
        metrics, _, hist = run_files(path)
        f_star = hist["retrained__objective"][-1]
        for name in CURVE_MODELS:
            if f"{name}__objective" not in hist:
                continue
            obj, auc_curve = hist[f"{name}__objective"], hist[f"{name}__heldout_auc"]
            sweeps = np.arange(obj.size)
            style = dict(color=method_color(name), label=method_label(name))
            axes[0, col].plot(sweeps, obj / f_star - 1.0, **style)
            axes[1, col].plot(sweeps, auc_curve, **style)
        lo, hi = min(metrics["retrain_band_auc"]), max(metrics["retrain_band_auc"])
        axes[1, col].axhspan(lo, hi, color="0.6", alpha=0.25, lw=0, label="retrain seed band")
        axes[0, col].set_title(f"{dataset}: {metrics['strategy']}, f={metrics['fraction']}", fontsize=10)
        axes[0, col].set_yscale("symlog", linthresh=1e-5)
        axes[0, col].axhline(0.0, color="k", lw=0.6)

        axes[1, col].set_xlabel("record (0 start; unlearners: 1 local update)")
        finals = [hist[f"{n}__heldout_auc"][-1] for n in CURVE_MODELS if f"{n}__heldout_auc" in hist]
        axes[1, col].set_ylim(min(finals + [lo]) - 0.03, max(finals + [hi]) + 0.02)
    axes[0, 0].set_ylabel("objective / retrain optimum − 1")
    axes[1, 0].set_ylabel("held-out AUC")
    axes[1, 0].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def plot_deleted_scores(runs: dict[str, str]) -> plt.Figure:
    """Score distributions of deleted cells vs held-out positives / negatives, per model."""
    groups = [("deleted", "deleted positives"), ("heldout_pos", "held-out positives"),
              ("heldout_neg", "held-out negatives")]
    fig, axes = plt.subplots(1, len(runs), figsize=(5.2 * len(runs), 3.8), squeeze=False)
    width = 0.26
    for col, (dataset, path) in enumerate(runs.items()):
        metrics, scores, _ = run_files(path)
        ax = axes[0, col]
        shown = [m for m in SCORE_MODELS if f"{m}__deleted" in scores]
        for g, (group, label) in enumerate(groups):
            data = [scores[f"{m}__{group}"] for m in shown]
            pos = np.arange(len(shown)) + (g - 1) * width
            parts = ax.boxplot(data, positions=pos, widths=width * 0.9, showfliers=False, patch_artist=True)
            for box in parts["boxes"]:
                box.set_facecolor(f"C{g}")
                box.set_alpha(0.6)
            ax.plot([], [], color=f"C{g}", lw=6, alpha=0.6, label=label)
        ax.set_xticks(np.arange(len(shown)), [method_label(m) for m in shown], rotation=25, ha="right")
        ax.set_ylabel("predicted score")
        ax.set_title(f"{dataset}: {metrics['strategy']}, f={metrics['fraction']}")
    axes[0, 0].legend(loc="upper right")
    return fig


def plot_mia(summary: pd.DataFrame, strategy: str = "uniform", fraction: float = 0.1) -> plt.Figure:
    """Attack AUC (mean ± std over seeds) per model: deleted vs held-out / unobserved cells."""
    sel = summary[(summary["strategy"] == strategy) & np.isclose(summary["fraction"], fraction)]
    datasets = sorted(sel["dataset"].unique())
    attacks = [("mia_threshold_heldout", "threshold, vs held-out"), ("mia_logistic_heldout", "logistic, vs held-out"),
               ("mia_threshold_unobserved", "threshold, vs unobserved"),
               ("mia_logistic_unobserved", "logistic, vs unobserved")]
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.8), squeeze=False)
    for col, dataset in enumerate(datasets):
        rows = sel[sel["dataset"] == dataset].set_index("model").reindex(SCORE_MODELS).dropna(how="all")
        ax = axes[0, col]
        width = 0.8 / len(attacks)
        for a, (metric, label) in enumerate(attacks):
            x = np.arange(len(rows)) + (a - (len(attacks) - 1) / 2) * width
            ax.bar(x, rows[f"{metric}_mean"], width, yerr=rows[f"{metric}_std"].fillna(0), label=label,
                   color=f"C{a}", alpha=0.85)
        ax.axhline(0.5, color="k", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(rows)), [method_label(m) for m in rows.index], rotation=25, ha="right")
        ax.set_ylabel("attack AUC (0.5 = nothing revealed)")
        ax.set_ylim(0.0, 1.02)
        ax.set_title(f"{dataset}: {strategy}, f={fraction}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=4, fontsize=7, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout()
    return fig


def plot_speedup(summary: pd.DataFrame) -> plt.Figure:
    """Speedup over retraining under one stopping rule, in sweep equivalents (deterministic):
    vs deletion fraction (uniform) and per strategy (other runs)."""
    datasets = sorted(summary["dataset"].unique())
    fig, axes = plt.subplots(2, len(datasets), figsize=(4.6 * len(datasets), 6.4), squeeze=False)
    for col, dataset in enumerate(datasets):
        rows = summary[summary["dataset"] == dataset]
        ax = axes[0, col]
        uniform = rows[rows["strategy"] == "uniform"]
        for name in UNLEARNERS:
            r = uniform[uniform["model"] == name].sort_values("fraction")
            if r.empty:
                continue
            ax.errorbar(r["fraction"], r["speedup_sweeps_mean"], yerr=r["speedup_sweeps_std"].fillna(0), marker="o",
                        color=method_color(name), capsize=3, label=method_label(name))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xlabel("deleted fraction (uniform)")
        ax.set_ylabel("speedup over retraining (sweeps)")
        ax.set_title(dataset)
        ax = axes[1, col]
        conv = rows[rows["model"].isin(UNLEARNERS)]
        labels = sorted({(s, f) for s, f in zip(conv["strategy"], conv["fraction"])})
        width = 0.8 / len(UNLEARNERS)
        for u, name in enumerate(UNLEARNERS):
            r = conv[conv["model"] == name].set_index(["strategy", "fraction"]).reindex(labels)
            x = np.arange(len(labels)) + (u - (len(UNLEARNERS) - 1) / 2) * width
            ax.bar(x, r["speedup_sweeps_mean"], width, yerr=r["speedup_sweeps_std"].fillna(0),
                   color=method_color(name), label=method_label(name))
        ax.set_xticks(np.arange(len(labels)), [f"{s}\nf={f}" for s, f in labels], rotation=35, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_ylabel("speedup (sweeps, same stopping rule)")
    axes[0, 0].legend(fontsize=6.5, framealpha=0.7)
    axes[1, 0].legend(fontsize=6.5, framealpha=0.7)
    return fig
