"""Dataset overview figure and table (used by notebooks/datasets.ipynb and the datasets rule)."""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bilinrec.data.prepare import Ratings
from bilinrec.experiments.methods import method_color
from bilinrec.tables import write_table


def plot_overview(datasets: Mapping[str, Ratings]):
    """Three panels: user activity and item popularity by rank (log-log long tails), rating histograms."""
    import matplotlib.pyplot as plt

    fig, (ax_u, ax_i, ax_r) = plt.subplots(1, 3, figsize=(10.5, 3.2))
    for name, data in datasets.items():
        color = method_color(name)
        for ax, index, size in ((ax_u, data.user, data.n_users), (ax_i, data.item, data.n_items)):
            counts = np.sort(np.bincount(index, minlength=size))[::-1]
            ax.loglog(np.arange(1, size + 1), np.maximum(counts, 1), color=color, label=name)
        values, freq = np.unique(data.rating, return_counts=True)
        ax_r.plot(values, freq / freq.sum(), marker="o", color=color, label=name)
    ax_u.set(xlabel="user rank", ylabel="ratings per user", title="User activity")
    ax_i.set(xlabel="item rank", ylabel="ratings per item", title="Item popularity")
    ax_r.set(xlabel="rating", ylabel="fraction of ratings", title="Rating histogram")
    ax_r.legend(frameon=False)
    fig.tight_layout()
    return fig


def overview_table(summaries: Sequence[Mapping]) -> pd.DataFrame:
    """One row per dataset from ``summary.json`` contents."""
    rows = []
    for s in summaries:
        rows.append(
            {
                "dataset": s["dataset"],
                "ratings": s["n_ratings"],
                "users": s["n_users"],
                "items": s["n_items"],
                "density_pct": 100.0 * s["density"],
                "mean_rating": s["rating_mean"],
                "median_user_ratings": s["user_activity"]["q50"],
                "max_user_ratings": s["user_activity"]["q100"],
                "median_item_ratings": s["item_popularity"]["q50"],
                "max_item_ratings": s["item_popularity"]["q100"],
                "verified_by": s["source"].get("check") or s["source"]["kind"],
            }
        )
    return pd.DataFrame(rows)


def write_overview_table(summaries: Sequence[Mapping], csv_path: str | os.PathLike) -> None:
    """``datasets.csv`` (full precision) and ``datasets.md`` (rounded)."""
    df = overview_table(summaries)
    shown = df.copy()
    shown["density_pct"] = shown["density_pct"].map("{:.2f}".format)
    shown["mean_rating"] = shown["mean_rating"].map("{:.2f}".format)
    for col in ("median_user_ratings", "median_item_ratings", "max_user_ratings", "max_item_ratings"):
        shown[col] = shown[col].map("{:g}".format)
    write_table(df, csv_path, display=shown, formats=("csv", "md"), caption="Datasets used (prepared form).")
