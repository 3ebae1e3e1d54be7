"""Figures of the MovieLens personalization runs and of the storage measurements."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bilinrec.experiments.methods import method_color
from bilinrec.experiments.personalization.report import variant_label
from bilinrec.plotting import figure_style

_DP_STYLES = ("--", ":", "-.")
_SCHEME_COLORS = {"finetune": "finetune", "last_layer": "last_layer", "user_embedding": "user_embedding"}


def _legend_right(fig: plt.Figure, handles, labels, width: float = 2.6) -> None:
    """Widen ``fig`` by ``width`` inches and put the legend in that margin (kept inside the saved figure)."""
    w, h = fig.get_size_inches()
    fig.set_size_inches(w + width, h)
    fig.tight_layout(rect=(0, 0, w / (w + width), 1))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(w / (w + width), 0.5), frameon=False)


def _variants(df: pd.DataFrame) -> list[tuple[str, float]]:
    pairs = df[["method", "epsilon"]].drop_duplicates()
    return [(m, e) for m, e in pairs.itertuples(index=False)]


def _line_style(method: str, epsilon: float, dp_eps: list[float]) -> dict:
    style = {"color": method_color(method), "marker": "o", "linestyle": "-"}
    if not pd.isna(epsilon):
        style["linestyle"] = _DP_STYLES[dp_eps.index(epsilon) % len(_DP_STYLES)]
        style["marker"] = "s"
    return style


def plot_rmse_vs_m(summary: pd.DataFrame, train_sizes: Sequence[str], metric: str = "rmse") -> plt.Figure:
    """Test ``metric`` (mean ± std over seeds) against training ratings per user ``m``:
    a line per method, a panel per (dataset, d)."""
    datasets = list(dict.fromkeys(summary["dataset"]))
    dims = sorted(summary["d"].unique())
    sizes = [str(m) for m in train_sizes]
    dp_eps = sorted(summary["epsilon"].dropna().unique())
    with figure_style():
        fig, axes = plt.subplots(len(datasets), len(dims), figsize=(4.2 * len(dims), 3.4 * len(datasets)),
                                 squeeze=False, sharex=True)
        for i, dataset in enumerate(datasets):
            for j, d in enumerate(dims):
                ax = axes[i, j]
                panel = summary[(summary["dataset"] == dataset) & (summary["d"] == d)]
                for method, epsilon in _variants(panel):
                    rows = panel[(panel["method"] == method) & (panel["epsilon"].fillna(-1) == (-1 if pd.isna(epsilon) else epsilon))]
                    pos = rows["m"].astype(str).map({m: k for k, m in enumerate(sizes)})
                    order = np.argsort(pos.to_numpy())
                    ax.errorbar(pos.to_numpy()[order], rows[f"{metric}_mean"].to_numpy()[order],
                                yerr=rows[f"{metric}_std"].fillna(0).to_numpy()[order], capsize=2,
                                label=variant_label(method, epsilon), **_line_style(method, epsilon, dp_eps))
                ax.set_xticks(range(len(sizes)), sizes)
                ax.set_title(f"{dataset}, d = {d}")
                if i == len(datasets) - 1:
                    ax.set_xlabel("training ratings per user m")
                if j == 0:
                    ax.set_ylabel("test RMSE" if metric == "rmse" else metric)
        _legend_right(fig, *axes[0, 0].get_legend_handles_labels())
    return fig
