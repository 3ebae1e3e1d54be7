"""``bilinrec als fit|forget``: train an ALS model, and make it forget interactions exactly.

Interactions files
    * CSV with a header and columns ``user,item,confidence`` (0-based integer ids; ``confidence``
      is the stored value: confidence for implicit feedback, rating for explicit feedback); or
    * ``.npz`` written by ``scipy.sparse.save_npz`` (users x items), or with arrays ``user``,
      ``item``, ``confidence``.
Deletion files
    CSV with a header and columns ``user,item`` (pairs that are observed in the interactions);
    ``--users 3,17`` forgets whole user histories instead (or as well).

``forget --certify --tolerance T`` solves every user and item of a deleted cell exactly (a user
whose whole history is forgotten becomes exactly zero, as after retraining), then re-solves rows
until every row residual of the normal equations on the reduced data is at most ``T``, and writes
the record and its certificate (content hashes of the model and the data) as JSON beside the model
(``OUT`` with suffix ``.certificate.json``); ``als verify`` re-checks it from scratch.

With ``--weighting`` (e.g. ``bm25``), ``confidence`` holds raw interactions (binary or counts) and
the model computes the confidences; ``forget`` then recomputes them on the reduced data, as
retraining would. The model file keeps a ledger of every forgotten pair: forgetting again from a
forgotten model with the original interactions removes the earlier deletions too.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bilinrec.cli.common import (
    at_row,
    id_column,
    non_negative_float,
    npz_arrays,
    number_column,
    positive_float,
    positive_int,
    read_csv_table,
)
from bilinrec.models.als import (
    ALS,
    MODES,
    SCHEMES,
    Weighting,
    as_deletions,
    as_weighting,
    user_history,
)

log = logging.getLogger(__name__)


INTERACTION_COLUMNS = ("user", "item", "confidence")
_SPARSE_KEYS = ({"data", "indices", "indptr", "shape", "format"}, {"row", "col", "data", "shape"})


def read_interactions(path: str | Path, shape: tuple[int, int] | None = None,
                      feedback: str = "implicit") -> sp.csr_matrix:
    """Read an interactions CSV/NPZ (see module docstring) as a users x items CSR matrix.

    Every problem raises ``ValueError`` naming ``--interactions``, the file, the line (CSV) or
    array (NPZ) and what was expected; implicit feedback needs confidences > 0.
    """
    path = Path(path)
    option = "--interactions"
    positive = feedback == "implicit"
    if path.suffix == ".npz" and path.is_file():
        arrays = npz_arrays(path, option, "a scipy.sparse.save_npz matrix or arrays user, item, confidence")
        keys = set(arrays)
        if any(k <= keys for k in _SPARSE_KEYS):
            try:
                matrix = sp.load_npz(path).tocsr()
            except Exception as exc:  # scipy raises several types for malformed matrices
                raise ValueError(f"{option}: {path}: not a valid sparse matrix ({type(exc).__name__}: {exc})") from None
            if not np.issubdtype(matrix.dtype, np.number) or not np.all(np.isfinite(matrix.data)):
                raise ValueError(f"{option}: {path}: the matrix must hold finite numbers")
            if positive and matrix.nnz and matrix.data.min() <= 0:
                raise ValueError(f"{option}: {path}: stored confidences must be > 0 for implicit feedback")
            if matrix.nnz == 0:
                raise ValueError(f"{option}: {path}: the matrix stores no cells; nothing to fit")
            if shape is not None and matrix.shape != shape:
                raise ValueError(f"{option}: matrix shape {matrix.shape} does not match the expected {shape}")
            return matrix
        if not set(INTERACTION_COLUMNS) <= keys:
            raise ValueError(f"{option}: {path} has neither a sparse matrix nor arrays user, item, confidence "
                             f"(it has {sorted(keys)})")
        if any(arrays[k].ndim != 1 for k in INTERACTION_COLUMNS) or \
                len({len(arrays[k]) for k in INTERACTION_COLUMNS}) != 1:
            raise ValueError(f"{option}: {path}: arrays user, item, confidence must be 1-D and of equal length")
        frame = pd.DataFrame({k: arrays[k] for k in INTERACTION_COLUMNS})
        if frame.empty:
            raise ValueError(f"{option}: {path}: the arrays are empty; nothing to fit")
        return _interactions(frame, f"{option}: {path} row", path, shape, positive)
    frame = read_csv_table(path, option, INTERACTION_COLUMNS)
    try:
        return _interactions(frame, f"{option}: {path}", path, shape, positive)
    except ValueError:
        # Name the exact line: check again on the text of every field, blank lines counted.
        _interactions(read_csv_table(path, option, INTERACTION_COLUMNS, text=True), f"{option}: {path}", path, shape,
                      positive)
        raise


def _interactions(frame: pd.DataFrame, where: str, path: Path, shape: tuple[int, int] | None,
                  positive: bool) -> sp.csr_matrix:
    users = id_column(frame["user"], "user", where)
    items = id_column(frame["item"], "item", where)
    values = number_column(frame["confidence"], "confidence", where, positive)
    if shape is None:
        shape = (int(users.max()) + 1, int(items.max()) + 1)
    else:
        for name, ids, n in (("user", users, shape[0]), ("item", items, shape[1])):
            bad = np.flatnonzero(ids >= n)
            if bad.size:
                row = frame.index[bad[0]]
                raise ValueError(f"{at_row(where, row)}: {name} id {ids[bad[0]]} is out of range; the model has "
                                 f"{n} {name}s (ids 0..{n - 1})")
    keys = users * max(shape[1], 1) + items
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    if (counts > 1).any():
        dup = np.flatnonzero(np.isin(keys, keys[first[counts > 1]]))
        first, again = (int(frame.index[i]) for i in dup[:2])
        first_at = f"row {first}" if where.endswith(" row") else f"line {first + 2}"
        raise ValueError(f"{at_row(where, again)}: the pair (user {users[dup[0]]}, item {items[dup[0]]}) is listed "
                         f"again (first at {first_at}); each pair may appear once")
    return sp.csr_matrix((values, (users, items)), shape=shape)


def read_deletions(path: str | Path, shape: tuple[int, int], C: sp.csr_matrix | None = None) -> np.ndarray:
    """Read a deletion CSV (``user,item``) as validated (n, 2) pairs (observed cells of ``C`` if given)."""
    path = Path(path)
    option = "--delete"
    frame = read_csv_table(path, option, ("user", "item"), allow_empty=True)
    try:
        return _deletions(frame, f"{option}: {path}", shape, C)
    except ValueError:
        _deletions(read_csv_table(path, option, ("user", "item"), allow_empty=True, text=True), f"{option}: {path}",
                   shape, C)
        raise


def _deletions(frame: pd.DataFrame, where: str, shape: tuple[int, int], C: sp.csr_matrix | None) -> np.ndarray:
    pairs = np.column_stack([id_column(frame["user"], "user", where), id_column(frame["item"], "item", where)])
    for col, (name, n) in enumerate((("user", shape[0]), ("item", shape[1]))):
        bad = np.flatnonzero(pairs[:, col] >= n)
        if bad.size:
            raise ValueError(f"{at_row(where, frame.index[bad[0]])}: {name} id {pairs[bad[0], col]} is out of range "
                             f"(the model has {n} {name}s)")
    if C is not None and len(pairs):
        observed = np.asarray(C[pairs[:, 0], pairs[:, 1]]).ravel() != 0
        if not observed.all():
            i = int(np.flatnonzero(~observed)[0])
            raise ValueError(f"{at_row(where, frame.index[i])}: ({pairs[i, 0]}, {pairs[i, 1]}) is not an observed "
                             f"cell of --interactions; only observed interactions can be forgotten "
                             f"({int((~observed).sum())} such rows)")
    try:
        return as_deletions(pairs, shape)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def cmd_fit(args: argparse.Namespace) -> int:
    shape = None
    if args.n_users is not None or args.n_items is not None:
        if args.n_users is None or args.n_items is None:
            raise ValueError("--n-users and --n-items must be given together")
        shape = (args.n_users, args.n_items)
    C = read_interactions(args.interactions, shape=shape, feedback=args.feedback)
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
                     B=args.bm25_b, bm25_rows=args.bm25_rows)


def parse_users(text: str, n_users: int) -> np.ndarray:
    """``--users``: comma-separated user ids, each in range and stored at most once."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p.isdigit() for p in parts):
        raise ValueError(f"--users: expected comma-separated non-negative integer user ids, got {text!r}")
    users = np.array([int(p) for p in parts], dtype=np.int64)
    if users.max() >= n_users:
        raise ValueError(f"--users: user id {users.max()} is out of range (the model has {n_users} users)")
    if np.unique(users).size < users.size:
        raise ValueError(f"--users: a user id is listed twice in {text!r}")
    return users


