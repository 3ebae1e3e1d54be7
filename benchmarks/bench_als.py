"""Speed of one ALS sweep: bilinrec's exact and CG solvers against ``implicit``'s, same data, same start.

Run on demand (not part of the test suite)::

    BILINREC_DATA_DIR=/work/shared/data/movielens python benchmarks/bench_als.py --threads 2
    python benchmarks/bench_als.py --datasets synthetic-20m --factors 100 --sweeps 1 --cache /tmp/C20m.npz

``ml-100k`` follows the Unlearn-ALS setup: ratings < 3 dropped, the rest set to 1, confidence =
5 x BM25(K1=100, B=0.9) via ``implicit.nearest_neighbours.bm25_weight``. ``synthetic-20m`` is a
random matrix of ML-20M scale (138,493 users x 26,744 items, 20M stored cells, skewed user and item
popularity). Every run starts from the same factors and does the same number of sweeps; methods
take turns for several rounds, and the minimum and median over rounds are printed (the minimum is
the figure least disturbed by other load). The objective is bilinrec's formula applied to each
method's final factors. bilinrec's time per sweep is the sweep alone (median within a run; its
per-iteration objective is excluded); ``implicit``'s is the wall time of ``fit`` over the sweeps.
The same is also measured in CPU seconds of the process (``cpu_ms_per_sweep_min``, all threads),
which a machine shared with other jobs distorts less than wall time.
Peak memory is tracemalloc's peak during a method's last run (NumPy allocations only; ``implicit``'s
C++ buffers are not seen) and the process's maximum RSS so far (whole process; run one dataset
per invocation so that peaks do not mix). ``time_vs_target`` is the ratio to the issue-#17
target (exact: 2x ``implicit``'s CG sweep; CG: ``implicit``'s CG sweep; ``cpu_vs_target`` the
same in CPU time) and ``rss_vs_2GB`` the CG run's whole-process peak over 2 GB; <= 1 is met.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from common import movielens_100k, synthetic_20m
from threadpoolctl import threadpool_limits

from bilinrec.models.als import ALS


def run_once(method: str, C: sp.csr_matrix, U: np.ndarray, V: np.ndarray, sweeps: int,
             threads: int) -> tuple[float, float, np.ndarray, np.ndarray, int]:
    """One timed run of ``method`` from factors (U, V): (seconds and CPU seconds per sweep, U, V,
    traced peak bytes)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    if method.startswith("bilinrec"):
        model = ALS.from_factors(U.copy(), V.copy(), regularization=0.01, solver=method.split("-")[1],
                                 num_threads=threads, iterations=sweeps)
        model.fit(C, warm_start=True)
        records = [r for r in model.history_ if r["phase"] == "sweep"]
        per_sweep = float(np.median([r["seconds"] for r in records]))
        cpu_per_sweep = float(np.median([r["cpu_seconds"] for r in records]))
    else:
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model = AlternatingLeastSquares(factors=U.shape[1], regularization=0.01, iterations=sweeps,
                                            use_cg=method == "implicit-cg", dtype=U.dtype,
                                            calculate_training_loss=False, num_threads=threads)
            model.user_factors, model.item_factors = U.copy(), V.copy()
            t0, cpu0 = time.perf_counter(), time.process_time()
            model.fit(C, show_progress=False)
            per_sweep, cpu_per_sweep = (time.perf_counter() - t0) / sweeps, (time.process_time() - cpu0) / sweeps
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if method.startswith("bilinrec"):
        return per_sweep, cpu_per_sweep, model.user_factors_, model.item_factors_, peak
    return per_sweep, cpu_per_sweep, model.user_factors, model.item_factors, peak


