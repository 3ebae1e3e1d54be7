"""One personalization run: every method at every training size ``m`` for one (dataset, d, seed).

For each ``m`` the eligible evaluation users form one population of the per-user linear
problem. Every method is fitted on their ``m`` training ratings for each setting of its
grid, the setting with the lowest validation RMSE is kept, and its test errors are
recorded per user. DP-AMHT-LRS reuses the (r, k) chosen for AMHT-LRS.

With ``shared_background`` every background user joins the population with ALL their ratings,
so every method's shared part (the global model of fine-tuning, the subspace of AltMin / FedRep /
AMHT-LRS, the global vector of sparse-only) sees the background users' histories plus the
evaluation users' ``m`` ratings, as the fold-in's item factors do; only evaluation users are
validated and tested. With ``tuning_budget`` every method tries the same number of settings
(a seeded uniform sample of its identifiable grid; a method whose grid is smaller tries it all).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from bilinrec.experiments.personalization.evaluation import (
    activity_bucket,
    per_user_errors,
    summarize_errors,
)
from bilinrec.experiments.personalization.features import ItemFeatures
from bilinrec.experiments.personalization.methods import (
    COMPARED_METHODS,
    MethodOptions,
    bytes_per_user,
    candidates,
    dp_delta,
    make_estimator,
    user_payload,
)
from bilinrec.experiments.personalization.protocol import (
    ALL,
    UserSplit,
    parse_train_sizes,
)
from bilinrec.models.lrs import NON_PRIVATE
from bilinrec.seeds import derive_rng

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides the data (from the ``personalization`` config section)."""

    train_sizes: Sequence[int | str]
    methods: Sequence[str]
    grid: Mapping[str, list]
    options: MethodOptions
    dp_epsilons: Sequence[float] = (1.0, 8.0)
    dp_delta: float = 1e-6  # fixed a priori (never derived from the data)
    dp_samples_cap_all: int = 100
    intercept: bool = True
    rating_range: tuple[float, float] | None = None
    activity_edges: Sequence[int] = (1, 50, 100, 200)
    shared_background: bool = False
    tuning_budget: int | None = None

    def __post_init__(self):
        if self.tuning_budget is not None and self.tuning_budget < 1:
            raise ValueError(f"tuning_budget must be a positive integer or null, got {self.tuning_budget!r}")
        unknown = [m for m in self.methods if m not in COMPARED_METHODS]
        if unknown:
            raise ValueError(f"methods: unknown {unknown}; expected a subset of {list(COMPARED_METHODS)}")
        if "dp_amht_lrs" in self.methods and "amht_lrs" not in self.methods:
            raise ValueError("methods: dp_amht_lrs reuses the hyper-parameters chosen for amht_lrs; include amht_lrs")
        parse_train_sizes(self.train_sizes)


@dataclass
class RunResult:
    """``metrics``: one row per (m, method); ``buckets``: per activity bucket; ``per_user``: test errors."""

    metrics: pd.DataFrame
    buckets: pd.DataFrame
    per_user: pd.DataFrame


def _clip(pred: np.ndarray, rating_range) -> np.ndarray:
    return pred if rating_range is None else np.clip(pred, *rating_range)


def _design_of(method: str) -> str:
    return "fold_in" if method == "user_embedding" else "features"


def _fit_and_validate(method, params, epsilon, settings, seed, data, n_users, val_offset, val_rating):
    """Fit one method setting on the training ratings; return it, its fit time and validation RMSE."""
    model = make_estimator(method, params, settings.options, seed, epsilon)
    start = time.perf_counter()
    model.fit(*data["train"], n_users=n_users)
    seconds = time.perf_counter() - start
    val_pred = _clip(model.predict(*data["val"]) + val_offset, settings.rating_range)
    return model, seconds, float(np.sqrt(np.mean((val_pred - val_rating) ** 2)))


def tuning_candidates(method: str, settings: RunSettings, m_int: int | None, seed: int) -> list[dict]:
    """The settings ``method`` tries at training size ``m``: its identifiable grid, subsampled to the budget."""
    grid = candidates(method, settings.grid, m_int)
    budget = settings.tuning_budget
    if budget is None or len(grid) <= budget:
        return grid
    rng = derive_rng(seed, "tuning", method, "all" if m_int is None else m_int)
    return [grid[i] for i in np.sort(rng.choice(len(grid), size=budget, replace=False))]


