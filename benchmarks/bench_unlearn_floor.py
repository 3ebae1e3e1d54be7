"""The FLOP floor of an unlearning grid: the least time its exact ALS sweeps can take here.

Issue #17 asks for every strategy and deletion fraction on both datasets at >= 5 seeds within
the 45-minute default run on 2 cores. This prices such a grid from a finished run (the default
one): per dataset, the sweeps one run of the grid makes (its retrained band, every unlearning
mode with and without its budget, from the run's histories), the FLOP of one exact sweep, and
this machine's float32 matrix-multiply rate. That gives the floor of a run, compared with the
run's measured job time. Summed over a grid (``--configfile``, e.g. ``config/paper.yaml``, at
``--seeds``), plus the originals, it gives a lower bound on the grid's wall time on ``--cores``
cores, next to what the measured job times give; the last column is that bound over the 45-minute
budget (> 1: the grid alone cannot fit, however fast the code).

FLOP of an exact (Cholesky) sweep with k factors over a matrix with N stored cells and R = users
+ items rows: each cell adds a weighted outer product to the upper triangle of its row's normal
matrix on both sides (2 N k (k + 1) FLOP), and each row factorises and solves its k x k system
(R (k^3 / 3 + 2 k^2) FLOP: the Cholesky factorisation and the two triangular solves). The floor assumes every
FLOP at the GEMM rate; the assumption that an unmeasured grid cell sweeps as often as the measured
runs of its dataset is printed with the spread of those runs.

    python benchmarks/bench_unlearn_floor.py --results results --configfile config/paper.yaml --seeds 5 10
    python benchmarks/bench_unlearn_floor.py --configfile config/paper.yaml config/paper-unlearn-ml100k.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from common import gemm_rate
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MINUTES = 45.0


def merged(base: dict, overlay: dict) -> dict:
    """Snakemake's --configfile rule: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def unlearn_section(config: Path, *overlays: Path) -> dict:
    """The ``unlearn`` section of ``config`` with the ``overlays`` merged on it in turn and the workflow
    schema's defaults filled in, as the Snakefile validates it (config.yaml lists only what it changes)."""
    from snakemake.utils import validate

    whole = yaml.safe_load(config.read_text())
    for overlay in overlays:
        whole = merged(whole, yaml.safe_load(overlay.read_text()) or {})
    section = whole.get("unlearn", {})
    validate(section, str(ROOT / "workflow" / "schemas" / "unlearn.schema.yaml"))
    return section


def grid_runs(unlearn: dict) -> list[tuple[str, str, float]]:
    """(dataset, strategy, fraction) of every run of the grid, as workflow/rules/unlearn.smk lists them."""
    return [(d, g["strategy"], float(f)) for d in unlearn["datasets"] for g in unlearn["grid"]
            if g.get("datasets") is None or d in g["datasets"] for f in g["fractions"]]


def sweep_flop(n_cells: int, n_rows: int, k: int) -> float:
    return 2.0 * n_cells * k * (k + 1) + n_rows * (k**3 / 3.0 + 2.0 * k**2)


