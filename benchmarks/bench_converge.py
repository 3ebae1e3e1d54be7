"""Time to the converged fixed point: plain and accelerated ALS, retraining and unlearning.

The figure of merit is the cost to a *converged* answer, not the cost of a sweep. On ml-100k
(Unlearn-ALS's confidences: 5 x BM25 of ratings >= 3; 100 factors, lambda = 0.01, float64) every
racer is run from its start until its relative objective change is below ``--tol`` (or
``--max-sweeps`` iterations). ``F*`` is the lowest objective any racer reached on that data (the
table names the racer). Per racer the table gives the cost until its objective is within
``--within`` (relative) of ``F*``:

* ``to_within_sweeps``: sweep equivalents, counted honestly: row solves / rows (rejected
  Anderson starts included; x ``r_cg`` for the CG racers, whose row solves are 3 CG steps)
  + objective evaluations x ``r_obj`` + gauge balancings x ``r_bal`` + accelerated sweeps
  x ``r_and`` (the Anderson bookkeeping: reading the states, the proposal at full memory,
  setting the proposed start; ``r_and_joint`` over users and items for the balanced
  racers, ``r_and_items`` for item-side Anderson) or x ``r_ncg`` (ALS-NCG's plane polynomial,
  its search and the new point), where every ``r_*`` is the CPU time of that
  work over one exact sweep's, measured at the start of the run on this machine.
  Every racer pays for the objective it evaluates after each sweep (its stopping rule);
  ``balanced_anderson`` also for its guard's evaluation of the extrapolated point, ALS-NCG for
  the objective of the balanced sweep its guard compares with.
* ``to_within_seconds``: wall seconds from the racer's start (everything it does included, the
  benchmark's residual checks excluded).
* ``residual_sweeps``: the first checked iteration (every ``--check-every``) at which the largest
  row residual was at most ``--residual``.

Racers: retraining from the common random start with the exact solver (plain, Anderson,
balanced Anderson, ALS-NCG) and CG (3 steps; plain, Anderson, ALS-NCG); unlearning (Unlearn-ALS, exact solver,
warm-started from the original model, which is the balanced-Anderson fit to ``--tol``) plain,
Anderson, balanced Anderson and ALS-NCG, against balanced-Anderson and ALS-NCG retraining on the reduced data, at
one record, one user's history and 1%, 10% and 20% of the training positives (uniform,
``--seeds``, each also the random start). The accelerated racers use ``--memory`` and
``--mixing`` (Anderson's memory and mixing parameter). ``vs_target`` = to_within_sweeps / 100
(issue 34's target for retraining with the accelerated solver); <= 1 is met. The count depends
on the start, so ``--seeds`` races several and the target is read on the worst.

    BILINREC_DATA_DIR=/path/with/ml-100k.zip python benchmarks/bench_converge.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from common import movielens_100k_binary

from bilinrec.experiments.unlearn.race import deletion_set
from bilinrec.models.als import ALS, Weighting, apply_deletions
from bilinrec.models.als.anderson import Anderson
from bilinrec.models.als.balance import balance
from bilinrec.models.als.cells import build_cells
from bilinrec.models.als.ncg import plane_argmin, plane_coefficients

SIZES = ("record", "user", 0.01, 0.1, 0.2)
ACCELERATIONS = {"": None, "_anderson": "anderson", "_balanced": "balanced_anderson", "_ncg": "ncg"}


def cpu_seconds(work, repeats: int) -> float:
    work()
    start = time.process_time()
    for _ in range(repeats):
        work()
    return (time.process_time() - start) / repeats


def unit_costs(model: ALS, X) -> dict[str, float]:
    """CPU time of one CG sweep (``cg``: ``cg_steps`` CG steps per row), one objective evaluation
    (``obj``), one balancing (``bal``) and one iteration's Anderson bookkeeping at full memory
    (``and_joint``: users and items, as ``balanced_anderson`` keeps it; ``and_items``: the item
    side, as ``anderson``), each over one exact sweep's."""
    cells = build_cells(model._confidences(X), model.feedback, None, None)
    U, V = model.user_factors_.copy(), model.item_factors_.copy()
    reg_u, reg_i = model._reg(cells, 0), model._reg(cells, 1)
    rng = np.random.default_rng(0)

    def bookkeeping(state, set_state, shape, repeats=30):
        # what an accelerated iteration adds to its sweep: the states read before and after it,
        # the proposal (memory full), and setting the proposed start; on sweeps that move the
        # state randomly (equal steps would make the residual differences zero and the least
        # squares degenerate) and with the caches evicted before each, as a sweep evicts them
        acc = Anderson(model.anderson_memory, model.anderson_mixing)
        history = [rng.standard_normal(shape) for _ in range(model.anderson_memory + 2)]
        for start, image in zip(history, history[1:]):
            acc.propose(start, image)
        steps = [state() + 1e-3 * rng.standard_normal(shape) for _ in range(4)]
        flush = np.empty(1 << 23)  # 64 MB, more than the last-level cache
        spent = 0.0
        for i in range(repeats):
            flush[:] = i
            start = time.process_time()
            begin, _ = state(), state()
            set_state(acc.propose(begin, steps[i % len(steps)]))
            spent += time.process_time() - start
        return spent / repeats

    def ncg_iteration():
        # what an ALS-NCG iteration adds to its sweep, balancing and two objectives: reading the
        # states, the plane polynomial over the preconditioned and the last step, its search, the new point
        x, image = model._state(), model._state()
        shared = dict(n_users=len(U), k=U.shape[1], reg_u=reg_u, reg_i=reg_i)
        preconditioned = image - x + 1e-3 * moves[0]
        a, b = plane_argmin(plane_coefficients(cells, x, preconditioned, 1e-3 * moves[1], **shared))
        model._set_state(x + a * preconditioned + b * 1e-3 * moves[1])
        model._set_state(x)

    moves = rng.standard_normal((2, *model._state().shape))
    with model._threads():  # as inside fit: BLAS single-threaded when num_threads is set
        sweep = cpu_seconds(lambda: model._sweep(cells), 10)
        costs = {"cg": cpu_seconds(lambda: model._sweep(cells, "cg"), 10),
                 "obj": cpu_seconds(lambda: model._objective(cells), 30),
                 "bal": cpu_seconds(lambda: balance(U.copy(), V.copy(), reg_u, reg_i), 30),
                 "and_joint": bookkeeping(model._state, model._set_state, model._state().shape),
                 "and_items": bookkeeping(model._item_state, model._set_item_state, model._item_state().shape),
                 "ncg": cpu_seconds(ncg_iteration, 30)}
    return {name: value / sweep for name, value in costs.items()}


