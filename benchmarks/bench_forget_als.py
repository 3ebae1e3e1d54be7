"""One-user forget of ALS at ML-20M scale: the default forget, a certified forget, Unlearn-ALS and retraining.

Run on demand (not part of the test suite)::

    python benchmarks/bench_forget_als.py --scale 0.05      # quick check (~1M cells)
    python benchmarks/bench_forget_als.py                   # 138,493 x 26,744, ~20M cells

Data: a random implicit-feedback matrix of ML-20M shape (skewed user and item popularity, as
``common.synthetic_20m``; ``--scale`` shrinks users, items and cells alike), confidences
uniform in [1, 5]. Model: 64 factors, float64, regularization 0.01, built by ``--cg-sweeps``
(default 12) warm CG sweeps (3 CG steps per row) from random factors followed by
``--exact-sweeps`` (default 2) exact (Cholesky) sweeps -- close to a fixed point, not at one. Its
level, the largest row residual of the trained model on its data (``ALS.max_row_residual``: one
residual pass plus the cell Grams of the rows with the most cells, cached on the model by content
hash and timed apart, once per model), is printed as information only: nothing is derived from it.

``--tolerance`` (default 1.0) is the certified forget's absolute bound on every row residual of
the result on the reduced data. It is the caller's choice, fixed on the command line, not taken
from the model at run time; the default is a round number a little above the default model's
level (0.7904 measured on 2026-12-06), so that a forget from that model can be certified without
retraining it. ``--loose-sweeps CG,EXACT`` (default ``3,1``; ``none`` to skip) also builds a looser
model (level ~8.9): certifying a forget from it at the same absolute tolerance means repairing
the whole model, capped at ``--loose-max-rounds`` rounds; the table says how far it got.

Forgotten: a typical user (stored cells closest to the mean, ~144) and the heaviest user. Racers:

* ``local``: ``forget(method="certified")`` with no tolerance -- **the default forget**: every
  user and item of a deleted cell solved exactly on the reduced data (a user left without cells
  becomes exactly zero), no certificate;
* ``certified``: ``forget(method="certified", tolerance=--tolerance)``: the same, then rows
  re-solved (``--certified-solver``: exact by default, or CG steps), largest residual first, until
  every row residual is within the tolerance (at most ``--max-rounds`` rounds after the two
  forced ones). The typical user's row is followed by a second typical user forgotten from the
  result (``next``: the residual state carried over);
* ``unlearn``: ``forget(method="exact")`` -- Unlearn-ALS (local update + full sweeps), capped at
  ``--unlearn-sweeps`` sweeps (its gap is measured after the cap, and certified against the same
  tolerance);
* ``retrain``: NOT run at full size: one exact sweep on the reduced data is timed and multiplied
  by the sweeps the original model was built with (the same stopping rule) -- an extrapolation.

Columns: ``gap`` is the result's largest row residual on the reduced data (as the forget
maintains it), ``verified_gap`` the same recomputed from scratch by a full residual pass;
``zero_row`` whether the forgotten user's row is exactly zero (what retraining gives a user with
no cells left); ``rounds`` all rounds (the first two forced); ``vs_target`` is seconds / 1 s
(issue #31: the default forget of a typical user within 1 s on 2 cores); <= 1 is met. Peak
memory is the process's maximum RSS. The compiled kernels are warmed up on a tiny problem first
(they compile once per installation, cached on disk).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from common import synthetic_20m

from bilinrec.models.als import ALS, apply_deletions, user_history


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of ML-20M's users, items and cells")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--cg-sweeps", type=int, default=12)
    parser.add_argument("--exact-sweeps", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1.0,
                        help="the certified forget's absolute bound on every row residual (the caller's choice; "
                             "default 1.0, a little above the default model's level, about 0.79)")
    parser.add_argument("--max-rounds", type=int, default=100,
                        help="rounds of the certified forget after the two forced ones (forget's default 100)")
    parser.add_argument("--loose-sweeps", default="3,1",
                        help="CG,EXACT sweeps of a looser model also timed (typical user); 'none' to skip")
    parser.add_argument("--loose-max-rounds", type=int, default=30,
                        help="cap of rounds of the certified forget on the looser model")
    parser.add_argument("--unlearn-sweeps", type=int, default=1, help="cap of the Unlearn-ALS racer")
    parser.add_argument("--threads", type=int, default=2, help="ALS num_threads (worker threads)")
    parser.add_argument("--certified-solver", choices=["cholesky", "cg"], default="cholesky",
                        help="row re-solves of the certified forget after the forced rounds: exact (normal matrices "
                             "by GEMM), or --certified-cg-steps CG steps")
    parser.add_argument("--certified-cg-steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder keeping the data and the built models between runs (built and saved when absent)")
    args = parser.parse_args(argv)
    tolerance = args.tolerance
    # the synthetic confidences are drawn per cell, independent of other records: nothing to recompute
    warnings.filterwarnings("ignore", message="forgetting with confidences given pre-computed")

    t0 = time.perf_counter()
    data_file = args.cache / f"synthetic20m_s{args.seed}_x{args.scale:g}.npz" if args.cache else None
    if data_file is not None and data_file.is_file():
        C = sp.load_npz(data_file).tocsr()
    else:
        C = synthetic_20m(args.seed, scale=args.scale)
        if data_file is not None:
            args.cache.mkdir(parents=True, exist_ok=True)
            sp.save_npz(data_file, C, compressed=False)
    print(f"data: {C.shape[0]} users x {C.shape[1]} items, {C.nnz} cells ({time.perf_counter() - t0:.1f} s)",
          flush=True)
    params = {"factors": args.factors, "regularization": 0.01, "num_threads": args.threads}

    def build(cg_sweeps: int, exact_sweeps: int) -> tuple[ALS, list[float], float]:
        t0 = time.perf_counter()
        model_file = (args.cache / f"model_x{args.scale:g}_f{args.factors}_s{args.seed}_cg{cg_sweeps}_ex{exact_sweeps}.npz"
                      if args.cache else None)
        if model_file is not None and model_file.is_file():
            model = ALS.load(model_file).set_params(num_threads=args.threads)
            built = json.loads(model_file.with_suffix(".json").read_text())
            print(f"model: {cg_sweeps} CG + {exact_sweeps} exact sweeps, loaded from {model_file} (built in "
                  f"{built['seconds']:.1f} s)", flush=True)
            return model, built["sweeps"], built["seconds"]
        model = ALS(**params, solver="cg", cg_steps=3, iterations=cg_sweeps, random_state=args.seed).fit(C)
        sweeps = [r["seconds"] for r in model.history_ if r["phase"] == "sweep"]
        if exact_sweeps:
            model.set_params(solver="cholesky", iterations=exact_sweeps).fit(C, warm_start=True)
            sweeps += [r["seconds"] for r in model.history_ if r["phase"] == "sweep"]
        seconds = time.perf_counter() - t0
        exact = float(np.median(sweeps[cg_sweeps:])) if exact_sweeps else float("nan")
        print(f"model: {cg_sweeps} CG + {exact_sweeps} exact sweeps ({seconds:.1f} s; exact sweep {exact:.1f} s)",
              flush=True)
        if model_file is not None:
            model.save(model_file)
            model_file.with_suffix(".json").write_text(json.dumps({"sweeps": sweeps, "seconds": seconds}))
        return model, sweeps, seconds

    def level_of(model: ALS) -> tuple[float, float]:
        t0 = time.perf_counter()
        level = model.max_row_residual(C)  # also caches the residual state every forget below starts from
        return level, time.perf_counter() - t0

    model, build_sweeps, build_seconds = build(args.cg_sweeps, args.exact_sweeps)
    level, level_seconds = level_of(model)
    print(f"model level (largest row residual of the trained model, information only): {level:.4g} "
          f"({level_seconds:.1f} s, once per model); tolerance {tolerance:g} (fixed by --tolerance)", flush=True)

    tiny = sp.random(60, 40, density=0.2, format="csr", random_state=args.seed, data_rvs=lambda n: 1 + np.ones(n))
    # compile the kernels (cached on disk) outside the timings
    warm = ALS(factors=4, solver=args.certified_solver, iterations=1, num_threads=args.threads).fit(tiny)
    warm.forget(tiny, users=[int(np.argmax(np.diff(tiny.indptr)))], tolerance=1e-6)
    counts = np.diff(C.indptr)
    typical = int(np.argmin(np.abs(counts - counts.mean())))
    heavy = int(np.argmax(counts))
    rows: list[dict] = []

    def row(user: str, model_name: str, racer: str, rec, out, gone_users: list[int], reduced,
            verify: bool) -> dict:
        d = rec.details
        t0 = time.perf_counter()
        verified = max(float(r.max()) for r in out.row_residuals(reduced)) if verify else rec.gap
        verify_seconds = time.perf_counter() - t0
        rounds = d.get("rounds")
        entry = {"user": user, "model (level)": model_name, "racer": racer, "seconds": rec.seconds,
                 "rows_touched": rec.rows_touched, "gap": rec.gap, "verified_gap": verified,
                 "tolerance": rec.bound, "certified": rec.certified if rec.bound is not None else "-",
                 "zero_row": all(not out.user_factors_[u].any() for u in gone_users),
                 "rounds": (f"{len(rounds)} ({sum(r['forced'] for r in rounds)} forced)" if rounds is not None
                            else f"{d['sweeps']} sweeps"),
                 "users/items": (f"{d['users_touched']}/{d['items_touched']}" if "users_touched" in d else "all"),
                 "state": d.get("state_source", "-")}
        print(f"  {racer}: {rec.seconds:.3f} s, {rec.rows_touched} rows, gap {rec.gap:.4g}, certified "
              f"{entry['certified']}, zero row {entry['zero_row']}, rounds {entry['rounds']} "
              f"(verify {verify_seconds:.1f} s)", flush=True)
        return entry

    tight = f"{args.cg_sweeps} CG + {args.exact_sweeps} exact ({level:.4g})"
    forgetter = model.copy().set_params(solver=args.certified_solver, cg_steps=args.certified_cg_steps)
    retrain_sweep = None
    for label, user in (("typical", typical), ("heavy", heavy)):
        pairs = user_history(C, [user])
        name = f"{label} ({user}, {len(pairs)} cells)"
        reduced = apply_deletions(C, pairs).C
        print(f"{name}:", flush=True)
        out, rec = forgetter.forget(C, users=[user], method="certified")
        rows.append(row(name, tight, "local (default forget, no tolerance)", rec, out, [user], reduced, True))
        out, rec = forgetter.forget(C, users=[user], method="certified", tolerance=tolerance,
                                    max_iterations=args.max_rounds)
        rows.append(row(name, tight, f"certified ({rec.details['row_solver']})", rec, out, [user], reduced, True))
        if label == "typical":  # a second user forgotten from the result: the state carried over
            following = int(np.argsort(np.abs(counts - counts.mean()), kind="stable")[1])
            gone = np.vstack([pairs, user_history(C, [following])])
            out2, rec2 = out.forget(C, users=[following], method="certified", tolerance=tolerance,
                                    max_iterations=args.max_rounds)
            rows.append(row(f"next typical ({following}, {len(gone) - len(pairs)} cells), after {user}", tight,
                            f"certified ({rec2.details['row_solver']})", rec2, out2, [user, following],
                            apply_deletions(C, gone).C, True))
        out, rec = model.forget(C, users=[user], method="exact", tolerance=tolerance,
                                max_iterations=args.unlearn_sweeps, tol=0.0)
        rows.append(row(name, tight, f"unlearn (exact, {args.unlearn_sweeps} sweep cap)", rec, out, [user], reduced,
                        False))
        if retrain_sweep is None:  # one exact sweep on the reduced data; the same cost for either user
            one = out.copy().set_params(solver="cholesky", iterations=1, tol=0.0).fit(reduced, warm_start=True)
            retrain_sweep = float(one.history_[-1]["seconds"])
            print(f"one exact sweep on the reduced data: {retrain_sweep:.1f} s", flush=True)
        n_sweeps = len(build_sweeps)
        rows.append({"user": name, "model (level)": tight,
                     "racer": f"retrain (extrapolated: {n_sweeps} x {retrain_sweep:.1f} s)",
                     "seconds": retrain_sweep * n_sweeps, "rows_touched": n_sweeps * sum(C.shape), "gap": None,
                     "verified_gap": None, "tolerance": None, "certified": "-", "zero_row": True,
                     "rounds": f"{n_sweeps} sweeps", "users/items": "all", "state": "-"})
    if args.loose_sweeps != "none":  # the same forget on a looser model, at the same absolute tolerance
        cg_loose, exact_loose = (int(v) for v in args.loose_sweeps.split(","))
        loose, _, _ = build(cg_loose, exact_loose)
        loose_level, loose_seconds = level_of(loose)
        print(f"loose model level: {loose_level:.4g} ({loose_seconds:.1f} s)", flush=True)
        loose.set_params(solver=args.certified_solver, cg_steps=args.certified_cg_steps)
        pairs = user_history(C, [typical])
        name = f"typical ({typical}, {len(pairs)} cells)"
        reduced = apply_deletions(C, pairs).C
        loose_name = f"{cg_loose} CG + {exact_loose} exact ({loose_level:.4g})"
        print(f"{name}, loose model:", flush=True)
        out, rec = loose.forget(C, users=[typical], method="certified")
        rows.append(row(name, loose_name, "local (default forget, no tolerance)", rec, out, [typical], reduced, True))
        out, rec = loose.forget(C, users=[typical], method="certified", tolerance=tolerance,
                                max_iterations=args.loose_max_rounds)
        rows.append(row(name, loose_name, f"certified ({rec.details['row_solver']}, cap {args.loose_max_rounds} "
                        "rounds)", rec, out, [typical], reduced, True))
    table = pd.DataFrame(rows)
    table["vs_target"] = table["seconds"] / 1.0
    print()
    print(table.to_markdown(index=False, floatfmt=".4g"))
    print()
    for racer in ("local", "certified"):
        first = table[table["racer"].str.startswith(racer)].iloc[0]
        print(f"target (typical user, {racer}, <= 1 s on 2 cores): {'MET' if first['seconds'] <= 1 else 'NOT MET'}, "
              f"{first['seconds']:.3f} s = {first['vs_target']:.2f} x target")
    print(f"model build {build_seconds:.0f} s; level {level:.4g} computed once per model in {level_seconds:.2f} s "
          f"(excluded from the forget seconds: cached); tolerance {tolerance:g}; peak RSS {rss_mib():.0f} MiB; "
          f"retrain = {len(build_sweeps)} sweeps (as the original was built) x one exact sweep measured on the "
          "typical user's reduced data: an extrapolation, not a measurement; unlearn's seconds include the "
          "objective it evaluates after each phase, not the gap pass after it")


if __name__ == "__main__":
    main()
