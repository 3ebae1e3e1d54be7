"""Helpers shared by the command groups: reading CSV/NPZ input files with errors that name the
option, the file and the line, and argparse number types."""

from __future__ import annotations

import argparse
import csv
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from bilinrec.data.parsers import count_separators


def read_csv_table(path: Path, option: str, columns: tuple[str, ...], allow_empty: bool = False,
              text: bool = False) -> pd.DataFrame:
    """Read a CSV with a header; every problem names ``option``, the file and what was expected.

    Columns are the header's: a line with more or fewer fields than the header is an error naming
    its line (pandas would make a surplus first field the row index, or pad a short line).
    ``text=False`` is the fast read (typed columns, blank lines skipped); ``text=True`` reads every
    field as text with blank lines kept (then dropped), so that row ``i`` is line ``i + 2``: it is
    used to name the exact line when the fast read's values fail a check.
    """
    expected = f"a CSV file with a header line {','.join(columns)}"
    if not path.exists():
        raise FileNotFoundError(f"{option}: {path} does not exist")
    if not path.is_file():
        raise ValueError(f"{option}: {path} is not a file; expected {expected}")
    try:
        if text:
            _check_field_counts(path, option, expected)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8",
                                index_col=False)
        else:
            frame = _read_typed(path, option, expected)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{option}: {path} is empty; expected {expected}") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise ValueError(f"{option}: {path}: {detail}; expected {expected}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{option}: {path}: byte {exc.object[exc.start:exc.end]!r} at offset {exc.start} is not "
                         f"UTF-8; expected {expected} (UTF-8 text)") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = sorted(c for c in columns if c not in frame.columns)
    if missing:
        raise ValueError(f"{option}: {path}:1: header {list(frame.columns)} lacks column(s) {', '.join(missing)}; "
                         f"expected {expected}")
    if text:
        blank = (frame[list(columns)] == "").all(axis=1)
        frame = frame.loc[~blank, list(columns)]
    else:
        frame = frame[list(columns)]
    if frame.empty and not allow_empty:
        raise ValueError(f"{option}: {path} has a header but no rows; expected at least one {','.join(columns)} row")
    return frame


def _read_typed(path: Path, option: str, expected: str) -> pd.DataFrame:
    """The fast read. The file is scanned line by line (to name the line) only when pandas fails,
    a field is missing, or the file's separator count is not the header's on every line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)  # surplus fields dropped: counted below
        try:
            frame = pd.read_csv(path, encoding="utf-8", index_col=False)
        except pd.errors.ParserError:
            _check_field_counts(path, option, expected)
            raise
    lines = len(frame) + 1  # blank lines, which hold no separator, are skipped
    if frame.isna().to_numpy().any() or count_separators(path, b",") != (frame.shape[1] - 1) * lines:
        _check_field_counts(path, option, expected)
    return frame


def _check_field_counts(path: Path, option: str, expected: str) -> None:
    """Raise naming the first line whose field count is not the header's (blank lines are skipped)."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, [])
            for row in reader:
                blank = len(row) <= 1 and not "".join(row).strip()
                if len(row) != len(header) and not blank:
                    raise ValueError(f"{option}: {path}:{reader.line_num}: {len(row)} fields, but the header has "
                                     f"{len(header)}; expected {expected}")
        except csv.Error as exc:
            raise ValueError(f"{option}: {path}:{reader.line_num}: {exc}; expected {expected}") from None


def at_row(where: str, row: int) -> str:
    """``file:line`` of CSV row ``row`` (header on line 1), or ``file row N`` of NPZ arrays."""
    return f"{where} {row}" if where.endswith(" row") else f"{where}:{row + 2}"


def shown(value: object) -> str:
    missing = value is None or value == "" or (isinstance(value, float) and np.isnan(value))
    return "a missing value" if missing else repr(value)


def id_column(values: pd.Series, name: str, where: str) -> np.ndarray:
    """Non-negative integer ids; the first bad value is named with its line."""
    if pd.api.types.is_integer_dtype(values.dtype) and (values.empty or values.min() >= 0):
        return values.to_numpy(dtype=np.int64)
    text = values.astype(str).str.strip()
    ok = text.str.fullmatch(r"\+?\d+") & values.notna()
    if not ok.all():
        row = ok.index[~ok.to_numpy()][0]
        raise ValueError(f"{at_row(where, row)}: column {name!r} must be a non-negative integer id, "
                         f"got {shown(values[row])}")
    return text.astype(np.int64).to_numpy()


def number_column(values: pd.Series, name: str, where: str, positive: bool = False) -> np.ndarray:
    """Finite numbers (``positive``: > 0); the first bad value is named with its line."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64)
    else:
        numbers = pd.to_numeric(values.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers) | ((numbers <= 0) if positive else False)
    if bad.any():
        row = values.index[bad][0]
        need = "a finite number > 0 (implicit feedback)" if positive else "a finite number"
        raise ValueError(f"{at_row(where, row)}: column {name!r} must be {need}, got {shown(values[row])}")
    return numbers


def npz_arrays(path: Path, option: str, expected: str) -> dict[str, np.ndarray]:
    """The arrays of an input ``.npz`` (never unpickled); problems name ``option`` and the file."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{option}: {path} is not an .npz archive (truncated, or another format); expected {expected}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        raise ValueError(f"{option}: {path} holds pickled objects ({exc}); bilinrec never unpickles input "
                         f"files") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{option}: {path} is a corrupt or truncated .npz ({exc})") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value
