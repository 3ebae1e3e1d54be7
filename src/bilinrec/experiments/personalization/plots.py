"""Figures of the MovieLens personalization runs."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bilinrec.experiments.methods import method_color, variant_label, variant_style
from bilinrec.plotting import figure_style, legend_right

def _variants(df: pd.DataFrame) -> list[tuple[str, float]]:
    pairs = df[["method", "epsilon"]].drop_duplicates()
    return [(m, e) for m, e in pairs.itertuples(index=False)]


def _panels(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(dataset, feature set) rows of a figure, in table order."""
    features = df["features"] if "features" in df.columns else pd.Series("", index=df.index)
    return list(dict.fromkeys(zip(df["dataset"], features)))


def _panel(df: pd.DataFrame, dataset: str, features: str, d) -> pd.DataFrame:
    sel = (df["dataset"] == dataset) & (df["d"] == d)
    if "features" in df.columns:
        sel &= df["features"] == features
    return df[sel]


def plot_rmse_vs_m(summary: pd.DataFrame, train_sizes: Sequence[str], metric: str = "rmse") -> plt.Figure:
    """Test ``metric`` (mean ± std over seeds) against training ratings per user ``m``:
    a line per method, a panel per (dataset, feature set) row and d column."""
    rows = _panels(summary)
    dims = sorted(summary["d"].unique())
    sizes = [str(m) for m in train_sizes]
    dp_eps = sorted(summary["epsilon"].dropna().unique())
    with figure_style():
        fig, axes = plt.subplots(len(rows), len(dims), figsize=(4.2 * len(dims), 3.4 * len(rows)),
                                 squeeze=False, sharex=True)
        for i, (dataset, features) in enumerate(rows):
            for j, d in enumerate(dims):
                ax = axes[i, j]
                panel = _panel(summary, dataset, features, d)
                for method, epsilon in _variants(panel):
                    rows_m = panel[(panel["method"] == method)
                                   & (panel["epsilon"].fillna(-1) == (-1 if pd.isna(epsilon) else epsilon))]
                    pos = rows_m["m"].astype(str).map({m: k for k, m in enumerate(sizes)})
                    order = np.argsort(pos.to_numpy())
                    ax.errorbar(pos.to_numpy()[order], rows_m[f"{metric}_mean"].to_numpy()[order],
                                yerr=rows_m[f"{metric}_std"].fillna(0).to_numpy()[order], capsize=2,
                                label=variant_label(method, epsilon), **variant_style(method, epsilon, dp_eps))
                ax.set_xticks(range(len(sizes)), sizes)
                ax.set_title(f"{dataset}, {features + ', ' if features else ''}d = {d}")
                if i == len(rows) - 1:
                    ax.set_xlabel("training ratings per user m")
                if j == 0:
                    ax.set_ylabel("test RMSE" if metric == "rmse" else metric)
        handles = {}
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        legend_right(fig, list(handles.values()), list(handles))
    return fig


_TESTED_STYLE = {"amht_lrs": ("o", "-"), "global": ("x", ":"), "amht_lrs_swapped": ("s", "--")}


def plot_paired(paired: pd.DataFrame, train_sizes: Sequence[str]) -> plt.Figure:
    """Per-user test-RMSE difference (tested − comparator) with Holm-adjusted intervals against m:
    a colour per comparator, a marker per tested method (AMHT-LRS and the two negative controls);
    below the zero line favours the tested method."""
    rows = _panels(paired)
    dims = sorted(paired["d"].unique())
    sizes = [str(m) for m in train_sizes]
    comparators = list(dict.fromkeys(paired["comparator"]))
    width = 0.8 / max(1, len(comparators) * len(_TESTED_STYLE))
    with figure_style():
        fig, axes = plt.subplots(len(rows), len(dims), figsize=(4.6 * len(dims), 3.2 * len(rows)),
                                 squeeze=False, sharex=True)
        for i, (dataset, features) in enumerate(rows):
            for j, d in enumerate(dims):
                ax = axes[i, j]
                panel = _panel(paired, dataset, features, d)
                slot = 0
                for tested, (marker, line) in _TESTED_STYLE.items():
                    for comparator in comparators:
                        sel = panel[(panel["tested"] == tested) & (panel["comparator"] == comparator)]
                        if sel.empty:
                            slot += 1
                            continue
                        pos = sel["m"].astype(str).map({m: k for k, m in enumerate(sizes)}).to_numpy()
                        x = pos + (slot - len(comparators) * len(_TESTED_STYLE) / 2) * width
                        y = sel["mean_delta"].to_numpy()
                        err = np.vstack([y - sel["ci_low_holm"].to_numpy(), sel["ci_high_holm"].to_numpy() - y])
                        color = method_color(comparator) if comparator != "best_baseline" else "black"
                        label = f"{'AMHT-LRS' if tested == 'amht_lrs' else 'control: ' + tested} vs {comparator}"
                        ax.errorbar(x, y, yerr=err, fmt=marker, color=color, capsize=2, markersize=4,
                                    alpha=1.0 if tested == "amht_lrs" else 0.45, label=label)
                        slot += 1
                ax.axhline(0.0, color="grey", linewidth=0.8)
                ax.set_xticks(range(len(sizes)), sizes)
                ax.set_title(f"{dataset}, {features + ', ' if features else ''}d = {d}")
                if i == len(rows) - 1:
                    ax.set_xlabel("training ratings per user m")
                if j == 0:
                    ax.set_ylabel("Δ per-user RMSE (Holm CI)")
        handles = {}
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        legend_right(fig, list(handles.values()), list(handles), width=3.4)
    return fig
