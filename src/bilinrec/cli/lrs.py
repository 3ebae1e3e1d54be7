"""``bilinrec lrs fit|forget``: train an AMHT-LRS model, and make it forget users or samples exactly.

Samples files (``--data``)
    * CSV with a header and columns ``user,y,x0,...,x{d-1}`` (0-based integer user ids, one
      sample per line; other columns are ignored); or
    * ``.npz`` with arrays ``X`` (N, d), ``y`` (N,) and ``users`` (N,).
Row files (``forget --samples``)
    CSV with a header and a column ``row``: 0-based indices of samples in ``--data`` (data
    lines in file order; the first sample is row 0).

``forget`` takes the training data the model was fitted on (the model file keeps a ledger of
what it forgot before, which stays forgotten), re-runs the training rounds warm-started on the
remaining data under the model's stopping rule, and writes the new model and the forget
record (JSON: users, records, the fixed-point gap reached, rounds, seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

from bilinrec.cli.common import (
    at_row,
    id_column,
    non_negative_float,
    npz_arrays,
    number_column,
    positive_int,
    read_csv_table,
)
from bilinrec.models.lrs import AMHTLRS

_NPZ_EXPECTED = "an .npz with arrays X (N x d), y (N) and users (N)"


def _feature_columns(path: Path, option: str) -> tuple[str, ...]:
    """The columns ``x0..x{d-1}`` named in the header of a samples CSV."""
    try:
        with open(path, encoding="utf-8") as fh:
            header = [c.strip() for c in fh.readline().strip().split(",")]
    except UnicodeDecodeError:
        return ()  # read_csv_table names the byte
    numbers = sorted(int(c[1:]) for c in header if re.fullmatch(r"x\d+", c))
    if not numbers:
        raise ValueError(f"{option}: {path}:1: header {header} has no feature columns x0, x1, ...; expected "
                         f"columns user,y,x0,...,x{{d-1}}")
    if numbers != list(range(len(numbers))):
        missing = sorted(set(range(max(numbers) + 1)) - set(numbers))
        raise ValueError(f"{option}: {path}:1: feature columns must be x0..x{max(numbers)} without gaps; "
                         f"x{missing[0]} is missing")
    return tuple(f"x{i}" for i in numbers)


def _samples(frame, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users = id_column(frame["user"], "user", where)
    y = number_column(frame["y"], "y", where)
    X = np.column_stack([number_column(frame[c], c, where) for c in frame.columns if c not in ("user", "y")])
    return X, y, users


def read_samples(path: str | Path, option: str = "--data") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read a samples CSV/NPZ (see the module docstring) as ``X, y, users``; every problem
    raises ``ValueError`` naming ``option``, the file and the line (CSV) or array (NPZ)."""
    path = Path(path)
    if path.suffix == ".npz" and path.is_file():
        arrays = npz_arrays(path, option, _NPZ_EXPECTED)
        missing = sorted({"X", "y", "users"} - set(arrays))
        if missing:
            raise ValueError(f"{option}: {path} lacks array(s) {', '.join(missing)} (it has {sorted(arrays)}); "
                             f"expected {_NPZ_EXPECTED}")
        X, y, users = arrays["X"], arrays["y"], arrays["users"]
        if X.ndim != 2 or y.shape != (len(X),) or users.shape != (len(X),) or len(X) == 0:
            raise ValueError(f"{option}: {path}: X must be N x d with N > 0 and y, users of length N; got "
                             f"X {X.shape}, y {y.shape}, users {users.shape}")
        if X.dtype.kind not in "fiu" or y.dtype.kind not in "fiu" or users.dtype.kind not in "iu":
            raise ValueError(f"{option}: {path}: X and y must be numeric and users integer; got {X.dtype}, "
                             f"{y.dtype}, {users.dtype}")
        for name, a in (("X", X), ("y", y)):
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{option}: {path}: array {name} holds NaN or infinite values (first at row "
                                 f"{int(np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))[0])})")
        if users.size and users.min() < 0:
            raise ValueError(f"{option}: {path}: users must be non-negative ids (row {int(np.argmin(users))} has "
                             f"{users.min()})")
        return X.astype(np.float64), y.astype(np.float64), users.astype(np.int64)
    columns = ("user", "y", *_feature_columns(path, option)) if path.is_file() else ("user", "y")
    where = f"{option}: {path}"
    try:
        return _samples(read_csv_table(path, option, columns), where)
    except ValueError:
        # Name the exact line: check again on the text of every field, blank lines counted.
        _samples(read_csv_table(path, option, columns, text=True), where)
        raise


def read_rows(path: str | Path, n_samples: int, option: str = "--samples") -> np.ndarray:
    """Read a row-index CSV (column ``row``) of samples in range ``0..n_samples-1``."""
    path = Path(path)
    where = f"{option}: {path}"
    frame = read_csv_table(path, option, ("row",), allow_empty=True)
    try:
        rows = id_column(frame["row"], "row", where)
    except ValueError:
        id_column(read_csv_table(path, option, ("row",), allow_empty=True, text=True)["row"], "row", where)
        raise
    bad = np.flatnonzero(rows >= n_samples)
    if bad.size:
        raise ValueError(f"{at_row(where, frame.index[bad[0]])}: row {rows[bad[0]]} is out of range; --data has "
                         f"{n_samples} samples (rows 0..{n_samples - 1})")
    return rows


