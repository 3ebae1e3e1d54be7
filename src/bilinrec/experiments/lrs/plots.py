"""Figures of the synthetic AMHT-LRS experiments (called by notebooks/lrs.ipynb)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bilinrec.experiments.methods import METHODS, method_color, method_label
from bilinrec.tables import mean_std_by

__all__ = ["plot_convergence", "plot_error_vs_m", "plot_m50", "plot_noise", "plot_phase_transition"]


def _methods(frame: pd.DataFrame) -> list[str]:
    """Methods present in ``frame`` in the shared legend order of :data:`bilinrec.experiments.methods.METHODS`."""
    order = list(METHODS)
    return sorted(frame["method"].unique(), key=lambda m: order.index(m) if m in order else len(order))


def _line_with_band(ax, stats: pd.DataFrame, x: str, method: str, marker: str = "o") -> None:
    color = method_color(method)
    ax.plot(stats[x], stats["mean"], marker=marker, ms=3, color=color, label=method_label(method))
    lower = np.maximum(stats["mean"] - stats["std"].fillna(0), stats["mean"] * 1e-3)
    ax.fill_between(stats[x], lower, stats["mean"] + stats["std"].fillna(0), color=color, alpha=0.15, lw=0)


def plot_error_vs_m(records: pd.DataFrame) -> plt.Figure:
    """Normalised error versus samples per user, one panel per noise level (log scale)."""
    data = records[(records["experiment"] == "error_vs_m") & (records["status"] == "ok")]
    levels = sorted(data["noise"].unique())
    fig, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.4), sharey=True, squeeze=False)
    for ax, noise in zip(axes[0], levels):
        for method in _methods(data):
            part = data[(data["noise"] == noise) & (data["method"] == method)]
            _line_with_band(ax, mean_std_by(part, "samples", "error"), "samples", method)
        ax.set_yscale("log")
        ax.set_xlabel("samples per user $m$")
        ax.set_title(f"noise $\\sigma$ = {noise:g}")
    axes[0][0].set_ylabel(r"$\|\hat\Theta-\Theta^*\|_F / \|\Theta^*\|_F$")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _success_grid(data: pd.DataFrame, row: str) -> pd.DataFrame:
    return data.groupby([row, "samples"])["success"].mean().unstack("samples").sort_index()


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges halfway between sorted grid values (end cells mirrored)."""
    mid = (values[1:] + values[:-1]) / 2 if len(values) > 1 else np.array([])
    first = values[0] - (mid[0] - values[0] if len(mid) else 0.5)
    last = values[-1] + (values[-1] - mid[-1] if len(mid) else 0.5)
    return np.concatenate([[first], mid, [last]])