def measured_runs(results: Path) -> pd.DataFrame:
    """One row per finished run: dataset, sweeps of every model it trains, cells, rows and job seconds."""
    rows = []
    for metrics in sorted((results / "unlearn").glob("*/s*/*_f*/metrics.json")):
        run_dir = metrics.parent
        meta = json.loads(metrics.read_text())
        history = np.load(run_dir / "history.npz")
        band = sorted(run_dir.glob("retrain_b*.npz"))
        band_sweeps = sum(len(np.load(p)["retrained__objective"]) - 1 for p in band)
        unlearn_sweeps = sum(len(history[k]) - 1 for k in history.files
                             if k.endswith("__objective") and not k.startswith(("original", "retrained")))
        split = np.load(run_dir.parent / "split.npz")
        n_users, n_items = (int(x) for x in split["train_shape"])
        bench = results / "benchmarks" / run_dir.relative_to(results)
        job_seconds = sum(float(pd.read_csv(f, sep="\t")["s"].iloc[0]) for f in bench.glob("*.tsv"))
        rows.append({"dataset": meta["dataset"], "band_sweeps": band_sweeps, "unlearn_sweeps": unlearn_sweeps,
                     "original_sweeps": len(history["original__objective"]) - 1,
                     "cells": int(meta["n_train_positives"]) - int(meta["n_deleted"]),  # the run's models see the rest
                     "original_cells": int(meta["n_train_positives"]), "rows": n_users + n_items, "job_s": job_seconds})
    if not rows:
        raise SystemExit(f"no finished unlearning run under {results}/unlearn (run the workflow first)")
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="a finished run's results/")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--configfile", type=Path, nargs="+", default=[ROOT / "config" / "paper.yaml"],
                        help="grid overlays, laid over --config in turn as Snakemake does")
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args(argv)
    for option, path in (("--config", args.config), *(("--configfile", path) for path in args.configfile)):
        if not path.is_file():
            parser.error(f"{option} {path}: no such file")

    unlearn = unlearn_section(args.config, *args.configfile)
    k = int(unlearn["model"]["factors"])
    runs = measured_runs(args.results)
    with threadpool_limits(1):
        rate = gemm_rate(dtype=np.float32)
    runs["run_sweeps"] = runs["band_sweeps"] + runs["unlearn_sweeps"]
    runs["floor_s"] = runs["run_sweeps"] * sweep_flop(runs["cells"], runs["rows"], k) / rate
    runs["original_floor_s"] = runs["original_sweeps"] * sweep_flop(runs["original_cells"], runs["rows"], k) / rate
    per = runs.groupby("dataset").agg(
        measured_runs=("run_sweeps", "size"), sweeps_per_run=("run_sweeps", "mean"),
        sweeps_min=("run_sweeps", "min"), sweeps_max=("run_sweeps", "max"),
        gflop_per_sweep=("cells", lambda c: sweep_flop(c, runs.loc[c.index, "rows"], k).mean() / 1e9),
        floor_s_per_run=("floor_s", "mean"), job_s_per_run=("job_s", "mean"),
        original_floor_s=("original_floor_s", "mean"))
    per["job_vs_floor"] = per["job_s_per_run"] / per["floor_s_per_run"]
    print(f"float32 GEMM rate: {rate / 1e9:.1f} GFLOP per CPU second (1 thread); k = {k} factors")
    print(per.round(3).to_markdown())

    grid = grid_runs(unlearn)
    missing = sorted({d for d, _, _ in grid} - set(per.index))
    if missing:
        raise SystemExit(f"the grid has datasets with no measured run in {args.results}: {missing}")
    table = []
    for seeds in args.seeds:
        for dataset in sorted({d for d, _, _ in grid}):
            n = sum(d == dataset for d, _, _ in grid) * seeds
            floor = n * per.loc[dataset, "floor_s_per_run"] + seeds * per.loc[dataset, "original_floor_s"]
            table.append({"seeds": seeds, "dataset": dataset, "runs": n, "floor_core_s": floor,
                          "job_core_s": n * per.loc[dataset, "job_s_per_run"]})
    grid_table = pd.DataFrame(table)
    total = grid_table.groupby("seeds", as_index=False)[["runs", "floor_core_s", "job_core_s"]].sum()
    grid_table = pd.concat([grid_table, total.assign(dataset="all")], ignore_index=True)
    grid_table["floor_min_on_cores"] = grid_table["floor_core_s"] / args.cores / 60
    # the runs' measured job time (originals aside): what the grid takes at today's efficiency
    grid_table["job_min_on_cores"] = grid_table["job_core_s"] / args.cores / 60
    grid_table["floor_vs_45_min"] = grid_table["floor_min_on_cores"] / BUDGET_MINUTES
    print(f"\nthe grid of {' + '.join(path.name for path in args.configfile)} ({len(grid)} settings) at its FLOP floor on {args.cores} cores")
    print(grid_table.round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