class Watch:
    """Callback: wall time of every record (its own time excluded) and the first checked iteration
    at which the largest row residual fell to ``level``."""

    def __init__(self, C, level: float, every: int):
        self.C, self.level, self.every, self.hit = C, level, every, None
        self.start, self.own, self.times = time.perf_counter(), 0.0, []

    def __call__(self, model: ALS, record: dict) -> None:
        now = time.perf_counter()
        self.times.append(now - self.start - self.own)
        if self.hit is None and record["iteration"] % self.every == 0:
            if max(float(r.max()) for r in model.row_residuals(self.C)) <= self.level:
                self.hit = record["iteration"]
        self.own += time.perf_counter() - now


def cost_to(hist: list[dict], times: list[float], n_rows: int, units: dict[str, float], accelerated: str | None,
            target: float, row_solve: float = 1.0) -> tuple[float, float]:
    """(sweep equivalents, wall seconds) until the objective is at most ``target`` (NaN: never).
    ``accelerated``: the unit cost of the racer's Anderson bookkeeping per sweep (None: plain);
    ``row_solve``: the cost of its sweep in exact sweeps (``units["cg"]`` for the CG racers)."""
    spent = 0.0
    steps = iter(times)
    for record in hist:
        sweep = record["phase"] == "sweep"
        spent += row_solve * record.get("rows_solved", 0) / n_rows + record.get("objectives", 1) * units["obj"] \
            + record.get("balanced", 0) * units["bal"] + (units[accelerated] if sweep and accelerated else 0.0)
        seconds = next(steps) if sweep else 0.0
        if record["objective"] <= target:
            return spent, seconds
    return float("nan"), float("nan")