def _selection(args: argparse.Namespace, shape: tuple[int, int], C: sp.csr_matrix) -> tuple:
    """(users, pairs) chosen by ``--users`` and ``--delete`` (either may be None, not both)."""
    if args.delete is None and args.users is None:
        raise ValueError("forget needs --delete (a CSV of user,item pairs) or --users (user ids), or both")
    users = None if args.users is None else parse_users(args.users, shape[0])
    if users is not None:
        empty = users[np.diff(C.indptr)[users] == 0]
        if empty.size:
            raise ValueError(f"--users: user {empty[0]} has no stored cells in --interactions; nothing to forget")
    pairs = None if args.delete is None else read_deletions(args.delete, shape, C)
    return users, pairs


def _certified(args: argparse.Namespace, model: ALS, C: sp.csr_matrix, users, pairs) -> int:
    """``forget --certify``: the certified local forget; the record, with its certificate, is printed
    and saved as JSON (model and certificate written only once both are ready)."""
    from bilinrec.models.als.forget import dumps_certificate

    if args.mode != "retrain" or args.frozen_weights:
        raise ValueError("--certify forgets under retraining semantics: it cannot be combined with "
                         f"{'--frozen-weights' if args.frozen_weights else f'--mode {args.mode}'}")
    if args.tolerance is None:
        raise ValueError("--certify needs --tolerance: the absolute bound every row residual on the reduced data "
                         "must meet (the trained model's own level is printed by 'bilinrec als fit')")
    if pairs is not None and len(pairs) == 0 and users is None:
        raise ValueError(f"--delete: {args.delete} lists no pairs; nothing to forget")
    if pairs is not None and len(pairs) == 0:
        pairs = None
    forgotten, record = model.forget(C, users=users, pairs=pairs, method="certified", tolerance=args.tolerance,
                                     max_iterations=100 if args.max_iterations is None else args.max_iterations)
    certificate = Path(args.out).with_suffix(".certificate.json")
    text = dumps_certificate(record)
    audit = _audit_lines(model, forgotten, C, users, np.asarray(record.details["certificate"]["deleted_pairs"]))
    forgotten.save(args.out)
    certificate.write_text(text, encoding="utf-8")
    d = record.details
    print(f"ALS forget (certified): {record.records} cells of {C.nnz}, {len(record.users)} whole user(s)")
    print("  guarantee       every user and item of a deleted cell solved exactly on the reduced data; "
          f"{len(record.users)} forgotten user row(s) exactly zero")
    print(f"  tolerance       {record.bound:.6g} (absolute, on every row residual)")
    print(f"  gap             {record.gap:.6g}: the largest row residual after forgetting, over all rows")
    if d.get("distance_bound") is not None:
        print(f"  row distance    <= {d['distance_bound']:.6g} from each row's exact solve given the other side")
    print(f"  certified       {'yes' if record.certified else 'NO: the rounds ran out before the tolerance held'}")
    print(f"  rows re-solved  {record.rows_touched} ({d['users_touched']} users, {d['items_touched']} items) in "
          f"{d['iterations']} rounds")
    print(*audit, sep="\n")
    print(f"  time            {record.seconds:.2f} s")
    print(f"  ledger          {forgotten.forgotten_['count']} pair(s) forgotten in all, sha256 "
          f"{forgotten.forgotten_['sha256'][:16]}...")
    print(f"  certificate     {certificate} (model sha256 {d['certificate']['model_sha256'][:16]}..., data sha256 "
          f"{d['certificate']['data_sha256'][:16]}...; check it: bilinrec als verify)")
    print(f"  model           {args.out}")
    return 0


def _audit_lines(original: ALS, forgotten: ALS, C: sp.csr_matrix, users, pairs: np.ndarray) -> list[str]:
    """The forgetting audit of a forget, forgotten model against the untouched one: the forgotten
    users' own-history AUC (0.5: unreadable, what retraining gives) and the deleted records'
    membership-inference AUC against never-trained cells of the same users (the workflow's
    ``forget`` table adds retraining's seed band: bilinrec.models.als.audit.forget_audit)."""
    from bilinrec.models.als.audit import membership_auc, nonmember_cells, own_history_auc

    lines = []
    if users is not None and len(users):
        lines.append(f"  audit           own-history AUC of the forgotten users {own_history_auc(forgotten, C, users):.4f} "
                     f"(untouched model {own_history_auc(original, C, users):.4f}; 0.5 = unreadable, as after "
                     "retraining)")
    try:
        nonmembers = nonmember_cells(C, pairs, seed=0)
    except ValueError as exc:  # e.g. a user who interacted with every item: nothing to compare against
        lines.append(f"  audit           membership AUC not measured ({exc})")
        return lines
    lines.append(f"  audit           membership AUC of the deleted records {membership_auc(forgotten, pairs, nonmembers):.4f} "
                 f"(untouched model {membership_auc(original, pairs, nonmembers):.4f})")
    return lines


