"""Test metrics of personalized predictions and the paired comparison of two methods.

Errors are measured on the rating scale. Per-user error sums are kept so that RMSE can be
pooled over ratings (every rating counts once) or averaged over users (every user counts
once), bucketed by user activity, and compared user by user between methods.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def per_user_errors(y_true: np.ndarray, y_pred: np.ndarray, owner: np.ndarray, n_users: int) -> pd.DataFrame:
    """Count, squared-error sum and absolute-error sum of every user position ``0..n_users-1``."""
    y_true, y_pred, owner = np.asarray(y_true, float), np.asarray(y_pred, float), np.asarray(owner)
    if not (y_true.shape == y_pred.shape == owner.shape):
        raise ValueError("y_true, y_pred and owner must have the same shape")
    if not np.all(np.isfinite(y_pred)):
        raise ValueError("y_pred contains non-finite predictions")
    err = y_pred - y_true
    return pd.DataFrame(
        {
            "n_test": np.bincount(owner, minlength=n_users),
            "sse": np.bincount(owner, weights=err**2, minlength=n_users),
            "sae": np.bincount(owner, weights=np.abs(err), minlength=n_users),
        }
    )


def summarize_errors(errors: pd.DataFrame) -> dict[str, float]:
    """RMSE pooled over ratings, RMSE averaged over users, and MAE of per-user error sums."""
    errors = errors[errors["n_test"] > 0]
    if errors.empty:
        raise ValueError("no user has a test rating")
    n = errors["n_test"].sum()
    return {
        "rmse": float(np.sqrt(errors["sse"].sum() / n)),
        "rmse_user": float(np.sqrt(errors["sse"] / errors["n_test"]).mean()),
        "mae": float(errors["sae"].sum() / n),
        "n_users": int(len(errors)),
        "n_test": int(n),
    }


def activity_bucket(n_ratings: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Label of each user's activity bucket; ``edges`` are increasing lower bounds (first = 0 or 1)."""
    edges = [int(e) for e in edges]
    if len(edges) < 1 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"activity_buckets must be strictly increasing, got {edges!r}")
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])] + [f">={edges[-1]}"]
    pos = np.searchsorted(edges, np.asarray(n_ratings), side="right") - 1
    if np.any(pos < 0):
        raise ValueError(f"a user has fewer ratings than the first activity bucket edge {edges[0]}")
    return np.asarray(labels, dtype=object)[pos]


def paired_difference(
    diff: pd.DataFrame, n_boot: int, rng: np.random.Generator, level: float = 0.95, return_boot: bool = False
) -> dict[str, float]:
    """Mean per-user difference with a user-clustered bootstrap confidence interval and p-value.

    ``diff`` has columns ``user`` and ``delta`` (one row per user and seed); users are
    resampled with all their seeds, so repeated splits of one user are not treated as
    independent evidence. ``p_value`` is the two-sided bootstrap p-value of "mean difference
    = 0" (twice the smaller tail share of the bootstrap means beyond zero, with the +1
    correction so it is never 0). With ``return_boot`` the bootstrap means are returned under
    ``"boot"`` so intervals at other levels (e.g. Holm-adjusted ones) can be read off them.
    """
    if diff.empty:
        raise ValueError("no paired observations")
    per_user = diff.groupby("user")["delta"].agg(["sum", "count"])
    sums, counts = per_user["sum"].to_numpy(), per_user["count"].to_numpy()
    n = sums.size
    draws = rng.integers(0, n, size=(n_boot, n))
    boot = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1.0 - level) / 2.0
    user_mean = sums / counts
    out = {
        "mean_delta": float(sums.sum() / counts.sum()),
        "ci_low": float(np.quantile(boot, alpha)),
        "ci_high": float(np.quantile(boot, 1.0 - alpha)),
        "p_value": bootstrap_p_value(boot),
        "frac_users_better": float(np.mean(user_mean < 0)),
        "n_users": int(n),
        "n_pairs": int(counts.sum()),
    }
    if return_boot:
        out["boot"] = boot
    return out


def bootstrap_p_value(boot: np.ndarray) -> float:
    """Two-sided p-value of "the mean is 0" from bootstrap means: 2 x the smaller tail beyond 0, +1-corrected."""
    boot = np.asarray(boot, dtype=float)
    tail = min(np.sum(boot <= 0.0), np.sum(boot >= 0.0))
    return float(min(1.0, 2.0 * (tail + 1) / (boot.size + 1)))


def holm(p_values: Sequence[float], level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down adjustment of a family of p-values.

    Returns the adjusted p-values (``max_{j<=i} min(1, (K-j+1) p_(j))`` in sorted order, mapped back)
    and, for each hypothesis, the confidence level ``1 - (1-level)/(K - rank + 1)`` of its
    Holm-adjusted interval (rank = position of its p-value in increasing order, 0-based): the
    interval at that level excludes 0 exactly when the hypothesis' own Holm threshold is met.
    Rejection (adjusted p < 1 - ``level``) controls the family-wise error rate at 1 - ``level``.
    """
    p = np.asarray(p_values, dtype=float)
    k = p.size
    if k == 0:
        return p.copy(), p.copy()
    order = np.argsort(p, kind="stable")
    factors = k - np.arange(k)
    adjusted_sorted = np.maximum.accumulate(np.minimum(1.0, factors * p[order]))
    adjusted = np.empty(k)
    adjusted[order] = adjusted_sorted
    levels = np.empty(k)
    levels[order] = 1.0 - (1.0 - level) / factors
    return adjusted, levels