def race(run, X, residual: float, every: int) -> tuple[ALS, Watch]:
    watch = Watch(X, residual, every)
    model = run(watch)
    return model, watch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=int, default=100)
    parser.add_argument("--regularization", type=float, default=0.01)
    parser.add_argument("--tol", type=float, default=1e-10, help="every racer's stopping rule (relative change)")
    parser.add_argument("--max-sweeps", type=int, default=2000)
    parser.add_argument("--within", type=float, default=1e-6, help="relative distance to F* that counts as converged")
    parser.add_argument("--residual", type=float, default=1e-3, help="largest row residual that counts as converged")
    parser.add_argument("--check-every", type=int, default=10, help="iterations between residual checks")
    parser.add_argument("--memory", type=int, default=ALS().anderson_memory,
                        help="anderson_memory of the accelerated racers (default: ALS's)")
    parser.add_argument("--mixing", type=float, default=ALS().anderson_mixing,
                        help="anderson_mixing of the accelerated racers (default: ALS's)")
    parser.add_argument("--sizes", nargs="*", default=[str(s) for s in SIZES])
    parser.add_argument("--skip-retrain", action="store_true", help="only the unlearning settings")
    parser.add_argument("--racers", nargs="*", help="run only these racers (e.g. retrain_cholesky_balanced); default all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="random starts (and deletion draws) to race; the target is checked on the worst")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    X = movielens_100k_binary()
    weighting = Weighting("bm25", scale=5.0, K1=100.0, B=0.9)
    base = dict(factors=args.factors, regularization=args.regularization, dtype=np.float64, tol=args.tol,
                iterations=args.max_sweeps, random_state=args.seeds[0], weighting=weighting,
                num_threads=args.threads, anderson_memory=args.memory, anderson_mixing=args.mixing)
    n_rows = sum(X.shape)
    warm = ALS(**{**base, "iterations": 3}).fit(X)  # compiles the kernels outside the races
    ALS(**{**base, "iterations": 1, "solver": "cg"}).fit(X)
    units = unit_costs(warm, X)
    print("unit costs (CPU, over one exact sweep): " + ", ".join(f"r_{k} = {v:.4f}" for k, v in units.items()),
          flush=True)
    rows = []

    def settle(setting: str, seed: int, racers: dict) -> None:
        racers = {name: racer for name, racer in racers.items() if not args.racers or name in args.racers}
        if not racers:
            return
        results = {name: race(run, data, args.residual, args.check_every) for name, (run, data) in racers.items()}
        best = min(results, key=lambda name: results[name][0].history_[-1]["objective"])
        f_star = results[best][0].history_[-1]["objective"]
        for name, (model, watch) in results.items():
            hist = model.history_
            accelerated = ("and_joint" if name.endswith("_balanced") else "and_items" if name.endswith("_anderson")
                           else "ncg" if name.endswith("_ncg") else None)
            sweeps, seconds = cost_to(hist, watch.times, n_rows, units, accelerated, f_star * (1 + args.within),
                                      units["cg"] if name.startswith("retrain_cg") else 1.0)
            rows.append({"setting": setting, "seed": seed, "racer": name,
                         "iterations": sum(r["phase"] == "sweep" for r in hist),
                         "rejected": sum(r.get("rejected", 0) for r in hist),
                         "last_rel_change": hist[-1]["rel_change"], "above_f_star": hist[-1]["objective"] / f_star - 1,
                         "f_star": f_star, "f_star_by": best, "to_within_sweeps": sweeps,
                         "to_within_seconds": seconds,
                         "residual_sweeps": watch.hit if watch.hit is not None else float("nan"),
                         "vs_target": sweeps / 100})
            print(rows[-1], flush=True)

    for seed in args.seeds:
        seeded = {**base, "random_state": seed}
        if not args.skip_retrain:
            settle("retrain (full data)", seed, {
                f"retrain_{solver}{suffix}":
                    (lambda w, solver=solver, acc=acc: ALS(**{**seeded, "solver": solver, "acceleration": acc})
                     .fit(X, callback=w), X)
                for solver in ("cholesky", "cg") for suffix, acc in ACCELERATIONS.items()
                if not (solver == "cg" and acc == "balanced_anderson")})
        original = ALS(**{**seeded, "acceleration": "balanced_anderson"}).fit(X) if args.sizes else None
        for size in args.sizes:
            size = size if size in ("record", "user") else float(size)
            pairs = deletion_set(X, size, "uniform", np.random.default_rng(seed))
            reduced = apply_deletions(X, pairs, "retrain").C
            settle(f"unlearn {size}", seed, {
                **{f"unlearn{suffix}":
                   (lambda w, acc=acc: original.copy().set_params(acceleration=acc).unlearn(
                       X, pairs, max_iterations=args.max_sweeps, tol=args.tol, callback=w), reduced)
                   for suffix, acc in ACCELERATIONS.items()},
                **{f"retrain_cholesky{suffix}": (lambda w, acc=acc: ALS(**{**seeded, "acceleration": acc})
                                                 .fit(reduced, callback=w), reduced)
                   for suffix, acc in (("_balanced", "balanced_anderson"), ("_ncg", "ncg"))}})
    table = pd.DataFrame(rows)
    cols = ["setting", "seed", "racer", "iterations", "rejected", "last_rel_change", "above_f_star", "to_within_sweeps",
            "to_within_seconds", "residual_sweeps", "vs_target"]
    by = ", ".join(table.groupby(["setting", "seed"], sort=False)["f_star_by"].first())
    print(f"\nF* per setting and seed: lowest objective reached (by: {by}); "
          f"within {args.within:g} of it; residual <= {args.residual:g} (checked every {args.check_every} iterations); "
          f"vs_target = sweep equivalents to within / 100; anderson_memory {args.memory}, anderson_mixing "
          f"{args.mixing:g}; {args.threads} thread(s)")
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if len(args.seeds) > 1:  # the target in every run: a racer that did not get within counts as NaN, i.e. not met
        worst = table.groupby(["setting", "racer"], sort=False)["vs_target"].agg(
            best="min", worst=lambda v: v.max() if v.notna().all() else float("nan"))
        print(f"\nvs_target over seeds {args.seeds} (worst NaN: some seed did not get within):")
        print(worst.to_string(float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
