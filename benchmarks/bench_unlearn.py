"""The fair race between Unlearn-ALS and retraining, on ml-100k and the synthetic 20M matrix.

Prints a table (not a timed test). Every racer minimises the retraining objective on the reduced
data with BM25 confidences recomputed on it (5 x BM25, K1 100, B 0.9), and stops by the same rule
(relative objective change below ``--tol``); see :mod:`bilinrec.experiments.unlearn.race` for the
two views (same stopping rule; within ``--within`` of the converged retraining objective) and the
three retraining peers (our exact solver, our CG with 3 steps, ``implicit``'s CG).

The original model (the unlearner's starting point) is trained with ``--original-solver`` under
the same stopping rule; it is not part of the race.

    BILINREC_DATA_DIR=/path/with/ml-100k.zip python benchmarks/bench_unlearn.py --datasets ml-100k
    python benchmarks/bench_unlearn.py --datasets synthetic-20m --sizes 0.001 --peers cg

Synthetic 20M: the generator of ``bench_als.py`` (138k users x 27k items, 20M cells); its stored
values are taken as binary interactions.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time

import numpy as np
import pandas as pd
from common import movielens_100k_binary, synthetic_20m_binary

from bilinrec.experiments.unlearn.race import run_race
from bilinrec.models.als import ALS, Weighting


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k"], choices=["ml-100k", "synthetic-20m"])
    parser.add_argument("--factors", type=int, default=100)
    parser.add_argument("--regularization", type=float, default=0.01)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--sizes", nargs="+", default=["record", "user", "0.001", "0.01", "0.1", "0.2"])
    parser.add_argument("--strata", nargs="+", default=["uniform", "popular"])
    parser.add_argument("--peers", nargs="+", default=["exact", "cg", "implicit"])
    parser.add_argument("--tol", type=float, default=1e-4, help="the stopping rule of every racer")
    parser.add_argument("--within", type=float, default=1e-4, help="second view: within this of converged F*")
    parser.add_argument("--max-sweeps", type=int, default=1000)
    parser.add_argument("--converge-tol", type=float, default=1e-6)
    parser.add_argument("--converge-max-sweeps", type=int, default=3000)
    parser.add_argument("--converge-sizes", nargs="*", default=None,
                        help="sizes that get the converged view (default: all; none: every racer stops at the rule)")
    parser.add_argument("--original-solver", choices=["cholesky", "cg"], default="cg")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=None, help="ALS num_threads (None: BLAS decides)")
    parser.add_argument("--out", default=None, help="also write the table as CSV")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    log = logging.getLogger("bench_unlearn")
    weighting = Weighting("bm25", scale=5.0, K1=100.0, B=0.9, bm25_rows="items")
    params = {"factors": args.factors, "regularization": args.regularization, "dtype": np.dtype(args.dtype),
              "num_threads": args.threads}
    cfg = {"tol": args.tol, "within": args.within, "max_sweeps": args.max_sweeps, "converge_tol": args.converge_tol,
           "converge_max_sweeps": args.converge_max_sweeps, "peers": args.peers,
           "sizes": [s if s in ("record", "user") else float(s) for s in args.sizes], "strata": args.strata}
    if args.converge_sizes is not None:
        cfg["converge_sizes"] = [s if s in ("record", "user") else float(s) for s in args.converge_sizes]
    frames = []
    for name in args.datasets:
        t0 = time.perf_counter()
        X = movielens_100k_binary() if name == "ml-100k" else synthetic_20m_binary()
        log.info("%s: %d x %d, %d positives (%.1f s)", name, *X.shape, X.nnz, time.perf_counter() - t0)
        t0 = time.perf_counter()
        original = ALS(**params, solver=args.original_solver, iterations=args.max_sweeps, tol=args.tol,
                       random_state=args.seed, weighting=weighting).fit(X)
        log.info("original (%s): %d sweeps, %.1f s", args.original_solver, original.train_iterations_,
                 time.perf_counter() - t0)
        df = run_race(X, weighting, original, params, args.seed + 1, cfg, np.random.default_rng(args.seed), log=log)
        df.insert(0, "dataset", name)
        df["max_rss_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        frames.append(df)
        if args.out:
            pd.concat(frames).to_csv(args.out, index=False)
    table = pd.concat(frames, ignore_index=True)
    shown = ["dataset", "size", "stratum", "n_deleted", "racer", "rule_sweeps", "rule_seconds_timing",
             "rule_objective_gap", "target_sweeps", "target_seconds_timing"]
    print(table[shown].to_markdown(index=False, floatfmt=".4g"))
    speed = table[table["racer"] == "unlearn"]
    cols = ["dataset", "size", "stratum"] + [c for c in speed.columns if c.startswith("speedup_")]
    print()
    print(speed[cols].to_markdown(index=False, floatfmt=".3g"))
    last = table.groupby("dataset")[["converged_sweeps", "converged_last_rel_change"]].max()
    print()
    print("converged retraining reference (exact, continued past the rule):")
    print(last.to_markdown(floatfmt=".3g"))


if __name__ == "__main__":
    main()
