"""Figure of part 'forget': seconds to forget against the number of users forgotten."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from bilinrec.plotting import figure_style

#: (model, method) -> legend label and line style; retraining is dashed, DP-covered dotted.
SERIES = {
    ("als", "certified"): ("ALS: certified forget", "-o"),
    ("als", "exact"): ("ALS: Unlearn-ALS (exact sweeps)", "-s"),
    ("als", "retrain"): ("ALS: retrain from scratch", "--^"),
    ("amht_lrs", "exact"): ("AMHT-LRS: exact forget", "-o"),
    ("amht_lrs", "retrain"): ("AMHT-LRS: retrain from scratch", "--^"),
    ("dp_amht_lrs", "dp"): ("DP-AMHT-LRS: covered by (ε, δ)", ":o"),
    ("dp_amht_lrs", "exact"): ("DP-AMHT-LRS: fresh private fit", "--s"),
}


def plot_forget_time(table: pd.DataFrame) -> plt.Figure:
    """Seconds to forget vs users forgotten (log-log), a panel per dataset; one line per
    (model, method) of :data:`SERIES`, retraining baselines dashed."""
    datasets = list(dict.fromkeys(table["dataset"]))
    with figure_style():
        fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.6), squeeze=False)
        for ax, dataset in zip(axes.flat, datasets):
            panel = table[table["dataset"] == dataset]
            for (model, method), (label, style) in SERIES.items():
                line = panel[(panel["model"] == model) & (panel["method"] == method)].sort_values("n_forgotten")
                if len(line):
                    ax.plot(line["n_forgotten"], line["seconds"].clip(lower=1e-4), style, label=label, markersize=4)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("users forgotten")
            ax.set_ylabel("seconds (wall clock)")
            ax.set_title(dataset)
            ax.legend(fontsize=7)
        fig.tight_layout()
    return fig