def _user_list(text: str) -> list[int]:
    """``--users``: comma-separated non-negative integer ids."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(re.fullmatch(r"\+?\d+", i) for i in ids):
        raise argparse.ArgumentTypeError(f"expected comma-separated non-negative user ids, got {text!r}")
    return [int(i) for i in ids]


def cmd_fit(args: argparse.Namespace) -> int:
    X, y, users = read_samples(args.data)
    model = AMHTLRS(args.rank, args.sparsity, max_rounds=args.max_rounds, tol=args.tol, u_solver=args.u_solver,
                    random_state=args.random_state)
    try:
        model.fit(X, y, users, n_users=args.n_users)
    except ValueError as exc:
        raise ValueError(f"{exc} (--data {args.data}, --rank {args.rank}, --sparsity {args.sparsity})") from None
    model.save(args.out)
    print(f"AMHT-LRS fit: {len(X)} samples of {model.n_users_} users, d = {X.shape[1]}, rank {model.rank}, "
          f"sparsity {model.sparsity}")
    print(f"  rounds          {model.n_rounds_} ({'converged' if model.converged_ else 'max_rounds reached'})")
    print(f"  training loss   {model.train_loss_:.6g}")
    print(f"  time            {model.fit_seconds_:.2f} s")
    print(f"  model           {args.out}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    if args.users is None and args.samples is None:
        raise ValueError("give --users and/or --samples (what to forget)")
    try:
        model = AMHTLRS.load(args.model)
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(f"--model: {exc}") from None
    X, y, users = read_samples(args.data)
    if X.shape[1] != model.n_features_in_ or users.max() >= model.n_users_:
        raise ValueError(f"--data: {args.data} has {X.shape[1]} features and user ids up to {users.max()}, but the "
                         f"model has {model.n_features_in_} features and {model.n_users_} users; pass the training data")
    forget_users = None
    if args.users is not None:
        forget_users = sorted({u for part in args.users for u in part})
        bad = [u for u in forget_users if u >= model.n_users_]
        if bad:
            raise ValueError(f"--users: user id {bad[0]} is out of range; the model has {model.n_users_} users "
                             f"(ids 0..{model.n_users_ - 1})")
    rows = None if args.samples is None else read_rows(args.samples, len(X))
    try:
        forgotten, record = model.forget(X, y, users, forget_users=forget_users, forget_samples=rows,
                                         max_rounds=args.max_rounds, tol=args.tol)
    except ValueError as exc:
        raise ValueError(f"{exc} (--users/--samples)") from None
    forgotten.save(args.out)
    record_path = Path(args.record) if args.record else Path(args.out).with_suffix(".forget.json")
    out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.to_dict().items()}
    record_path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"AMHT-LRS forget: {len(record.users)} user(s) and {record.records} sample(s) forgotten in all")
    print(f"  rounds          {record.details['rounds']} (tol {record.details['tol']:g}, "
          f"max_rounds {record.details['max_rounds']})")
    print(f"  fixed-point gap {record.gap:.3g} ({record.gap_measure})")
    print(f"  users re-fitted {record.rows_touched}")
    print(f"  time            {record.seconds:.2f} s")
    print(f"  model           {args.out}")
    print(f"  record          {record_path}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``lrs fit`` and ``lrs forget`` on the ``bilinrec`` command line."""
    lrs = subparsers.add_parser("lrs", help="train AMHT-LRS models and forget users or samples",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = lrs.add_subparsers(dest="lrs_command", required=True, metavar="ACTION")

    fit = sub.add_parser("fit", help="train an AMHT-LRS model on a samples file")
    fit.add_argument("--data", required=True, help="samples: CSV (user,y,x0..) or .npz (X, y, users)")
    fit.add_argument("--out", required=True, help="model file to write (.npz)")
    fit.add_argument("--rank", type=positive_int, required=True)
    fit.add_argument("--sparsity", type=int, default=0, help="non-zeros of each user's sparse part")
    fit.add_argument("--max-rounds", type=positive_int, default=50)
    fit.add_argument("--tol", type=non_negative_float, default=1e-6, help="stop when the relative loss change is below")
    fit.add_argument("--u-solver", choices=("exact", "cg"), default="exact",
                     help="U step: dense normal equations (exact forgetting) or conjugate gradients")
    fit.add_argument("--n-users", type=positive_int, default=None, help="number of users (default: largest id + 1)")
    fit.add_argument("--random-state", type=int, default=0)
    fit.set_defaults(func=cmd_fit)

    forget = sub.add_parser("forget", help="forget users or samples from a trained model")
    forget.add_argument("--model", required=True, help="model file written by 'lrs fit' or 'lrs forget'")
    forget.add_argument("--data", required=True, help="the training samples (CSV or .npz)")
    forget.add_argument("--users", type=_user_list, action="append", help="user ids to forget, e.g. 3,17")
    forget.add_argument("--samples", help="CSV with a column row: sample rows of --data to forget")
    forget.add_argument("--out", required=True, help="model file to write (.npz)")
    forget.add_argument("--record", help="forget record to write (JSON; default: OUT with suffix .forget.json)")
    forget.add_argument("--max-rounds", type=positive_int, default=None, help="default: the model's")
    forget.add_argument("--tol", type=non_negative_float, default=None, help="default: the model's")
    forget.set_defaults(func=cmd_forget)
