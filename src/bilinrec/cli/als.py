"""``bilinrec als fit|forget``: train an ALS model, and make it forget interactions exactly.

Interactions files
    * CSV with a header and columns ``user,item,confidence`` (0-based integer ids; ``confidence``
      is the stored value: confidence for implicit feedback, rating for explicit feedback); or
    * ``.npz`` written by ``scipy.sparse.save_npz`` (users x items), or with arrays ``user``,
      ``item``, ``confidence``.
Deletion files
    CSV with a header and columns ``user,item`` (pairs that are observed in the interactions).

With ``--weighting`` (e.g. ``bm25``), ``confidence`` holds raw interactions (binary or counts) and
the model computes the confidences; ``forget`` then recomputes them on the reduced data, as
retraining would. The model file keeps a ledger of every forgotten pair: forgetting again from a
forgotten model with the original interactions removes the earlier deletions too.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bilinrec.models.als import (
    ALS,
    MODES,
    SCHEMES,
    Weighting,
    as_deletions,
    as_weighting,
)

log = logging.getLogger(__name__)


def read_interactions(path: str | Path, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    """Read an interactions CSV/NPZ (see module docstring) as a users x items CSR matrix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--interactions: {path} does not exist")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
        if {"data", "indices", "indptr", "shape", "format"} <= keys or {"row", "col", "data", "shape"} <= keys:
            matrix = sp.load_npz(path).tocsr()
            if shape is not None and matrix.shape != shape:
                raise ValueError(f"--interactions: matrix shape {matrix.shape} does not match the expected {shape}")
            return matrix
        if not {"user", "item", "confidence"} <= keys:
            raise ValueError(f"--interactions: {path} has neither a sparse matrix nor user/item/confidence arrays")
        with np.load(path, allow_pickle=False) as data:
            frame = pd.DataFrame({k: data[k] for k in ("user", "item", "confidence")})
    else:
        frame = pd.read_csv(path)
        missing = {"user", "item", "confidence"} - set(frame.columns)
        if missing:
            raise ValueError(f"--interactions: {path} lacks column(s) {', '.join(sorted(missing))}")
    users, items = _ids(frame["user"], "user"), _ids(frame["item"], "item")
    values = frame["confidence"].to_numpy(dtype=np.float64)
    if shape is None:
        shape = (int(users.max()) + 1 if users.size else 0, int(items.max()) + 1 if items.size else 0)
    elif users.size and (users.max() >= shape[0] or items.max() >= shape[1]):
        raise ValueError(f"--interactions: ids exceed the expected {shape[0]} users x {shape[1]} items")
    keys = users * max(shape[1], 1) + items
    if np.unique(keys).size != keys.size:
        raise ValueError(f"--interactions: {path} lists a (user, item) pair more than once")
    return sp.csr_matrix((values, (users, items)), shape=shape)


def read_deletions(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Read a deletion CSV (``user,item``) as validated (n, 2) pairs."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--delete: {path} does not exist")
    frame = pd.read_csv(path)
    missing = {"user", "item"} - set(frame.columns)
    if missing:
        raise ValueError(f"--delete: {path} lacks column(s) {', '.join(sorted(missing))}")
    pairs = np.column_stack([_ids(frame["user"], "user"), _ids(frame["item"], "item")])
    return as_deletions(pairs, shape)


def _ids(column: pd.Series, name: str) -> np.ndarray:
    values = column.to_numpy()
    if values.size and (not np.issubdtype(values.dtype, np.integer) or values.min() < 0):
        raise ValueError(f"column {name!r} must hold non-negative integer ids")
    return values.astype(np.int64)


def cmd_fit(args: argparse.Namespace) -> int:
    shape = None
    if args.n_users is not None or args.n_items is not None:
        if args.n_users is None or args.n_items is None:
            raise ValueError("--n-users and --n-items must be given together")
        shape = (args.n_users, args.n_items)
    C = read_interactions(args.interactions, shape=shape)
    model = ALS(factors=args.factors, regularization=args.regularization, feedback=args.feedback,
                solver=args.solver, cg_steps=args.cg_steps, dtype=np.dtype(args.dtype), iterations=args.iterations,
                tol=args.tol, random_state=args.seed, weighting=_weighting(args),
                use_bias=args.use_bias, scale_regularization=args.scale_regularization,
                num_threads=args.threads)
    start = time.perf_counter()
    model.fit(C, show_progress=not args.quiet)
    seconds = time.perf_counter() - start
    model.save(args.out)
    first, last = model.history_[0], model.history_[-1]
    print(f"ALS fit: {C.shape[0]} users x {C.shape[1]} items, {C.nnz} stored cells, "
          f"{model.factors} factors, {model.feedback} feedback, {model.solver} solver")
    print(f"  iterations      {model.train_iterations_}")
    print(f"  objective       {first['objective']:.6g} -> {last['objective']:.6g}")
    print(f"  time            {seconds:.2f} s ({1e3 * model.sweep_seconds_:.1f} ms per sweep)")
    print(f"  model           {args.out}")
    return 0


def _weighting(args: argparse.Namespace) -> Weighting | None:
    if args.weighting == "none":
        return None
    return Weighting(scheme=args.weighting, scale=args.weight_scale, alpha=args.weight_alpha, K1=args.bm25_k1,
                     B=args.bm25_b, rows=args.bm25_rows)


