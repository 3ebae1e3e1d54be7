"""ALS model files: writing them, and reading them safely (every entry is checked before a model is built).

A model file (written by :meth:`bilinrec.models.als.ALS.save`) is an ``.npz`` archive with

* ``meta``: a JSON string ``{"format": "bilinrec-als-1", "params": {...constructor arguments...},
  "global_mean": float, "train_iterations": int, "sweep_seconds": float | null, "history": [...]}``;
* ``user_factors`` (users x f) and ``item_factors`` (items x f): finite float32/float64 arrays of the
  dtype named in ``params.dtype``, f = ``params.factors``;
* ``user_bias`` / ``item_bias`` (1-D, one per user / item) exactly when ``params.use_bias``;
* ``deleted_pairs`` (optional): the (user, item) pairs the model has forgotten (its deletion ledger).

Nothing is ever unpickled (``allow_pickle=False``). Every problem raises :class:`ModelFileError`
naming the file, the entry or key, and what was expected.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ...io import save_npz
from ..model_file import ModelFileError, read_entries, read_meta

#: Format tag of a model file (``meta.format``).
MODEL_FORMAT = "bilinrec-als-1"
#: Entries of a model file; the biases only with ``params.use_bias``.
FACTOR_ENTRIES = ("user_factors", "item_factors")
BIAS_ENTRIES = ("user_bias", "item_bias")
_FLOAT_DTYPES = ("float32", "float64")


def _check_meta_keys(path: Path, meta: dict[str, Any], param_names: Iterable[str] | None) -> dict[str, Any]:
    params = meta.get("params")
    if not isinstance(params, dict):
        raise ModelFileError(f"{path}: meta.params is {'missing' if params is None else type(params).__name__}; "
                             f"expected an object of constructor arguments")
    if param_names is not None:
        unknown = sorted(set(params) - set(param_names))
        if unknown:
            raise ModelFileError(f"{path}: meta.params has unknown key(s) {unknown}; expected some of "
                                 f"{sorted(param_names)}")
    for key in ("factors", "dtype"):
        if key not in params:
            raise ModelFileError(f"{path}: meta.params lacks {key!r}")
    factors = params["factors"]
    if isinstance(factors, bool) or not isinstance(factors, int) or factors < 1:
        raise ModelFileError(f"{path}: meta.params.factors must be a positive integer, got {factors!r}")
    if params["dtype"] not in _FLOAT_DTYPES:
        raise ModelFileError(f"{path}: meta.params.dtype must be one of {list(_FLOAT_DTYPES)}, got {params['dtype']!r}")
    if not isinstance(params.get("use_bias", False), bool):
        raise ModelFileError(f"{path}: meta.params.use_bias must be true or false, got {params['use_bias']!r}")
    checks = {
        "global_mean": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "train_iterations": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "sweep_seconds": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
        "history": lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
    }
    expected = {"global_mean": "a number", "train_iterations": "a non-negative integer",
                "sweep_seconds": "a number or null", "history": "a list of objects"}
    for key, ok in checks.items():
        if key in meta and not ok(meta[key]):
            raise ModelFileError(f"{path}: meta.{key} must be {expected[key]}, got {meta[key]!r}")
    return params


def _check_arrays(path: Path, arrays: dict[str, np.ndarray], params: dict[str, Any]) -> None:
    for name in FACTOR_ENTRIES:
        if name not in arrays:
            raise ModelFileError(f"{path}: entry {name!r} is missing")
        F = arrays[name]
        if F.ndim != 2 or F.dtype.name not in _FLOAT_DTYPES:
            raise ModelFileError(f"{path}: entry {name!r} must be a 2-D float32/float64 array, got {F.dtype} {F.shape}")
        if F.dtype.name != params["dtype"]:
            raise ModelFileError(f"{path}: entry {name!r} is {F.dtype} but meta.params.dtype is {params['dtype']!r}")
        if F.shape[1] != params["factors"]:
            raise ModelFileError(f"{path}: entry {name!r} has {F.shape[1]} columns but meta.params.factors is "
                                 f"{params['factors']}")
        if not np.all(np.isfinite(F)):
            raise ModelFileError(f"{path}: entry {name!r} holds NaN or infinite values")
    rows = {"user_bias": arrays["user_factors"].shape[0], "item_bias": arrays["item_factors"].shape[0]}
    use_bias = params.get("use_bias", False)
    for name in BIAS_ENTRIES:
        if not use_bias:
            if name in arrays:
                raise ModelFileError(f"{path}: entry {name!r} is present but meta.params.use_bias is false")
            continue
        if name not in arrays:
            raise ModelFileError(f"{path}: entry {name!r} is missing (meta.params.use_bias is true)")
        b = arrays[name]
        if b.shape != (rows[name],) or b.dtype.name not in _FLOAT_DTYPES or not np.all(np.isfinite(b)):
            raise ModelFileError(f"{path}: entry {name!r} must be {rows[name]} finite floats (one per "
                                 f"{name.split('_')[0]}), got {b.dtype} {b.shape}")


def _check_ledger(path: Path, arrays: dict[str, np.ndarray]) -> None:
    if "deleted_pairs" not in arrays:
        return
    pairs = arrays["deleted_pairs"]
    if not np.issubdtype(pairs.dtype, np.integer) or pairs.size % 2 or (pairs.size and pairs.min() < 0):
        raise ModelFileError(f"{path}: entry 'deleted_pairs' must hold non-negative integer (user, item) pairs, "
                             f"got {pairs.dtype} {pairs.shape}")


def read_model_file(
    path: Any, model_format: str, param_names: Iterable[str] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and validate a model file: ``(arrays, meta)``, or :class:`ModelFileError` naming the problem.

    ``param_names`` (the constructor's arguments) restricts the keys of ``meta.params``.
    """
    path = Path(path)
    arrays = read_entries(path, "bilinrec als fit")
    meta = read_meta(path, arrays, model_format, "ALS")
    params = _check_meta_keys(path, meta, param_names)
    _check_arrays(path, arrays, params)
    _check_ledger(path, arrays)
    return arrays, meta