def plot_phase_transition(records: pd.DataFrame, c: float, rank: int, sparsity: int) -> plt.Figure:
    """Success rate over (m, t) and (m, k) with the fitted reference line ``m = c (r + k)``."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    for ax, experiment, row, label in ((axes[0], "phase_m_t", "n_users", "users $t$"),
                                       (axes[1], "phase_m_k", "sparsity", "sparsity $k$")):
        data = records[(records["experiment"] == experiment) & (records["status"] == "ok")]
        grid = _success_grid(data.assign(success=data["success"].astype(float)), row)
        m_values, rows = grid.columns.to_numpy(float), grid.index.to_numpy(float)
        # users are spread geometrically: cells on a log axis; sparsity on a linear one
        y_cells = np.exp(_edges(np.log(rows))) if row == "n_users" else _edges(rows)
        image = ax.pcolormesh(_edges(m_values), y_cells, grid.to_numpy(float), cmap="Greys_r",
                              vmin=0, vmax=1, shading="flat")
        if row == "n_users":
            ax.set_yscale("log")
        ax.set_yticks(rows, [f"{v:g}" for v in rows])
        ax.minorticks_off()
        ax.set_xlabel("samples per user $m$")
        ax.set_ylabel(label)
        if np.isfinite(c):
            y_line = np.linspace(y_cells[0], y_cells[-1], 50)
            ks = y_line if row == "sparsity" else np.full_like(y_line, float(sparsity))
            ax.plot(c * (rank + ks), y_line, color="#D55E00", lw=1.5, label=f"$m = {c:.2f}\\,(r+k)$")
            ax.set_xlim(_edges(m_values)[0], _edges(m_values)[-1])
            ax.legend(fontsize=7, loc="upper left")
    fig.colorbar(image, ax=axes, label="success rate", shrink=0.9)
    return fig


def plot_convergence(convergence: pd.DataFrame) -> plt.Figure:
    """Parameter error after each round (log scale), one panel per samples-per-user value: every
    method on the configured problem (solid) and runs on the problem without its sparse parts
    (k = 0, claim A2's planted control; dashed)."""
    levels = sorted(convergence["samples"].unique())
    configured = convergence["sparsity"].max()
    fig, axes = plt.subplots(1, len(levels), figsize=(3.6 * len(levels), 3.2), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], levels):
        for method in _methods(convergence):
            for sparsity, part in convergence[(convergence["samples"] == m)
                                              & (convergence["method"] == method)].groupby("sparsity"):
                planted = sparsity != configured
                label = method_label(method) + (f", no sparse parts (k = {sparsity})" if planted else "")
                for i, (_, run) in enumerate(part.groupby("seed")):
                    ax.plot(run["round"] + 1, run["error"], color=method_color(method), lw=1, alpha=0.8,
                            ls="--" if planted else "-", label=label if i == 0 else None)
        ax.set_yscale("log")
        ax.set_xlabel("round")
        ax.set_title(f"$m$ = {m}")
    axes[0][0].set_ylabel("normalised parameter error")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_noise(records: pd.DataFrame) -> plt.Figure:
    """Error versus noise level, one panel per support kind (random / adversarial)."""
    data = records[(records["experiment"] == "noise") & (records["status"] == "ok")]
    kinds = list(dict.fromkeys(data["support"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.4), sharey=True, squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for method in _methods(data):
            part = data[(data["support"] == kind) & (data["method"] == method)]
            stats = mean_std_by(part, "noise", "error")
            stats = stats[stats["noise"] > 0]  # log axis; the noiseless error is in the table
            _line_with_band(ax, stats, "noise", method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"noise $\sigma$")
        ax.set_title(f"{kind} supports")
    axes[0][0].set_ylabel("normalised parameter error")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_m50(table: pd.DataFrame, max_ratio: float | None = None) -> plt.Figure:
    """m₅₀ / (r + k + d r / t) of every method per setting (the lrs_m50 table); a method not
    recovering a setting up to ``max_samples`` is drawn as a hollow marker at that bound.
    ``max_ratio``: claim A1's threshold, drawn as a dashed line."""
    settings = table[["setting", "dim", "rank", "sparsity", "n_users"]].drop_duplicates().sort_values("setting")
    labels = [f"d={d} r={r} k={k}\nt={t}" for d, r, k, t in
              settings[["dim", "rank", "sparsity", "n_users"]].itertuples(index=False)]
    position = {s: i for i, s in enumerate(settings["setting"])}
    methods = _methods(table)
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(labels)), 3.6))
    for j, name in enumerate(methods):
        rows = table[table["method"] == name]
        x = rows["setting"].map(position).to_numpy(float) + (j - (len(methods) - 1) / 2) * width
        ratio = rows["over_dof"].to_numpy(float)
        bound = rows["max_samples"].to_numpy(float) / rows["floor_dof"].to_numpy(float)
        reached = np.isfinite(ratio)
        color = method_color(name)
        label = "Per-user least squares (α = 0)" if name == "local" else method_label(name)
        ax.scatter(x[reached], ratio[reached], color=color, marker="o", s=22, label=label, zorder=3)
        ax.scatter(x[~reached], bound[~reached], facecolors="none", edgecolors=color, marker="^", s=26, zorder=3)
    ax.axhline(1.0, color="k", lw=0.8)
    if max_ratio is not None:
        ax.axhline(max_ratio, color="k", lw=0.8, ls="--", label=f"A1 threshold ({max_ratio:g})")
    ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("m₅₀ / (r + k + d·r/t)")
    ax.set_title("Samples per user to recover, over the information floor\n(hollow ▲: not recovered up to the "
                 "largest m searched)", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig
