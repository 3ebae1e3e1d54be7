"""Figures of part 'dp': utility against epsilon and against the number of users."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from bilinrec.experiments.dp.steps import (
    COMPARED_METHODS,
    DP_METHODS,
    METRIC_LABELS,
    METRICS,
    parse_epsilon,
)
from bilinrec.experiments.methods import method_color, method_label
from bilinrec.models.lrs import NON_PRIVATE
from bilinrec.tables import mean_std_by


def release_note(records: pd.DataFrame) -> str:
    """The release kind(s) of the private rows, for a figure's title (e.g. "simulation (seeded
    noise; not a private release)"); empty when the records do not say."""
    if "release" not in records:
        return ""
    kinds = sorted({r for r in records["release"].dropna() if r not in (NON_PRIVATE, "nothing released")})
    return "DP rows: " + "; ".join(kinds) if kinds else ""


def plot_utility_vs_epsilon(records: pd.DataFrame, metrics: Sequence[str] = METRICS):
    """Rows: metrics; columns: numbers of users; lines: DP methods vs epsilon (mean ± std over
    seeds), horizontal lines for local-only and the non-private reference. The point at the
    right edge ("∞") is each DP method without privacy."""
    import matplotlib.pyplot as plt

    sizes = sorted(records["n_users"].unique())
    finite = sorted(e for e in records["epsilon"].unique() if 0 < e < math.inf)
    if not finite:
        raise ValueError("records hold no finite epsilon to plot")
    x_inf = finite[-1] * 4  # where the non-private point of each DP method is drawn
    fig, axes = plt.subplots(len(metrics), len(sizes), figsize=(3.6 * len(sizes), 2.8 * len(metrics)),
                             sharex=True, squeeze=False)
    for j, t in enumerate(sizes):
        at_t = records[records["n_users"] == t]
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            for method in COMPARED_METHODS:
                rows = at_t[at_t["method"] == method].dropna(subset=[metric])
                if rows.empty:
                    continue
                color, label = method_color(method), method_label(method)
                if method in DP_METHODS:
                    stats = mean_std_by(rows.assign(x=rows["epsilon"].replace(math.inf, x_inf)), "x", metric)
                    ax.errorbar(stats["x"], stats["mean"], yerr=stats["std"].fillna(0), marker="o", ms=3,
                                capsize=2, color=color, label=label)
                else:
                    mean, std = rows[metric].mean(), rows[metric].std()
                    ax.axhline(mean, color=color, ls="--", lw=1.2, label=label)
                    if np.isfinite(std):
                        ax.axhspan(mean - std, mean + std, color=color, alpha=0.15, lw=0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            if i == 0:
                ax.set_title(f"t = {t:,} users")
            if j == 0:
                ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize="small")
            if i == len(metrics) - 1:
                ax.set_xticks(finite + [x_inf])
                ax.set_xticklabels([f"{e:g}" for e in finite] + ["∞"])
                ax.minorticks_off()
                ax.set_xlabel(r"privacy budget $\varepsilon$")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    note = release_note(records)
    if note:
        fig.suptitle(note, fontsize="small")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97 if note else 1))
    return fig


def plot_utility_vs_users(records: pd.DataFrame, epsilon: float, metrics: Sequence[str] = METRICS):
    """One panel per metric: error vs number of users at a fixed ``epsilon`` (DP methods),
    with local-only and the non-private reference for comparison."""
    import matplotlib.pyplot as plt

    epsilon = parse_epsilon(epsilon)
    available = set(records.loc[records["method"].isin(DP_METHODS), "epsilon"])
    if epsilon not in available:
        raise ValueError(f"epsilon={epsilon:g} is not in the records (have {sorted(available)})")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.8 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for method in COMPARED_METHODS:
            rows = records[records["method"] == method]
            if method in DP_METHODS:
                rows = rows[rows["epsilon"] == epsilon]
            rows = rows.dropna(subset=[metric])
            if rows.empty:
                continue
            stats = mean_std_by(rows, "n_users", metric)
            ax.errorbar(stats["n_users"], stats["mean"], yerr=stats["std"].fillna(0), marker="o", ms=3,
                        capsize=2, color=method_color(method), label=method_label(method),
                        ls="-" if method in DP_METHODS else "--")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of users t")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize="small")
    note = release_note(records)
    axes[0][0].set_title(rf"DP methods at $\varepsilon$ = {epsilon:g}" + (f" — {note}" if note else ""),
                         loc="left", fontsize="small")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, -0.04))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