def write_model(model: Any, path: Any) -> None:
    """Write a fitted :class:`~bilinrec.models.als.ALS` to ``path`` (``.npz``, no pickles): factors, biases,
    parameters, history and the deletion ledger."""
    if not model.is_fitted:
        raise RuntimeError("save needs a fitted model")
    meta = {
        "format": MODEL_FORMAT,
        "params": model._json_params(),
        "global_mean": model.global_mean_,
        "train_iterations": model.train_iterations_,
        "sweep_seconds": None if np.isnan(model.sweep_seconds_) else model.sweep_seconds_,
        "history": model.history_,
        "ledger": model.ledger_,
    }
    arrays = {"user_factors": model.user_factors_, "item_factors": model.item_factors_,
              "deleted_pairs": np.asarray(model.deleted_pairs_, dtype=np.int64),
              "meta": np.array(json.dumps(meta, allow_nan=True, default=float))}
    if model.use_bias:
        arrays.update(user_bias=model.user_bias_, item_bias=model.item_bias_)
    save_npz(path, **arrays)


def read_model(cls: type, path: Any) -> Any:
    """Read a model written by :meth:`save` (files of older versions included); a bad file raises
    ``ModelFileError`` (a ``ValueError``) naming the file and the entry or key (format tag, shapes,
    dtypes and metadata are checked; nothing is unpickled)."""
    names = [*inspect.signature(cls).parameters, *_LEGACY_PARAMS]
    arrays, meta = read_model_file(path, MODEL_FORMAT, names)
    params = _upgrade_params(meta["params"])
    sweep = meta.get("sweep_seconds")
    try:
        model = cls.from_factors(
            arrays["user_factors"], arrays["item_factors"],
            user_bias=arrays.get("user_bias"), item_bias=arrays.get("item_bias"),
            global_mean=meta.get("global_mean", 0.0), train_iterations=meta.get("train_iterations", 0),
            sweep_seconds=float("nan") if sweep is None else sweep, **params,
        )
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: meta.params is not valid: {exc}") from None
    model.history_ = meta.get("history", [])
    model.ledger_ = meta.get("ledger", [])
    if "deleted_pairs" in arrays:
        model.deleted_pairs_ = np.asarray(arrays["deleted_pairs"], dtype=np.int64).reshape(-1, 2)
    return model


#: Constructor arguments of older model files, mapped by :func:`_upgrade_params`.
_LEGACY_PARAMS = ("seed",)


def _upgrade_params(saved: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments from a model file's metadata, old files included.

    Files written before the scikit-learn-style interface store ``seed`` (now ``random_state``)
    and no ``iterations``/``tol`` (the constructor defaults apply); older files name a weighting's
    ``bm25_rows`` ``rows``."""
    params = dict(saved)
    if "seed" in params:
        params.setdefault("random_state", params.pop("seed"))
    weighting = params.get("weighting")
    if isinstance(weighting, Mapping) and "rows" in weighting:
        params["weighting"] = {("bm25_rows" if key == "rows" else key): value for key, value in weighting.items()}
    params["dtype"] = np.dtype(params["dtype"])
    return params
