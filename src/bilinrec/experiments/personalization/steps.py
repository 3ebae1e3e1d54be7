"""File-level steps of the workflow (called by the thin scripts in ``workflow/scripts``).

Each step reads its inputs, calls the package functions, and writes its outputs atomically;
``cfg`` is the validated ``personalization`` (or ``storage``) section of the config.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bilinrec.data import load_prepared
from bilinrec.data.genres import item_genres
from bilinrec.experiments.personalization.control import write_control
from bilinrec.experiments.personalization.experiment import (
    RunSettings,
    run_personalization,
)
from bilinrec.experiments.personalization.features import (
    fit_item_features,
    load_features,
    save_features,
    with_genres,
)
from bilinrec.experiments.personalization.methods import MethodOptions
from bilinrec.experiments.personalization.protocol import check_protocol, split_users
from bilinrec.experiments.personalization.report import (
    bucket_table,
    paired_display,
    paired_table,
    summary_table,
)
from bilinrec.io import write_text
from bilinrec.seeds import derive_rng, derive_seed
from bilinrec.tables import write_table

log = logging.getLogger(__name__)

PathLike = str | os.PathLike


def _train_sizes(cfg: Mapping[str, Any]) -> list[str]:
    return [str(m) for m in cfg["train_sizes"]]


def features_step(ratings_path: PathLike, out_path: PathLike, cfg: Mapping[str, Any], factors: int, seed: int) -> None:
    """Check the protocol, split users, fit the background ALS and save both."""
    data = load_prepared(ratings_path)
    check_protocol(data.user, cfg["train_sizes"], cfg["background_fraction"], cfg["test_fraction"],
                   cfg["validation_fraction"], cfg["min_eval_users"])
    split = split_users(data.user, derive_rng(seed, "split"), cfg["background_fraction"],
                        cfg["test_fraction"], cfg["validation_fraction"])
    als = cfg["als"]
    log.info("%s: %d background and %d evaluation users; fitting ALS d=%d", data.name,
             split.background_users.size, split.eval_users.size, factors)
    features = fit_item_features(data.user, data.item, data.rating, data.n_items, split.background_users,
                                 factors, als["regularization"], als["iterations"], als["scale_regularization"],
                                 derive_seed(seed, "als", factors))
    save_features(out_path, features, split)


def run_settings(cfg: Mapping[str, Any], feature_scale: np.ndarray, rating_range,
                 fold_in_scale: np.ndarray | None = None) -> RunSettings:
    """The :class:`RunSettings` of the ``personalization`` config section."""
    amht = dict(cfg["amht"])
    options = MethodOptions(
        amht=amht,
        fedrep=dict(cfg["fedrep"]),
        sparse_only=dict(cfg["sparse_only"]),
        dp=dict(cfg["dp"]),
        fold_in_regularization=cfg["als"]["regularization"],
        fold_in_scale_regularization=cfg["als"]["scale_regularization"],
        feature_scale=feature_scale,
        fold_in_scale=fold_in_scale,
    )
    return RunSettings(
        train_sizes=cfg["train_sizes"],
        methods=cfg["methods"],
        grid=cfg["grid"],
        options=options,
        dp_epsilons=cfg["dp"]["epsilons"],
        dp_delta=cfg["dp"]["delta"],
        dp_samples_cap_all=cfg["dp"]["samples_cap_all"],
        intercept=cfg["intercept"],
        rating_range=rating_range if cfg["clip_predictions"] else None,
        activity_edges=cfg["activity_buckets"],
        shared_background=cfg.get("shared_background", False),
        tuning_budget=cfg.get("tuning_budget"),
    )


def run_step(
    ratings_path: PathLike,
    features_path: PathLike,
    outputs: Mapping[str, PathLike],
    cfg: Mapping[str, Any],
    dataset: str,
    factors: int,
    seed: int,
    resources: PathLike = "resources",
) -> None:
    """One (dataset, d, seed) run over every feature set; writes the ``metrics``, ``buckets`` and ``per_user`` CSVs.

    On a dataset without genres (synthetic-ml) feature sets with genres fall back to the embedding (logged).
    """
    data = load_prepared(ratings_path)
    features, split = load_features(features_path)
    feature_sets = list(cfg.get("feature_sets", ["embedding"]))
    genres = None
    if any("genres" in fs for fs in feature_sets):
        genres = item_genres(dataset, ratings_path, data.item_ids, resources)
    background_items = data.item[np.isin(data.user, split.background_users)]
    frames: dict[str, list[pd.DataFrame]] = {"metrics": [], "buckets": [], "per_user": []}
    if genres is None and any("genres" in fs for fs in feature_sets):
        log.warning("%s has no item genres: feature sets %s fall back to the embedding", dataset, feature_sets)
        feature_sets = list(dict.fromkeys("embedding" if "genres" in fs else fs for fs in feature_sets))
    for feature_set in feature_sets:
        fs_features = with_genres(features, genres, background_items, feature_set)
        settings = run_settings(cfg, fs_features.design_scale(cfg["intercept"]),
                                (float(data.rating.min()), float(data.rating.max())),
                                fold_in_scale=features.design_scale(cfg["intercept"]))
        result = run_personalization(data.item, data.rating, fs_features, split, settings,
                                     derive_seed(seed, "methods", factors), user=data.user)
        for name, parts in frames.items():
            frame = getattr(result, name)
            frame.insert(0, "seed", seed)
            frame.insert(0, "d", factors)
            frame.insert(0, "features", feature_set)
            frame.insert(0, "dataset", dataset)
            parts.append(frame)
    for name, parts in frames.items():
        write_text(outputs[name], pd.concat(parts, ignore_index=True).to_csv(index=False))


def control_step(out_path: PathLike, cfg: Mapping[str, Any], seed: int) -> None:
    """Write the positive-control dataset ``synthetic-ml-sparse`` (see :mod:`.control`)."""
    write_control(out_path, cfg, seed)


def tables_step(
    metrics: Sequence[PathLike],
    buckets: Sequence[PathLike],
    per_user: Sequence[PathLike],
    outputs: Mapping[str, PathLike],
    cfg: Mapping[str, Any],
    seed: int,
) -> None:
    """Summaries across seeds: ``personalization`` (+ buckets and paired comparison tables)."""
    sizes = _train_sizes(cfg)

    def read(paths, labelled=True):
        """The runs' CSVs in one frame; a labelled one (metrics, buckets) must say each row's release."""
        frames = [pd.read_csv(p, dtype={"m": str}) for p in paths]
        for path, frame in zip(paths, frames):
            if labelled and "release" not in frame:
                raise ValueError(f"{path} has no release column (written by an older version): rerun its "
                                 "run, e.g. snakemake --forcerun personalization_run")
        return pd.concat(frames, ignore_index=True)

    summary, shown = summary_table(read(metrics), sizes)
    caption = ("Test error on held-out ratings of evaluation users with m training ratings each "
               "(mean ± std over seeds); hyper-parameters chosen on validation ratings.")
    write_table(summary, outputs["table"], display=shown, caption=caption)
    bucket_summary, bucket_shown = bucket_table(read(buckets), sizes)
    write_table(bucket_summary, outputs["buckets"], display=bucket_shown,
                caption="Test error by user activity (total ratings of the user), mean ± std over seeds.")
    paired = paired_table(read(per_user, labelled=False), summary, cfg["bootstrap"], derive_rng(seed, "bootstrap"),
                          cfg["confidence_level"], sizes)
    write_table(paired, outputs["paired"], display=paired_display(paired, cfg["confidence_level"]),
                caption="Per-user test RMSE difference, tested method minus comparator (pre-registered: AltMin, "
                        "full fine-tuning, ALS fold-in, and the best baseline chosen on validation RMSE); "
                        "user-clustered bootstrap over all seeds, Holm-corrected per dataset and tested "
                        "method. 'control' rows are negative controls that must not win.")
