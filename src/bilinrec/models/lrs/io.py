"""AMHT-LRS model files: an ``.npz`` archive with a JSON ``meta`` entry, nothing pickled.

Entries (written by :meth:`bilinrec.models.lrs.AMHTLRS.save`):

* ``meta``: JSON ``{"format": "bilinrec-lrs-1", "params": {...constructor arguments...},
  "n_rounds": int, "converged": bool, "train_loss": float, "history": [...]}``;
* ``U`` (d, r) orthonormal shared factor; ``W`` (t, r) user heads; the sparse parts as
  ``S`` (t, k) column indices, ``V`` (t, k) values and ``active`` (t, k) booleans;
* ``empty_users``, ``forgotten_users`` (user ids) and ``forgotten_samples`` (rows of the
  training data) -- the deletion ledger that later ``forget`` calls honour.

Every problem raises :class:`~bilinrec.models.model_file.ModelFileError` naming the file and entry.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from ...io import save_npz
from ..model_file import ModelFileError, read_entries, read_meta
from .statistics import SumAggregator
from .user_parameters import UserParameters

MODEL_FORMAT = "bilinrec-lrs-1"
#: Constructor arguments that are objects, not data: never written to a model file.
_NOT_SAVED = ("aggregator", "callback")
_LEDGER = ("empty_users", "forgotten_users", "forgotten_samples")


def save_model(model, path: Any) -> None:
    """Write a fitted :class:`AMHTLRS` to ``path`` (see the module docstring)."""
    model._check_fitted("U_", "save")
    if model.aggregator is not None and not isinstance(model.aggregator, SumAggregator):
        raise ValueError("only a non-private AMHTLRS can be saved (its aggregator is not the exact sum)")
    names = [n for n in inspect.signature(type(model)).parameters if n not in _NOT_SAVED]
    params = {n: (getattr(model, n).item() if isinstance(getattr(model, n), np.generic) else getattr(model, n))
              for n in names}
    meta = {"format": MODEL_FORMAT, "params": params, "n_rounds": model.n_rounds_,
            "converged": bool(model.converged_), "train_loss": model.train_loss_,
            "history": getattr(model, "history_", [])}
    heads = model._heads
    save_npz(path, meta=np.array(json.dumps(meta, default=float)), U=model.U_, W=heads.W, S=heads.S,
             V=heads.V, active=heads.active, empty_users=model.empty_users_,
             forgotten_users=model.forgotten_users_, forgotten_samples=model.forgotten_samples_)


def _entry(path: Path, arrays: dict, name: str, kind: str, shape: tuple) -> np.ndarray:
    if name not in arrays:
        raise ModelFileError(f"{path}: entry {name!r} is missing")
    a = arrays[name]
    ok_kind = {"float": a.dtype.kind == "f", "int": a.dtype.kind in "iu", "bool": a.dtype == bool}[kind]
    ok_shape = len(a.shape) == len(shape) and all(s is None or s == n for s, n in zip(shape, a.shape))
    if not ok_kind or not ok_shape:
        want = "x".join("*" if s is None else str(s) for s in shape)
        raise ModelFileError(f"{path}: entry {name!r} must be a {kind} array of shape ({want}), got {a.dtype} {a.shape}")
    if kind == "float" and not np.all(np.isfinite(a)):
        raise ModelFileError(f"{path}: entry {name!r} holds NaN or infinite values")
    return a


def load_model(cls, path: Any):
    """Read a model written by :func:`save_model`; shapes, dtypes, index ranges and parameters are checked."""
    path = Path(path)
    arrays = read_entries(path, "bilinrec lrs fit")
    meta = read_meta(path, arrays, MODEL_FORMAT, "AMHT-LRS")
    params = meta.get("params")
    allowed = [n for n in inspect.signature(cls).parameters if n not in _NOT_SAVED]
    if not isinstance(params, dict) or set(params) - set(allowed):
        raise ModelFileError(f"{path}: meta.params must be an object with keys among {allowed}, got {params!r}")
    U = _entry(path, arrays, "U", "float", (None, None))
    W = _entry(path, arrays, "W", "float", (None, U.shape[1]))
    try:
        model = cls(**params)
        model._check_params(U.shape[0])
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: meta.params is not valid: {exc}") from None
    if U.shape[1] != model.rank:
        raise ModelFileError(f"{path}: entry 'U' has {U.shape[1]} columns but meta.params.rank is {model.rank}")
    t, k = W.shape[0], model.sparsity
    S = _entry(path, arrays, "S", "int", (t, k))
    V = _entry(path, arrays, "V", "float", (t, k))
    active = _entry(path, arrays, "active", "bool", (t, k))
    if S.size and (S.min() < 0 or S.max() >= U.shape[0]):
        raise ModelFileError(f"{path}: entry 'S' holds column indices outside 0..{U.shape[0] - 1}")
    ledger = {name: _entry(path, arrays, name, "int", (None,)).astype(np.int64) for name in _LEDGER}
    for name in ("empty_users", "forgotten_users"):
        if ledger[name].size and (ledger[name].min() < 0 or ledger[name].max() >= t):
            raise ModelFileError(f"{path}: entry {name!r} holds user ids outside 0..{t - 1}")
    if ledger["forgotten_samples"].size and ledger["forgotten_samples"].min() < 0:
        raise ModelFileError(f"{path}: entry 'forgotten_samples' holds negative row indices")
    for key, ok in (("n_rounds", lambda v: isinstance(v, int) and v >= 0),
                    ("converged", lambda v: isinstance(v, bool)),
                    ("train_loss", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
                    ("history", lambda v: isinstance(v, list))):
        if not ok(meta.get(key)):
            raise ModelFileError(f"{path}: meta.{key} is missing or of the wrong type ({meta.get(key)!r})")
    model.n_features_in_, model.n_users_ = U.shape[0], t
    model.n_rounds_, model.converged_ = meta["n_rounds"], meta["converged"]
    model.train_loss_, model.history_ = float(meta["train_loss"]), meta["history"]
    model.empty_users_ = ledger["empty_users"]
    model.forgotten_users_ = ledger["forgotten_users"]
    model.forgotten_samples_ = ledger["forgotten_samples"]
    model._set_fitted(U.astype(np.float64), UserParameters(W.astype(np.float64), S.astype(np.int64),
                                                   V.astype(np.float64), active.copy()))
    return model
