"""Figure of part 'forget': seconds to forget against the number of users forgotten, and the
forgetting audit of each result next to retraining's."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from bilinrec.plotting import figure_style

#: (model, method) -> legend label and line style; retraining is dashed, DP-covered dotted,
#: the untouched model and the near-miss controls (audit only) dash-dotted.
SERIES = {
    ("als", "certified"): ("ALS: certified forget", "-o"),
    ("als", "exact"): ("ALS: Unlearn-ALS (exact sweeps)", "-s"),
    ("als", "retrain"): ("ALS: retrain from scratch", "--^"),
    ("amht_lrs", "exact"): ("AMHT-LRS: exact forget", "-o"),
    ("amht_lrs", "retrain"): ("AMHT-LRS: retrain from scratch", "--^"),
    ("dp_amht_lrs", "dp"): ("DP-AMHT-LRS: covered by (ε, δ)", ":o"),
    ("dp_amht_lrs", "exact"): ("DP-AMHT-LRS: fresh private fit", "--s"),
}

#: Rows shown in the audit panels only: the untouched model and the near-miss controls.
AUDIT_ONLY = {
    ("als", "original"): ("ALS: untouched model", "-.x"),
    ("als", "control_shrink"): ("control: row only shrunk", "-.v"),
    ("als", "control_10sweep"): ("control: 10-sweep Unlearn-ALS", "-.<"),
    ("als", "control_frozen"): ("control: frozen BM25 weights", "-.>"),
}

#: Audit panels: (column, retraining's mean column, its seed-std column or None, axis label).
AUDIT_PANELS = (
    ("own_history_auc", "retrain_own_history_auc", None, "forgotten users' own-history AUC"),
    ("mia_auc", "retrain_mia_auc", "retrain_mia_std", "deleted records' MIA AUC"),
)


def plot_forget_time(table: pd.DataFrame) -> plt.Figure:
    """Per dataset (column): seconds to forget vs users forgotten (log-log), one line per
    (model, method) of :data:`SERIES`; below, where the table has audit values, the audit
    statistics of :data:`AUDIT_PANELS` per method (hollow markers: audit failed) over
    retraining's mean (grey; shaded: +-2 seed standard deviations)."""
    datasets = list(dict.fromkeys(table["dataset"]))
    with figure_style():
        fig, axes = plt.subplots(1 + len(AUDIT_PANELS), len(datasets), figsize=(4.6 * len(datasets), 9.6),
                                 squeeze=False)
        for col, dataset in enumerate(datasets):
            panel = table[table["dataset"] == dataset]
            ax = axes[0, col]
            for (model, method), (label, style) in SERIES.items():
                line = _line(panel, model, method)
                if len(line):
                    ax.plot(line["n_forgotten"], line["seconds"].clip(lower=1e-4), style, label=label, markersize=4)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("users forgotten")
            ax.set_ylabel("seconds (wall clock)")
            ax.set_title(dataset)
            ax.legend(fontsize=7)
            for row, spec in enumerate(AUDIT_PANELS, start=1):
                _audit_panel(axes[row, col], panel, *spec)
        fig.tight_layout()
    return fig


def _line(panel: pd.DataFrame, model: str, method: str) -> pd.DataFrame:
    return panel[(panel["model"] == model) & (panel["method"] == method)].sort_values("n_forgotten")


def _audit_panel(ax, panel: pd.DataFrame, column: str, reference: str, spread: str | None, ylabel: str) -> None:
    """One audit statistic per method vs users forgotten over retraining's; off without audit values."""
    audited = panel[panel[column].notna()]
    if audited.empty:
        ax.axis("off")
        return
    band = audited[audited["method"] == "retrain"].sort_values("n_forgotten")
    ax.plot(band["n_forgotten"], band[reference], "-", color="0.5", linewidth=3, alpha=0.6,
            label="retraining: mean over seeds")
    if spread is not None:
        ax.fill_between(band["n_forgotten"], band[reference] - 2 * band[spread], band[reference] + 2 * band[spread],
                        color="0.5", alpha=0.2, linewidth=0)
    for (model, method), (label, style) in {**SERIES, **AUDIT_ONLY}.items():
        line = _line(audited, model, method)
        if not len(line):
            continue
        (drawn,) = ax.plot(line["n_forgotten"], line[column], style, label=label, markersize=5)
        failed = line[~line["audit_passed"].astype(bool)]
        ax.plot(failed["n_forgotten"], failed[column], "o", markersize=9, markerfacecolor="none",
                markeredgecolor=drawn.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("users forgotten (circled: audit failed)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