def run_personalization(
    item: np.ndarray,
    rating: np.ndarray,
    features: ItemFeatures,
    split: UserSplit,
    settings: RunSettings,
    seed: int,
    user: np.ndarray | None = None,
) -> RunResult:
    """Fit, tune and test every method for every training size of ``settings``.

    ``item`` and ``rating`` (and ``user``, needed with ``shared_background``) are the dataset's
    rating arrays that ``split`` indexes.
    """
    item, rating = np.asarray(item), np.asarray(rating, dtype=np.float64)
    if settings.shared_background:
        if user is None:
            raise ValueError("shared_background needs the dataset's user array")
        background_idx = np.flatnonzero(np.isin(np.asarray(user), split.background_users))
        background_pos = np.searchsorted(split.background_users, np.asarray(user)[background_idx])
    else:
        background_idx = background_pos = np.zeros(0, dtype=np.int64)
    n_background = int(split.background_users.size) if settings.shared_background else 0
    X_all = features.design(item, settings.intercept)
    # the fold-in is the ALS user step: it always works on the ALS embedding, whatever the feature set
    X_fold = X_all if features.feature_set == "embedding" else features.embedding_only().design(item, settings.intercept)
    offset = features.offset(item)
    y_all = rating - offset
    buckets = activity_bucket(split.n_ratings, settings.activity_edges)
    metrics, bucket_rows, per_user_frames = [], [], []

    for m in parse_train_sizes(settings.train_sizes):
        eligible = np.flatnonzero(split.eligible(m))
        n_excluded = int(split.eval_users.size - eligible.size)
        if eligible.size == 0:
            log.warning("m=%s: no evaluation user has enough ratings; skipped", m)
            continue
        position = np.full(split.eval_users.size, -1, dtype=np.int64)
        position[eligible] = np.arange(eligible.size)
        train_idx, train_owner = split.training(m)
        val_idx, val_owner = split.held_out("validation", eligible)
        test_idx, test_owner = split.held_out("test", eligible)
        t = eligible.size
        # background users (if shared) take positions t .. t + n_background - 1, after the evaluation users
        fit_idx = np.concatenate([train_idx, background_idx])
        fit_pos = np.concatenate([position[train_owner], t + background_pos])
        designs = {}
        for name, X in (("features", X_all), ("fold_in", X_fold)):
            designs[name] = {
                "train": (X[fit_idx], y_all[fit_idx], fit_pos),
                "val": (X[val_idx], position[val_owner]),
                "test": (X[test_idx], position[test_owner]),
            }
        data = designs["features"]
        m_int = None if m == ALL else int(m)
        log.info("m=%s: %d evaluation users (%d excluded), %d training ratings", m, t, n_excluded, train_idx.size)

        validation = (offset[val_idx], rating[val_idx])
        chosen: dict[str, dict] = {}
        runs = []
        for method in settings.methods:
            if method == "dp_amht_lrs":
                continue
            settings_tried = tuning_candidates(method, settings, m_int, seed)
            best = None
            for params in settings_tried:
                model, seconds, val_rmse = _fit_and_validate(method, params, None, settings, seed,
                                                             designs[_design_of(method)], t + n_background,
                                                             *validation)
                if best is None or val_rmse < best[2]:
                    best = (model, seconds, val_rmse, params)
            model, seconds, val_rmse, params = best
            chosen[method] = params
            runs.append((method, None, params, model, seconds, val_rmse, len(settings_tried)))
        if "dp_amht_lrs" in settings.methods:
            cap = settings.dp_samples_cap_all if m == ALL else int(m)
            params = dict(chosen["amht_lrs"], delta=dp_delta(settings.dp_delta, t + n_background),
                          samples_per_user=cap)
            for epsilon in settings.dp_epsilons:
                model, seconds, val_rmse = _fit_and_validate("dp_amht_lrs", params, epsilon, settings, seed, data,
                                                             t + n_background, *validation)
                runs.append(("dp_amht_lrs", float(epsilon), params, model, seconds, val_rmse, 1))

        for method, epsilon, params, model, seconds, val_rmse, n_trials in runs:
            test_pred = _clip(model.predict(*designs[_design_of(method)]["test"]) + offset[test_idx],
                              settings.rating_range)
            errors = per_user_errors(rating[test_idx], test_pred, position[test_owner], t)
            summary = summarize_errors(errors)
            payload = {k: v[:t] for k, v in user_payload(method, model, params).items()}
            row = {
                "m": str(m),
                "method": method,
                "epsilon": np.nan if epsilon is None else epsilon,
                # a DP fit names its mode (the personalization part runs seeded simulations)
                "release": NON_PRIVATE if epsilon is None else model.release_,
                "params": json.dumps(params, sort_keys=True),
                "val_rmse": val_rmse,
                **summary,
                "n_excluded": n_excluded,
                "bytes_per_user": bytes_per_user(payload),
                "fit_seconds": seconds,
                "n_trials": n_trials,
            }
            if epsilon is not None:
                row["epsilon_achieved"] = float(model.epsilon_)
                row["noise_multiplier"] = float(model.noise_multiplier_)
            metrics.append(row)
            errors["bucket"] = buckets[eligible]
            for bucket, part in errors.groupby("bucket", sort=False):
                bucket_rows.append({"m": str(m), "method": method, "epsilon": row["epsilon"],
                                    "release": row["release"], "bucket": bucket, **summarize_errors(part)})
            per_user_frames.append(
                pd.DataFrame({
                    "m": str(m), "method": method, "epsilon": row["epsilon"],
                    "user": split.eval_users[eligible], "n_ratings": split.n_ratings[eligible],
                    "n_test": errors["n_test"].to_numpy(), "sse": errors["sse"].to_numpy(),
                    "sae": errors["sae"].to_numpy(),
                })
            )
    if not metrics:
        raise ValueError("no training size had any eligible evaluation user")
    return RunResult(pd.DataFrame(metrics), pd.DataFrame(bucket_rows), pd.concat(per_user_frames, ignore_index=True))
