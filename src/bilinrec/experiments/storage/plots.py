"""Figures of part 'storage': totals against the number of users, accuracy against bytes per user."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from bilinrec.experiments.methods import method_color, method_label, variant_label, variant_style
from bilinrec.plotting import figure_style, legend_right


def plot_storage_scaling(storage: pd.DataFrame) -> plt.Figure:
    """Total bytes against the number of users (log-log), a panel per model; hollow markers
    and dashed segments are extrapolated, filled markers measured."""
    models = list(dict.fromkeys(storage["model"]))
    cols = min(3, len(models))
    rows = -(-len(models) // cols)
    with figure_style():
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
        lrs_variants = list(dict.fromkeys(storage.loc[storage["scheme"] == "amht_lrs", "variant"]))
        for ax, model in zip(axes.flat, models):
            panel = storage[storage["model"] == model]
            for variant, group in panel.groupby("variant", sort=False):
                group = group.sort_values("n_users")
                scheme = group["scheme"].iloc[0]
                color = method_color(scheme)
                style = "-" if scheme != "amht_lrs" else ["-", "--", ":"][lrs_variants.index(variant) % 3]
                label = method_label(scheme) if scheme != "amht_lrs" else variant
                ax.plot(group["n_users"], group["total_bytes"], style, color=color, label=label)
                measured = group["measured"].to_numpy(bool)
                ax.scatter(group["n_users"][measured], group["total_bytes"][measured], color=color, s=14, zorder=3)
                ax.scatter(group["n_users"][~measured], group["total_bytes"][~measured], facecolors="none",
                           edgecolors=color, s=14, zorder=3)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{model} (P = {panel['parameters'].iloc[0]:,})")
            ax.set_xlabel("users N")
            ax.set_ylabel("total storage (bytes)")
        for ax in list(axes.flat)[len(models):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        handles.append(plt.Line2D([], [], marker="o", color="k", linestyle="none", markersize=4))
        labels.append("measured")
        handles.append(plt.Line2D([], [], marker="o", markerfacecolor="none", color="k", linestyle="none", markersize=4))
        labels.append("extrapolated")
        legend_right(fig, handles, labels)
    return fig


def plot_storage_vs_rmse(summary: pd.DataFrame, m: str, metric: str = "rmse") -> plt.Figure:
    """Test ``metric`` against measured bytes per user at training size ``m``, a panel per
    (dataset, d). Methods that store nothing per user are drawn as horizontal lines."""
    sel = summary[summary["m"].astype(str) == str(m)]
    if "features" in sel.columns:  # storage is the same for every feature set of one d: the embedding runs
        sel = sel[sel["features"] == "embedding"]
    if sel.empty:
        raise ValueError(f"no results for m={m!r}")
    panels = list(dict.fromkeys(zip(sel["dataset"], sel["d"])))
    dp_eps = sorted(sel["epsilon"].dropna().unique())
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    with figure_style():
        fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.4 * rows), squeeze=False)
        for ax, (dataset, d) in zip(axes.flat, panels):
            panel = sel[(sel["dataset"] == dataset) & (sel["d"] == d)]
            for row in panel.itertuples(index=False):
                label = variant_label(row.method, row.epsilon)
                style = variant_style(row.method, row.epsilon, dp_eps)
                y, err = getattr(row, f"{metric}_mean"), getattr(row, f"{metric}_std")
                if row.bytes_per_user_mean <= 0:
                    ax.axhline(y, color=style["color"], linestyle="--", linewidth=1, label=label)
                else:
                    ax.errorbar(row.bytes_per_user_mean, y, yerr=0 if pd.isna(err) else err, capsize=2,
                                color=style["color"], marker=style["marker"], linestyle="none", label=label)
            ax.set_xscale("log")
            ax.set_title(f"{dataset}, d = {d}, m = {m}")
            ax.set_xlabel("serialized bytes per user")
            ax.set_ylabel("test RMSE" if metric == "rmse" else metric)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        legend_right(fig, *axes.flat[0].get_legend_handles_labels())
    return fig


def plot_storage_trained(table: pd.DataFrame, min_ratio: float | None = None) -> plt.Figure:
    """Measured bytes-per-user ratio full fine-tuning ÷ scheme of trained models against the model size
    (log-log), uncompressed (solid) and deflate-compressed (dotted); ``min_ratio`` as a dashed line."""
    labels = {"amht_lrs": method_label("amht_lrs"), "amht_lrs_dense_b": "dense per-user part (near miss)",
              "oracle": "oracle fit, AMHT-LRS format (planted)"}
    colors = {"amht_lrs": method_color("amht_lrs"), "amht_lrs_dense_b": "#999999", "oracle": method_color("oracle")}
    with figure_style():
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        for scheme, label in labels.items():
            rows = table[table["scheme"] == scheme].sort_values("dim")
            if rows.empty:
                continue
            color = colors[scheme]
            ax.plot(rows["dim"], rows["ratio"], "o-", color=color, label=label)
            ax.plot(rows["dim"], rows["ratio_compressed"], "s:", color=color, label=f"{label}, deflate", ms=4)
        ax.axhline(1.0, color="k", lw=0.8)
        if min_ratio is not None:
            ax.axhline(min_ratio, color="k", lw=0.8, ls="--", label=f"A4 threshold ({min_ratio:g}×)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model size P = d (parameters per user)")
        ax.set_ylabel("bytes per user: full fine-tuning ÷ scheme")
        ax.set_title("Storage of trained models (serialized .npz)", fontsize=9)
        legend_right(fig, *ax.get_legend_handles_labels())
    return fig
