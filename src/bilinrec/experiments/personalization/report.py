"""Tables across seeds: metrics per (dataset, d, m, method), activity buckets, paired comparison."""

from __future__ import annotations

import json
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

from bilinrec.experiments.methods import method_label
from bilinrec.experiments.personalization.evaluation import paired_difference
from bilinrec.experiments.personalization.methods import METHODS
from bilinrec.tables import display_table, summarize

#: Methods the paired comparison takes its "best baseline" from (not AMHT-LRS, not DP).
BASELINES = ("user_embedding", "global", "local", "finetune", "altmin", "fedrep", "sparse_only")
METRICS = ("rmse", "rmse_user", "mae")
KEYS = ("dataset", "d", "m", "method", "epsilon")


def variant_label(method: str, epsilon: float | None) -> str:
    """Display name of a method, with its privacy budget for DP variants (fit in simulation mode:
    seeded noise, hyper-parameters tuned non-privately, so not a private release; docs/privacy.md)."""
    label = method_label(method)
    return label if epsilon is None or pd.isna(epsilon) else f"{label} (ε={epsilon:g}, simulation)"


def order_rows(df: pd.DataFrame, train_sizes: Sequence[str]) -> pd.DataFrame:
    """Sort by dataset, d, training size (config order) and method (canonical order)."""
    m_rank = {str(m): i for i, m in enumerate(train_sizes)}
    method_rank = {m: i for i, m in enumerate(METHODS)}
    key = pd.DataFrame({
        "dataset": df["dataset"], "d": df["d"],
        "m": df["m"].astype(str).map(m_rank).fillna(len(m_rank)),
        "method": df["method"].map(method_rank).fillna(len(method_rank)),
        "epsilon": df["epsilon"].fillna(np.inf),
    })
    return df.loc[key.sort_values(list(key.columns), kind="stable").index].reset_index(drop=True)


def _chosen(params: pd.Series) -> str:
    """The most frequent hyper-parameter setting across seeds, e.g. ``rank=2, sparsity=1 (4/5)``."""
    counts = Counter(params)
    value, count = counts.most_common(1)[0]
    setting = ", ".join(f"{k}={v}" for k, v in json.loads(value).items()
                        if k not in ("delta", "samples_per_user")) or "-"
    return f"{setting} ({count}/{len(params)})"


def summary_table(metrics: pd.DataFrame, train_sizes: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean/std over seeds of every metric (full precision) and its display form."""
    df = metrics.copy()
    df["epsilon"] = df["epsilon"].astype(float)
    summary = summarize(df, KEYS, METRICS + ("bytes_per_user", "n_users", "n_excluded", "fit_seconds"))
    chosen = df.groupby(list(KEYS), dropna=False, sort=True)["params"].agg(_chosen).reset_index(drop=True)
    summary["chosen"] = chosen.to_numpy()
    summary = order_rows(summary, train_sizes)
    shown = display_table(summary, KEYS, METRICS)
    shown.insert(3, "method_label", [variant_label(m, e) for m, e in zip(summary["method"], summary["epsilon"])])
    shown = shown.drop(columns=["method", "epsilon"]).rename(columns={"method_label": "method"})
    shown["users"] = summary["n_users_mean"].round().astype(int).to_numpy()
    shown["excluded"] = summary["n_excluded_mean"].round().astype(int).to_numpy()
    shown["bytes/user"] = summary["bytes_per_user_mean"].round(1).to_numpy()
    shown["chosen (seeds)"] = summary["chosen"].to_numpy()
    return summary, shown


def bucket_table(buckets: pd.DataFrame, train_sizes: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean/std over seeds of the metrics within each user-activity bucket."""
    df = buckets.copy()
    df["epsilon"] = df["epsilon"].astype(float)
    keys = list(KEYS) + ["bucket"]
    summary = summarize(df, keys, METRICS + ("n_users",))
    summary = order_rows(summary, train_sizes)
    shown = display_table(summary, keys, METRICS)
    shown["method"] = [variant_label(m, e) for m, e in zip(summary["method"], summary["epsilon"])]
    shown = shown.drop(columns=["epsilon"])
    shown["users"] = summary["n_users_mean"].round().astype(int).to_numpy()
    return summary, shown


def paired_table(
    per_user: pd.DataFrame,
    summary: pd.DataFrame,
    n_boot: int,
    rng: np.random.Generator,
    level: float,
    train_sizes: Sequence[str],
) -> pd.DataFrame:
    """AMHT-LRS against the best baseline (lowest mean user-averaged RMSE) per dataset, d and m.

    The per-user statistic is the difference of test RMSEs (AMHT-LRS minus baseline) of the
    same user under the same seed; negative favours AMHT-LRS.
    """
    rows = []
    per_user = per_user[per_user["n_test"] > 0].assign(rmse_u=lambda df: np.sqrt(df["sse"] / df["n_test"]))
    for (dataset, d, m), group in summary.groupby(["dataset", "d", "m"], sort=False):
        base = group[group["method"].isin(BASELINES)]
        if base.empty or "amht_lrs" not in set(group["method"]):
            continue
        best = base.loc[base["rmse_user_mean"].idxmin(), "method"]
        sel = per_user[(per_user["dataset"] == dataset) & (per_user["d"] == d) & (per_user["m"].astype(str) == str(m))]
        pivot = sel[sel["method"].isin(["amht_lrs", best])].pivot_table(
            index=["seed", "user"], columns="method", values="rmse_u"
        ).dropna()
        diff = pd.DataFrame({"user": pivot.index.get_level_values("user"),
                             "delta": (pivot["amht_lrs"] - pivot[best]).to_numpy()})
        stats = paired_difference(diff, n_boot, rng, level)
        rows.append({"dataset": dataset, "d": d, "m": str(m), "baseline": best,
                     "baseline_label": method_label(best), **stats})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["method"], table["epsilon"] = "amht_lrs", np.nan
    return order_rows(table, train_sizes).drop(columns=["method", "epsilon"])


def paired_display(paired: pd.DataFrame, level: float) -> pd.DataFrame:
    """Paired comparison as strings: mean difference and its interval."""
    pct = f"{100 * level:g}% CI"
    return pd.DataFrame({
        "dataset": paired["dataset"], "d": paired["d"], "m": paired["m"],
        "best baseline": paired["baseline_label"],
        "Δ RMSE (AMHT-LRS − baseline)": paired["mean_delta"].map(lambda v: f"{v:+.4f}"),
        pct: [f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in zip(paired["ci_low"], paired["ci_high"])],
        "users better": paired["frac_users_better"].map(lambda v: f"{100 * v:.0f}%"),
        "distinct users (all seeds)": paired["n_users"],
    })