def cmd_forget(args: argparse.Namespace) -> int:
    model = ALS.load(args.model)
    shape = (model.user_factors_.shape[0], model.item_factors_.shape[0])
    C = read_interactions(args.interactions, shape=shape)
    pairs = read_deletions(args.delete, shape)
    before = model.objective(C)
    start = time.perf_counter()
    forgotten = model.unlearn(C, pairs, mode=args.mode, max_iterations=args.max_iterations, tol=args.tol,
                              show_progress=not args.quiet, frozen_weights=args.frozen_weights)
    seconds = time.perf_counter() - start
    forgotten.save(args.out)
    hist = forgotten.history_
    sweeps = sum(r["phase"] == "sweep" for r in hist)
    retrain = model.sweep_seconds_ * model.train_iterations_
    print(f"ALS forget ({args.mode}): {len(pairs)} deleted cells of {C.nnz}, "
          f"{np.unique(pairs[:, 0]).size} users, {np.unique(pairs[:, 1]).size} items affected")
    print(f"  objective       {before:.6g} on the original data")
    print(f"                  {hist[0]['objective']:.6g} -> {hist[-1]['objective']:.6g} on the reduced data")
    local = any(r["phase"] == "local" for r in hist)
    print(f"  iterations      {sweeps} full sweeps" + (" after a local update" if local else ""))
    if hist[-1]["rel_change"] is not None:
        print(f"  last rel change {hist[-1]['rel_change']:.3g}")
    print(f"  time            {seconds:.2f} s")
    weighting = as_weighting(model.weighting)
    if weighting is not None:
        print(f"  confidences     {weighting.scheme}, "
              + ("frozen (computed with the deleted records: NOT exact)" if args.frozen_weights and not weighting.cellwise
                 else "recomputed on the reduced data"))
    print(f"  ledger          {forgotten.forgotten_['count']} pair(s) forgotten in all, sha256 "
          f"{forgotten.forgotten_['sha256'][:16]}...")
    if len(pairs) == 0 and len(forgotten.history_) <= 1:
        print("  retrain est.    none: nothing was deleted, the model is unchanged")
    elif np.isfinite(retrain) and retrain > 0:
        print(f"  retrain est.    {retrain:.2f} s ({model.train_iterations_} sweeps x "
              f"{1e3 * model.sweep_seconds_:.1f} ms, as trained) -> wall-clock ratio {retrain / seconds:.1f}x "
              "(an estimate; a fair race uses one stopping rule: benchmarks/bench_unlearn.py)")
    else:
        print("  retrain est.    unknown (the model stores no training time)")
    print(f"  model           {args.out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``als fit`` and ``als forget`` on the ``bilinrec`` command line."""
    als = subparsers.add_parser("als", help="train ALS models and unlearn interactions",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = als.add_subparsers(dest="als_command", required=True, metavar="ACTION")

    fit = sub.add_parser("fit", help="train an ALS model on an interactions file")
    fit.add_argument("--interactions", required=True, help="CSV (user,item,confidence) or .npz")
    fit.add_argument("--out", required=True, help="model file to write (.npz)")
    fit.add_argument("--n-users", type=int, default=None, help="number of users (default: largest id + 1)")
    fit.add_argument("--n-items", type=int, default=None, help="number of items (default: largest id + 1)")
    fit.add_argument("--factors", type=int, default=100)
    fit.add_argument("--regularization", type=float, default=0.01)
    fit.add_argument("--feedback", choices=("implicit", "explicit"), default="implicit")
    fit.add_argument("--solver", choices=("cholesky", "cg"), default="cholesky")
    fit.add_argument("--cg-steps", type=int, default=3)
    fit.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    fit.add_argument("--iterations", type=int, default=15)
    fit.add_argument("--tol", type=float, default=0.0, help="stop when the relative objective change is below")
    fit.add_argument("--seed", type=int, default=0, help="random_state of the initial factors")
    fit.add_argument("--weighting", choices=("none", *SCHEMES), default="none",
                     help="compute confidences from the interactions (recomputed when forgetting)")
    fit.add_argument("--weight-scale", type=float, default=1.0, help="scale (schemes scale, bm25)")
    fit.add_argument("--weight-alpha", type=float, default=40.0, help="alpha (scheme linear: 1 + alpha x)")
    fit.add_argument("--bm25-k1", type=float, default=100.0)
    fit.add_argument("--bm25-b", type=float, default=0.9)
    fit.add_argument("--bm25-rows", choices=("items", "users"), default="items")
    fit.add_argument("--use-bias", action="store_true", help="explicit feedback: global mean + biases")
    fit.add_argument("--scale-regularization", action="store_true", help="ALS-WR count scaling")
    fit.add_argument("--threads", type=int, default=None, help="BLAS threads")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(func=cmd_fit)

    forget = sub.add_parser("forget", help="unlearn deleted interactions from a trained model")
    forget.add_argument("--model", required=True, help="model file written by 'als fit'")
    forget.add_argument("--interactions", required=True, help="the training interactions (CSV or .npz)")
    forget.add_argument("--delete", required=True, help="CSV with columns user,item")
    forget.add_argument("--out", required=True, help="model file to write (.npz)")
    forget.add_argument("--mode", choices=MODES, default="retrain")
    forget.add_argument("--max-iterations", type=int, default=10)
    forget.add_argument("--tol", type=float, default=0.0)
    forget.add_argument("--frozen-weights", action="store_true",
                        help="keep confidences computed with the deleted records (authors' shortcut; not exact)")
    forget.add_argument("--quiet", action="store_true", help="no progress bar")
    forget.set_defaults(func=cmd_forget)
