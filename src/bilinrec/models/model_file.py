"""Reading model files safely: ``.npz`` archives with a JSON ``meta`` entry, nothing unpickled.

Shared by the model families that save themselves (:mod:`bilinrec.models.als.io`,
:mod:`bilinrec.models.lrs.io`); each checks its own entries after these generic steps.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np


class ModelFileError(ValueError):
    """A model file is missing, corrupt, not a bilinrec model of the expected kind, or inconsistent."""


def _kind_of(path: Path) -> str:
    """A guess of what a non-zip file is, for the message."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head:
        return "an empty file"
    if head[:1] == b"\x80":
        return "a Python pickle (bilinrec never unpickles model files)"
    if head[:6] == b"\x93NUMPY":
        return "a single .npy array"
    if head[:2] == b"PK":
        return "a truncated or corrupt zip archive"
    return "not an .npz archive"


def read_entries(path: Path, writer: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` model file ``path`` (never unpickled); problems raise :class:`ModelFileError`
    naming the file and ``writer`` (the command that writes such files)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file not found")
    if not path.is_file():
        raise ModelFileError(f"{path}: is not a file (expected a model .npz written by `{writer}`)")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: {_kind_of(path)}, not a model file written by `{writer}` "
                             f"(an .npz archive)")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                try:
                    arrays[name] = data[name]
                except ValueError as exc:
                    if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                        raise ModelFileError(
                            f"{path}: entry {name!r} holds pickled Python objects; bilinrec never unpickles model "
                            f"files (refit the model with `{writer}`)"
                        ) from None
                    raise ModelFileError(f"{path}: entry {name!r} cannot be read: {exc}") from None
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError) as exc:
        raise ModelFileError(f"{path}: corrupt or truncated model file ({exc}); write it again") from None
    return arrays


def read_meta(path: Path, arrays: dict[str, np.ndarray], model_format: str,
              kind: str) -> dict[str, Any]:
    """The JSON object of entry ``meta``, checked to carry ``format == model_format``; problems
    raise :class:`ModelFileError` naming the file and ``kind`` (the model family)."""
    if "meta" not in arrays:
        raise ModelFileError(f"{path}: not an {kind} model file (no 'meta' entry; entries: {sorted(arrays)})")
    raw = arrays["meta"]
    if raw.shape != () or raw.dtype.kind not in "US":
        raise ModelFileError(f"{path}: entry 'meta' must be a JSON string, got a {raw.dtype} array of shape {raw.shape}")
    text = raw.item()
    text = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: entry 'meta' is not valid JSON ({exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}): {text[:80]!r}") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: entry 'meta' must be a JSON object, got {type(meta).__name__}")
    if meta.get("format") != model_format:
        raise ModelFileError(f"{path}: unknown model format {meta.get('format')!r} in meta.format (expected "
                             f"{model_format!r}); written by another program or version")
    return meta
