"""File-level steps of the Unlearn-ALS workflow: each reads and writes the files of one rule.

The workflow scripts only unpack ``snakemake`` objects and call these functions, so every
step can also be run (and tested) without Snakemake.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bilinrec.experiments.unlearn.experiment import (
    SYNTHETIC,
    choose_deletions,
    deletion_rng,
    evaluate_run,
    load_implicit,
    load_split,
    prepare_split,
    retrain,
    save_split,
    split_rng,
    train_original,
    unlearn_all,
)
from bilinrec.experiments.unlearn.trained import load_models, save_models
from bilinrec.io import load_npz, save_npz, write_json

log = logging.getLogger(__name__)
PathLike = str | os.PathLike


def split_step(dataset: str, ratings_path: PathLike | None, cfg: Mapping[str, Any], root_seed: int,
               seed: int, out: PathLike) -> None:
    """Positives, held-out cells and confidences of (dataset, seed) -> ``out`` (.npz)."""
    ratings = None if dataset == SYNTHETIC else load_npz(ratings_path)
    data = load_implicit(dataset, ratings, cfg, root_seed)
    split = prepare_split(data, cfg, split_rng(root_seed, dataset, seed))
    log.info("%s seed %d: %s matrix, %d training positives, %d held-out cells (%d positive)", dataset, seed,
             split.conf.shape, split.conf.nnz, split.heldout_labels.size, int(split.heldout_labels.sum()))
    save_split(out, split)


def original_step(split_path: PathLike, cfg: Mapping[str, Any], seed: int, out: PathLike,
                  threads: int | None = None) -> None:
    """Train the original model of (dataset, seed) -> ``out``."""
    run = train_original(load_split(split_path), cfg, seed, threads)
    log.info("original: %d sweeps, %.1f s compute, objective %.6g, held-out AUC %.4f", run.sweeps,
             run.total_seconds, run.objective[-1], run.heldout_auc[-1])
    save_models(out, {"original": run})


def deletions_step(split_path: PathLike, dataset: str, strategy: str, fraction: float, cfg: Mapping[str, Any],
                   root_seed: int, seed: int, out: PathLike) -> None:
    """Choose the deleted cells of one run -> ``out`` (.npz with an ``(n, 2)`` array ``pairs``)."""
    pairs = choose_deletions(load_split(split_path), strategy, fraction, cfg,
                             deletion_rng(root_seed, dataset, seed, strategy, fraction))
    log.info("%s f=%s: %d deleted cells of %d users and %d items", strategy, fraction, len(pairs),
             np.unique(pairs[:, 0]).size, np.unique(pairs[:, 1]).size)
    save_npz(out, pairs=pairs)


def retrain_step(split_path: PathLike, deletions_path: PathLike, cfg: Mapping[str, Any], seed: int,
                 member: int, out: PathLike, threads: int | None = None) -> None:
    """Retrain from scratch on the reduced data (band member ``member``) -> ``out``."""
    run = retrain(load_split(split_path), load_npz(deletions_path)["pairs"], cfg, seed, member, threads)
    log.info("retrain member %d: %.1f s compute, objective %.6g, held-out AUC %.4f", member,
             run.total_seconds, run.objective[-1], run.heldout_auc[-1])
    save_models(out, {"retrained": run})


def unlearn_step(split_path: PathLike, deletions_path: PathLike, original_path: PathLike,
                 cfg: Mapping[str, Any], seed: int, out: PathLike, threads: int | None = None) -> None:
    """All unlearners of one run (converged and fixed budget) -> ``out``."""
    original = load_models(original_path)["original"]
    runs = unlearn_all(original, load_split(split_path), load_npz(deletions_path)["pairs"], cfg, seed, threads)
    for name, run in runs.items():
        log.info("%s: %d sweeps, %.2f s compute, objective %.6g", name, run.sweeps, run.total_seconds,
                 run.objective[-1])
    save_models(out, runs)


def evaluate_step(split_path: PathLike, deletions_path: PathLike, original_path: PathLike,
                  retrain_paths: Sequence[PathLike], unlearned_path: PathLike, cfg: Mapping[str, Any],
                  run: Mapping[str, Any], out_json: PathLike, out_scores: PathLike,
                  out_history: PathLike) -> None:
    """Metrics JSON, score samples and convergence histories of one run.

    ``run`` names the run (dataset, strategy, fraction, seed) and is copied into the JSON.
    """
    split = load_split(split_path)
    deletions = load_npz(deletions_path)["pairs"]
    original = load_models(original_path)["original"]
    retrained = [load_models(p)["retrained"] for p in retrain_paths]
    unlearned = load_models(unlearned_path)
    metrics, samples = evaluate_run(split, deletions, original, retrained, unlearned, cfg, int(run["seed"]))
    models = {"original": original, "retrained": retrained[0], **unlearned}
    history = {}
    for name, m in models.items():
        history[f"{name}__objective"] = m.objective
        history[f"{name}__heldout_auc"] = m.heldout_auc
        history[f"{name}__compute_seconds"] = m.compute_seconds
        history[f"{name}__phase"] = m.phase
    save_npz(out_scores, **samples)
    save_npz(out_history, **history)
    write_json(out_json, {**dict(run), **metrics})



def race_step(split_path: PathLike, original_path: PathLike, dataset: str, cfg: Mapping[str, Any],
              root_seed: int, seed: int, out: PathLike, threads: int | None = None,
              size: str | None = None, stratum: str | None = None) -> None:
    """The fair race (unlearning vs three retraining peers) of (dataset, seed) -> ``out`` CSV: every
    deletion size of ``cfg["race"]``, or only ``size`` (and ``stratum``) when given (one workflow job each)."""
    from bilinrec.experiments.als_inputs import als_params
    from bilinrec.experiments.unlearn.race import run_race
    from bilinrec.seeds import derive_rng

    split = load_split(split_path)
    params = {k: v for k, v in als_params(cfg["model"], seed, threads).items()
              if k in ("factors", "regularization", "dtype", "num_threads", "feedback")}
    original = load_models(original_path)["original"].model(
        {**als_params(cfg["model"], seed, threads, split.weighting)})
    race_cfg = dict(cfg["race"])
    key = ("unlearn-race", dataset, int(seed))
    if size is not None:
        race_cfg["sizes"] = [size if size in ("record", "user") else float(size)]
        race_cfg["strata"] = [stratum or "uniform"]
        key = (*key, str(size), stratum or "uniform")
    df = run_race(split.train, split.weighting, original, params, seed, race_cfg, derive_rng(root_seed, *key), log=log)
    df.insert(0, "dataset", dataset)
    out = os.fspath(out)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    df.to_csv(out, index=False)


def race_table_step(race_paths: Sequence[PathLike], table_csv: PathLike, figure_stem: PathLike) -> None:
    """``unlearn_race`` table (mean over seeds) and the speedup-vs-deletion-size figure."""
    import pandas as pd

    from bilinrec.experiments.unlearn.race import SHOWN, plot_race, race_table
    from bilinrec.plotting import savefig
    from bilinrec.tables import write_table

    df = pd.concat([pd.read_csv(p) for p in race_paths], ignore_index=True)
    table = race_table(df)
    speed_cols = [c for c in table.columns if c.startswith(("speedup_rule_sweeps_vs_", "speedup_target_sweeps_vs_",
                                                              "speedup_target_seconds_timing_vs_"))]
    shown = table[["dataset", *[c for c in SHOWN if c in table.columns], *speed_cols]]
    write_table(table, table_csv, display=shown.round(4),
                caption="Fair race: unlearning vs retraining peers, under one stopping rule and to the matched "
                        "quality target (within race.within of F*; NaN: never reached within the racer's run).")
    savefig(plot_race(table), figure_stem)
