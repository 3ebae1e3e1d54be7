"""Tables across seeds: metrics per (dataset, d, m, method), activity buckets, paired comparison."""

from __future__ import annotations

import json
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd

from bilinrec.experiments.methods import method_label, variant_label
from bilinrec.experiments.personalization.evaluation import holm, paired_difference
from bilinrec.experiments.personalization.methods import COMPARED_METHODS
from bilinrec.tables import display_table, summarize

#: Methods the paired comparison takes its "best baseline" from (not AMHT-LRS, not DP).
BASELINES = ("user_embedding", "global", "local", "finetune", "altmin", "fedrep", "sparse_only")
METRICS = ("rmse", "rmse_user", "mae")
#: ``release`` says what a row's fit released: non-private, or the DP mode (a seeded simulation here).
KEYS = ("dataset", "features", "d", "m", "method", "epsilon", "release")


def order_rows(df: pd.DataFrame, train_sizes: Sequence[str]) -> pd.DataFrame:
    """Sort by dataset, feature set, d, training size (config order) and method (canonical order)."""
    m_rank = {str(m): i for i, m in enumerate(train_sizes)}
    method_rank = {m: i for i, m in enumerate(COMPARED_METHODS)}
    key = pd.DataFrame({
        "dataset": df["dataset"], "features": df["features"] if "features" in df.columns else "", "d": df["d"],
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
    summary = summarize(df, KEYS, METRICS + ("val_rmse", "bytes_per_user", "n_users", "n_excluded", "fit_seconds", "n_trials"))
    chosen = df.groupby(list(KEYS), dropna=False, sort=True)["params"].agg(_chosen).reset_index(drop=True)
    summary["chosen"] = chosen.to_numpy()
    summary = order_rows(summary, train_sizes)
    shown = display_table(summary, KEYS, METRICS)
    shown.insert(4, "method_label", [variant_label(m, e) for m, e in zip(summary["method"], summary["epsilon"])])
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


#: The pre-registered comparisons of claim A5: AMHT-LRS against its own k = 0 version (AltMin),
#: full fine-tuning and the ALS fold-in; plus the best baseline chosen on VALIDATION RMSE.
COMPARATORS = ("altmin", "finetune", "user_embedding")
BEST = "best_baseline"
#: What is compared with the comparators: the method under test and two negative controls that
#: must not win: the global (non-personalized) model, and AMHT-LRS against itself with the two
#: labels swapped at random per user (the sign of each user's difference flipped by a coin).
TESTED = ("amht_lrs", "global", "amht_lrs_swapped")


def group_keys(df: pd.DataFrame) -> list[str]:
    """The keys of one comparison cell: dataset, feature set (if any), d and m."""
    return [k for k in ("dataset", "features", "d", "m") if k in df.columns]


def best_baseline(group: pd.DataFrame) -> str:
    """The baseline with the lowest mean VALIDATION RMSE in one (dataset, features, d, m) cell.

    Test errors never enter the choice (a referee's requirement: selecting on test RMSE biases the
    comparison towards whichever baseline happened to do well on the test ratings).
    """
    base = group[group["method"].isin(BASELINES)]
    if base.empty:
        raise ValueError("no baseline in this cell")
    return str(base.loc[base["val_rmse_mean"].idxmin(), "method"])


def paired_table(
    per_user: pd.DataFrame,
    summary: pd.DataFrame,
    n_boot: int,
    rng: np.random.Generator,
    level: float,
    train_sizes: Sequence[str],
) -> pd.DataFrame:
    """Pre-registered paired comparisons with Holm-corrected user-clustered bootstrap intervals.

    For every (dataset, features, d, m) cell, AMHT-LRS (and each negative control of :data:`TESTED`)
    is compared with AltMin, full fine-tuning, the ALS fold-in and the best baseline chosen on
    validation RMSE. The per-user statistic is the difference of test RMSEs (tested minus
    comparator) of the same user under the same seed; negative favours the tested method. Users are
    resampled with all their seeds. The Holm family is every comparison of one tested method on one
    dataset (all feature sets, d, m and comparators); ``p_holm`` and the interval
    ``[ci_low_holm, ci_high_holm]`` (at level ``holm_level``) are the corrected ones, ``significant``
    is ``p_holm < 1 - level`` and the corrected interval excluding zero. ``release`` is that of the
    two compared fits (only non-DP fits are compared, so "non-private").
    """
    rows, boots = [], []
    per_user = per_user[per_user["n_test"] > 0].assign(rmse_u=lambda df: np.sqrt(df["sse"] / df["n_test"]))
    per_user = per_user[per_user["epsilon"].isna()] if "epsilon" in per_user.columns else per_user
    keys = group_keys(summary)
    summary = summary[summary["epsilon"].isna()] if "epsilon" in summary.columns else summary
    alpha = (1.0 - level) / 2.0
    for cell, group in summary.groupby(keys, sort=False):
        cell = dict(zip(keys, cell if isinstance(cell, tuple) else (cell,)))
        methods = set(group["method"])
        release = dict(zip(group["method"], group["release"]))
        if "amht_lrs" not in methods:
            continue
        sel = per_user
        for k, v in cell.items():
            sel = sel[sel[k].astype(str) == str(v)]
        pivot = sel.pivot_table(index=["seed", "user"], columns="method", values="rmse_u")
        comparators = [(c, c) for c in COMPARATORS if c in methods]
        if methods & set(BASELINES):
            comparators.append((BEST, best_baseline(group)))
        for tested in TESTED:
            source = "amht_lrs" if tested == "amht_lrs_swapped" else tested
            if source not in pivot.columns:
                continue
            for name, comparator in comparators:
                if comparator == source:
                    continue
                both = pivot[[source, comparator]].dropna()
                users = both.index.get_level_values("user").to_numpy()
                delta = (both[source] - both[comparator]).to_numpy()
                if tested == "amht_lrs_swapped":
                    uniq, inverse = np.unique(users, return_inverse=True)
                    delta = delta * rng.choice([-1.0, 1.0], size=uniq.size)[inverse]
                stats = paired_difference(pd.DataFrame({"user": users, "delta": delta}), n_boot, rng, level,
                                          return_boot=True)
                boots.append(stats.pop("boot"))
                pair = dict.fromkeys((release[source], release[comparator]))
                rows.append({**cell, "m": str(cell["m"]), "tested": tested, "comparator": name,
                             "baseline": comparator, "baseline_label": method_label(comparator),
                             "release": " vs ".join(pair), **stats})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["p_holm"], table["holm_level"] = np.nan, np.nan
    for _, family in table.groupby(["dataset", "tested"], sort=False):
        adjusted, levels = holm(family["p_value"].to_numpy(), level)
        table.loc[family.index, "p_holm"] = adjusted
        table.loc[family.index, "holm_level"] = levels
        table.loc[family.index, "family_size"] = len(family)
    a = (1.0 - table["holm_level"].to_numpy()) / 2.0
    table["ci_low_holm"] = [float(np.quantile(b, q)) for b, q in zip(boots, a)]
    table["ci_high_holm"] = [float(np.quantile(b, 1.0 - q)) for b, q in zip(boots, a)]
    # both criteria: with few resamples the +1-corrected p-value is coarser than the percentile interval
    excludes_zero = (table["ci_high_holm"] < 0) | (table["ci_low_holm"] > 0)
    table["significant"] = (table["p_holm"] < 2 * alpha) & excludes_zero
    table["family_size"] = table["family_size"].astype(int)
    table["method"], table["epsilon"] = "amht_lrs", np.nan
    rank = {t: i for i, t in enumerate(TESTED)}
    comp_rank = {c: i for i, c in enumerate((*COMPARATORS, BEST))}
    table = table.assign(_t=table["tested"].map(rank), _c=table["comparator"].map(comp_rank))
    table = table.sort_values(["_t", "_c"], kind="stable").drop(columns=["_t", "_c"])
    return order_rows(table, train_sizes).drop(columns=["method", "epsilon"])


def paired_display(paired: pd.DataFrame, level: float) -> pd.DataFrame:
    """Paired comparisons as strings: mean difference, Holm-corrected interval and p-value."""
    if paired.empty:
        return paired
    keys = [k for k in ("dataset", "features", "d", "m") if k in paired.columns]
    return pd.DataFrame({
        **{k: paired[k] for k in keys},
        "tested": paired["tested"].map(lambda t: {"amht_lrs": "AMHT-LRS", "global": "control: global",
                                                  "amht_lrs_swapped": "control: AMHT-LRS swapped"}.get(t, t)),
        "vs": [f"{lab} (best on validation)" if c == BEST else lab
               for c, lab in zip(paired["comparator"], paired["baseline_label"])],
        "Δ RMSE (tested − vs)": paired["mean_delta"].map(lambda v: f"{v:+.4f}"),
        f"Holm-adjusted {100 * level:g}% CI": [f"[{lo:+.4f}, {hi:+.4f}]"
                                               for lo, hi in zip(paired["ci_low_holm"], paired["ci_high_holm"])],
        "p (Holm)": paired["p_holm"].map(lambda v: f"{v:.3g}"),
        "users better": paired["frac_users_better"].map(lambda v: f"{100 * v:.0f}%"),
        "distinct users (all seeds)": paired["n_users"],
        "release": paired["release"],
    })