def cmd_verify(args: argparse.Namespace) -> int:
    """``als verify``: re-check a forget certificate from scratch against a model and its data."""
    from bilinrec.models.als.forget import CertificateError, verify_certificate

    try:
        model = ALS.load(args.model)
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(f"--model: {exc}") from None
    path = Path(args.certificate)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        cert = record["details"]["certificate"]
    except FileNotFoundError:
        raise FileNotFoundError(f"--certificate: {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"--certificate: {path} is not a forget record with a certificate ({exc})") from None
    if not isinstance(cert, dict):
        raise ValueError(f"--certificate: {path} holds no certificate (the forget was run without a tolerance)")
    shape = (model.user_factors_.shape[0], model.item_factors_.shape[0])
    C = read_interactions(args.interactions, shape=shape, feedback=model.feedback)
    try:
        checked = verify_certificate(model, C, cert)
    except CertificateError as exc:
        print(f"certificate NOT verified: {exc}")
        return 1
    print(f"certificate verified: {path}")
    print(f"  model sha256    {checked['model_sha256']}")
    print(f"  data sha256     {checked['data_sha256']}")
    print(f"  gap             {checked['gap']:.6g} <= tolerance {checked['tolerance']:.6g} (recomputed over every row)")
    print(f"  forgotten users {checked['zero_users']} row(s) exactly zero")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    try:
        model = ALS.load(args.model)
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(f"--model: {exc}") from None
    shape = (model.user_factors_.shape[0], model.item_factors_.shape[0])
    C = read_interactions(args.interactions, shape=shape, feedback=model.feedback)
    users, pairs = _selection(args, shape, C)
    if args.certify:
        return _certified(args, model, C, users, pairs)
    if users is not None:
        pairs = as_deletions(np.unique(np.vstack([p for p in (pairs, user_history(C, users)) if p is not None]),
                                       axis=0), shape)
    before = model.objective(C)
    start = time.perf_counter()
    forgotten = model.unlearn(C, pairs, mode=args.mode,
                              max_iterations=10 if args.max_iterations is None else args.max_iterations,
                              tol=args.tol, show_progress=not args.quiet, frozen_weights=args.frozen_weights)
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
    fit.add_argument("--n-users", type=positive_int, default=None, help="number of users (default: largest id + 1)")
    fit.add_argument("--n-items", type=positive_int, default=None, help="number of items (default: largest id + 1)")
    fit.add_argument("--factors", type=positive_int, default=100)
    fit.add_argument("--regularization", type=non_negative_float, default=0.01)
    fit.add_argument("--feedback", choices=("implicit", "explicit"), default="implicit")
    fit.add_argument("--solver", choices=("cholesky", "cg"), default="cholesky")
    fit.add_argument("--cg-steps", type=positive_int, default=3)
    fit.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    fit.add_argument("--iterations", type=positive_int, default=15)
    fit.add_argument("--tol", type=non_negative_float, default=0.0, help="stop when the relative objective change is below")
    fit.add_argument("--seed", type=int, default=0, help="random_state of the initial factors")
    fit.add_argument("--weighting", choices=("none", *SCHEMES), default="none",
                     help="compute confidences from the interactions (recomputed when forgetting)")
    fit.add_argument("--weight-scale", type=non_negative_float, default=1.0, help="scale (schemes scale, bm25)")
    fit.add_argument("--weight-alpha", type=non_negative_float, default=40.0, help="alpha (scheme linear: 1 + alpha x)")
    fit.add_argument("--bm25-k1", type=non_negative_float, default=100.0)
    fit.add_argument("--bm25-b", type=non_negative_float, default=0.9)
    fit.add_argument("--bm25-rows", choices=("items", "users"), default="items")
    fit.add_argument("--use-bias", action="store_true", help="explicit feedback: global mean + biases")
    fit.add_argument("--scale-regularization", action="store_true", help="ALS-WR count scaling")
    fit.add_argument("--threads", type=positive_int, default=None, help="BLAS threads")
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(func=cmd_fit)

    forget = sub.add_parser("forget", help="unlearn deleted interactions from a trained model")
    forget.add_argument("--model", required=True, help="model file written by 'als fit'")
    forget.add_argument("--interactions", required=True, help="the training interactions (CSV or .npz)")
    forget.add_argument("--delete", default=None, help="CSV with columns user,item")
    forget.add_argument("--users", default=None, help="comma-separated user ids whose whole history is forgotten")
    forget.add_argument("--out", required=True, help="model file to write (.npz)")
    forget.add_argument("--mode", choices=MODES, default="retrain")
    forget.add_argument("--certify", action="store_true",
                        help="certified local forget: solve the rows of deleted cells exactly, then re-solve rows "
                             "until every row residual is within --tolerance; writes OUT's stem + .certificate.json")
    forget.add_argument("--tolerance", type=positive_float, default=None,
                        help="with --certify: the absolute bound on every row residual of the reduced data")
    forget.add_argument("--max-iterations", type=positive_int, default=None,
                        help="full sweeps (default 10); with --certify: rounds (default 100)")
    forget.add_argument("--tol", type=non_negative_float, default=0.0)
    forget.add_argument("--frozen-weights", action="store_true",
                        help="keep confidences computed with the deleted records (authors' shortcut; not exact)")
    forget.add_argument("--quiet", action="store_true", help="no progress bar")
    forget.set_defaults(func=cmd_forget)

    verify = sub.add_parser("verify", help="re-check a forget certificate from scratch")
    verify.add_argument("--model", required=True, help="the forgotten model file the certificate names")
    verify.add_argument("--interactions", required=True, help="the interactions it was forgotten from (CSV or .npz)")
    verify.add_argument("--certificate", required=True, help="the .certificate.json written by 'als forget --certify'")
    verify.set_defaults(func=cmd_verify)
