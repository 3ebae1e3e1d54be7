"""File-level steps of the workflow (called by the thin scripts in ``workflow/scripts``).

Each step reads its inputs, calls the package functions, and writes its outputs atomically;
``cfg`` is the validated ``personalization`` (or ``storage``) section of the config.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bilinrec.data import load_prepared
from bilinrec.experiments.personalization.experiment import (
    RunSettings,
    run_personalization,
)
from bilinrec.experiments.personalization.features import (
    fit_item_features,
    load_features,
    save_features,
)
from bilinrec.experiments.personalization.methods import MethodOptions
from bilinrec.experiments.personalization.protocol import check_protocol, split_users
from bilinrec.experiments.personalization.report import (
    bucket_table,
    paired_display,
    paired_table,
    summary_table,
)
from bilinrec.experiments.storage.measure import LRSSpec, ModelSpec, storage_table
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


def run_settings(cfg: Mapping[str, Any], feature_scale: np.ndarray, rating_range) -> RunSettings:
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
    )


def run_step(
    ratings_path: PathLike,
    features_path: PathLike,
    outputs: Mapping[str, PathLike],
    cfg: Mapping[str, Any],
    dataset: str,
    factors: int,
    seed: int,
) -> None:
    """One (dataset, d, seed) run; writes the ``metrics``, ``buckets`` and ``per_user`` CSVs."""
    data = load_prepared(ratings_path)
    features, split = load_features(features_path)
    settings = run_settings(cfg, features.design_scale(cfg["intercept"]),
                            (float(data.rating.min()), float(data.rating.max())))
    result = run_personalization(data.item, data.rating, features, split, settings,
                                 derive_seed(seed, "methods", factors))
    for name in ("metrics", "buckets", "per_user"):
        frame = getattr(result, name)
        frame.insert(0, "seed", seed)
        frame.insert(0, "d", factors)
        frame.insert(0, "dataset", dataset)
        write_text(outputs[name], frame.to_csv(index=False))


def tables_step(
    metrics: Sequence[PathLike],
    buckets: Sequence[PathLike],
    per_user: Sequence[PathLike],
    outputs: Mapping[str, PathLike],
    cfg: Mapping[str, Any],
    seed: int,
) -> None:
    """Summaries across seeds: ``lrs_movielens`` (+ buckets and paired comparison tables)."""
    sizes = _train_sizes(cfg)

    def read(paths):
        return pd.concat([pd.read_csv(p, dtype={"m": str}) for p in paths], ignore_index=True)

    summary, shown = summary_table(read(metrics), sizes)
    caption = ("Test error on held-out ratings of evaluation users with m training ratings each "
               "(mean ± std over seeds); hyper-parameters chosen on validation ratings.")
    write_table(summary, outputs["table"], display=shown, caption=caption)
    bucket_summary, bucket_shown = bucket_table(read(buckets), sizes)
    write_table(bucket_summary, outputs["buckets"], display=bucket_shown,
                caption="Test error by user activity (total ratings of the user), mean ± std over seeds.")
    paired = paired_table(read(per_user), summary, cfg["bootstrap"], derive_rng(seed, "bootstrap"),
                          cfg["confidence_level"], sizes)
    write_table(paired, outputs["paired"], display=paired_display(paired, cfg["confidence_level"]),
                caption="Per-user test RMSE difference, AMHT-LRS minus the best baseline at each m "
                        "(user-clustered bootstrap interval over all seeds).")


def storage_models(cfg: Mapping[str, Any], linear_dims: Sequence[int]) -> list[ModelSpec]:
    """Reference models of the ``storage`` section plus one linear MovieLens model per d."""
    linear = [ModelSpec(f"linear MovieLens model (d={d})", int(d) + 1, 1, None, embedding_dim=int(d) + 1)
              for d in linear_dims]
    return linear + [ModelSpec(m["name"], m["parameters"], m.get("layers", 1), m.get("last_layer_parameters"))
                     for m in cfg["models"]]


def storage_step(output_csv: PathLike, cfg: Mapping[str, Any], linear_dims: Sequence[int], seed: int) -> None:
    """Measure serialized storage of every model and scheme; write ``lrs_storage.{csv,md}``."""
    variants = [LRSSpec(v["name"], v["rank"], v.get("sparsity"), v.get("sparsity_fraction"))
                for v in cfg["lrs_variants"]]
    table = storage_table(storage_models(cfg, linear_dims), cfg["n_users"], cfg["embedding_dim"], variants,
                          derive_rng(seed, "storage"), cfg["max_measured_bytes"])
    write_table(table, output_csv, display=storage_display(table), formats=("csv", "md"),
                caption="Serialized per-user storage (float32, uncompressed .npz). Shared parameters are "
                        "counted once; 'extrapolated' rows were not serialized in full.")


def human_bytes(n: float) -> str:
    """Decimal units (1 PB = 1e15 bytes), as in the paper's '1 GB x 1M users = 1 PB' example."""
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def storage_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "model": table["model"],
        "scheme": table["variant"],
        "users": table["n_users"].map(lambda n: f"{n:,}"),
        "bytes/user": table["bytes_per_user"].map(human_bytes),
        "shared": table["shared_bytes"].map(human_bytes),
        "total": table["total_bytes"].map(human_bytes),
        "full FT / scheme": table["full_over_scheme"].map(lambda r: f"{r:.3g}×"),
        "how": np.where(table["measured"], "measured", "extrapolated"),
    })


def notebook_step(template: PathLike, outputs: Mapping[str, PathLike], parameters: Mapping[str, Any]) -> None:
    """Execute the thin notebook that draws the figures (paths are made absolute)."""
    from bilinrec.notebooks import execute_notebook

    params = {k: (str(Path(v).resolve()) if isinstance(v, (str, Path)) and k.endswith(("_csv", "_stem")) else v)
              for k, v in parameters.items()}
    execute_notebook(template, outputs["ipynb"], outputs["html"], params)