def bench(C: sp.csr_matrix, factors: int, sweeps: int, rounds: int, threads: int, dtype: np.dtype,
          methods: list[str]) -> list[dict]:
    """Round-robin over methods, ``rounds`` times (the machine may be shared: min is the robust figure)."""
    start = ALS(factors=factors, dtype=dtype, random_state=0)
    start._init_factors(C.shape)
    times: dict[str, list[float]] = {m: [] for m in methods}
    cpu_times: dict[str, list[float]] = {m: [] for m in methods}
    final: dict[str, tuple] = {}
    for _ in range(rounds):
        for method in methods:
            per_sweep, cpu_per_sweep, U, V, peak = run_once(method, C, start.user_factors_, start.item_factors_,
                                                            sweeps, threads)
            times[method].append(per_sweep)
            cpu_times[method].append(cpu_per_sweep)
            final[method] = (U, V, peak)
    rows = []
    for method in methods:
        U, V, peak = final[method]
        objective = ALS.from_factors(np.asarray(U, np.float64), np.asarray(V, np.float64),
                                     regularization=0.01).objective(C)
        rows.append({"method": method, "ms_per_sweep_min": 1e3 * min(times[method]),
                     "ms_per_sweep_median": 1e3 * float(np.median(times[method])),
                     "cpu_ms_per_sweep_min": 1e3 * min(cpu_times[method]),
                     "objective": objective, "traced_peak_MiB": peak / 2**20,
                     "max_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-100k"], choices=["ml-100k", "synthetic-20m"])
    parser.add_argument("--factors", type=int, default=100)
    parser.add_argument("--sweeps", type=int, default=5, help="sweeps per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per method, interleaved")
    parser.add_argument("--threads", type=int, default=2, help="threads for every method")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--cache", type=Path, default=None,
                        help="synthetic-20m: load the matrix from this .npz (written there first if missing), "
                             "so that the process's peak memory is not that of generating it")
    parser.add_argument("--methods", nargs="+",
                        default=["bilinrec-cholesky", "bilinrec-cg", "implicit-exact", "implicit-cg"])
    args = parser.parse_args(argv)
    results = []
    for name in args.datasets:
        t0 = time.perf_counter()
        if name == "ml-100k":
            C = movielens_100k()
        elif args.cache is not None and args.cache.exists():
            C = sp.load_npz(args.cache).tocsr()
        else:
            C = synthetic_20m()
            if args.cache is not None:
                sp.save_npz(args.cache, C)
        print(f"{name}: {C.shape[0]} x {C.shape[1]}, {C.nnz} cells (built in {time.perf_counter() - t0:.1f} s)",
              flush=True)
        C = C.astype(np.float32).astype(np.float64)  # implicit keeps confidences in float32: same data
        for row in bench(C, args.factors, args.sweeps, args.rounds, args.threads, np.dtype(args.dtype),
                         args.methods):
            results.append({"dataset": name, "factors": args.factors, "dtype": args.dtype,
                            "threads": args.threads, **row})
            print(f"  {row['method']:<18} {row['ms_per_sweep_min']:10.1f} ms/sweep (min)", flush=True)
    table = pd.DataFrame(results)
    # issue #17 targets: exact sweep <= 2x implicit's CG sweep (ml-100k, 1 thread); CG sweep
    # <= implicit's CG sweep and <= 2 GB whole-process peak RSS (synthetic 20M, 2 threads)
    for (name, _), group in table.groupby(["dataset", "factors"]):
        ref = group.loc[group["method"] == "implicit-cg", "ms_per_sweep_min"]
        if ref.empty:
            continue
        ref = float(ref.iloc[0])
        cpu_ref = float(group.loc[group["method"] == "implicit-cg", "cpu_ms_per_sweep_min"].iloc[0])
        for idx, row in group.iterrows():
            if row["method"] in ("bilinrec-cholesky", "bilinrec-cg"):
                factor = 2 if row["method"] == "bilinrec-cholesky" else 1
                table.loc[idx, "time_vs_target"] = row["ms_per_sweep_min"] / (factor * ref)
                table.loc[idx, "cpu_vs_target"] = row["cpu_ms_per_sweep_min"] / (factor * cpu_ref)
            if row["method"] == "bilinrec-cg":
                table.loc[idx, "rss_vs_2GB"] = row["max_rss_MiB"] * 2**20 / 2e9
    print(table.to_markdown(index=False, floatfmt=".6g"))


if __name__ == "__main__":
    main()
