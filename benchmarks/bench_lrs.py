"""Benchmark of AMHT-LRS rounds (run on demand; prints a table).

For t in {1e3, 1e4, 1e5} users (d=100, r=5, k=5, m=20 samples per user) it reports the
seconds per round (wall clock, and process CPU time per round including the initialisation,
which is what matters on a shared machine), the ratio of that CPU time to a FLOP-count
floor, and the peak memory of the fit (tracemalloc: NumPy allocations beyond the data itself).
Target: <= 10 s per round at t = 1e5 on a 2-core machine.

The floor is the arithmetic every round must do at least once, timed at the machine's
measured dense matrix-multiply rate (FLOP per CPU second): forming ``X U`` and ``X^T (r w^T)`` for the shared step
(``4 N d r``), the thresholding gradient ``X_i^T r_i`` (``2 N d``) and the per-user Gram
matrices of ``[X_i U, X_i[:, S_i]]`` (``N (r + k)^2``).

Usage: python benchmarks/bench_lrs.py [--users 1000 10000 100000] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from bilinrec.models.lrs import AMHTLRS
from bilinrec.models.lrs.synthetic import make_problem


def gemm_rate(n: int = 2000, repeats: int = 3) -> float:
    """Achieved FLOP per CPU second of a square float64 matrix product (CPU time, so that a
    busy shared machine does not distort it)."""
    a = np.random.default_rng(0).standard_normal((n, n))
    a @ a
    start = time.process_time()
    for _ in range(repeats):
        a @ a
    return repeats * 2 * n**3 / (time.process_time() - start)


def floor_flops(n_samples: int, dim: int, rank: int, sparsity: int) -> float:
    return 4 * n_samples * dim * rank + 2 * n_samples * dim + n_samples * (rank + sparsity) ** 2


def bench(n_users: int, rounds: int, dim=100, rank=5, sparsity=5, samples=20, seed=0) -> dict:
    problem = make_problem(n_users, dim, rank, sparsity, samples, seed=seed)
    est = AMHTLRS(rank, sparsity, max_rounds=rounds, tol=0.0, min_loss=0.0)
    tracemalloc.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    est.fit(problem.X, problem.y, problem.users)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stamps = np.array([0.0] + [h["seconds"] for h in est.history_])
    per_round = float(np.median(np.diff(stamps)[1:])) if len(stamps) > 2 else float(stamps[-1])
    return {"users": n_users, "samples": len(problem.y), "rounds": est.n_rounds_, "total_s": total,
            "cpu_per_round": cpu / est.n_rounds_,
            "s_per_round": per_round, "peak_mb": peak / 2**20,
            "data_mb": (problem.X.nbytes + problem.y.nbytes) / 2**20,
            "floor_flops": floor_flops(len(problem.y), dim, rank, sparsity)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads):
        rate = gemm_rate()
        print(f"dense matmul rate: {rate / 1e9:.1f} GFLOP per CPU second ({args.threads} BLAS threads)")
        header = (f"{'users':>8} {'samples':>9} {'s/round':>8} {'cpu s/rd':>8} {'floor s':>8} {'ratio':>6} "
                  f"{'peak MB':>8} {'data MB':>8}")
        print(header)
        print("-" * len(header))
        for t in args.users:
            row = bench(t, args.rounds)
            floor = row["floor_flops"] / rate
            print(f"{row['users']:>8} {row['samples']:>9} {row['s_per_round']:>8.3f} {row['cpu_per_round']:>8.3f} {floor:>8.3f} "
                  f"{row['cpu_per_round'] / floor:>6.0f} {row['peak_mb']:>8.0f} {row['data_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
