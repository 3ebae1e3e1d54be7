"""Strict parsers of delimited ratings files (every registry format and custom files).

A fast path reads the file with pandas' C parser; only when that fails (or a check fails) is the
file scanned line by line, so that every error names the file and the offending line number.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from bilinrec.data.errors import DataFormatError, looks_like_html
from bilinrec.data.registry import RatingsFormat

if TYPE_CHECKING:  # pandas is imported where a file is read: reading the registry stays light
    import pandas as pd

log = logging.getLogger(__name__)

FIELDS = ("user", "item", "rating", "timestamp")


@dataclass(frozen=True)
class RawRatings:
    """Ratings as read from a file, with the original user and item ids (one row per rating)."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    has_timestamp: bool

    def __len__(self) -> int:
        return len(self.rating)


ENCODING_HINT = (
    "if the file uses another encoding, say so (for a custom dataset: data.custom.<name>.encoding: latin-1, "
    "or cp1252, utf-16, ...), or re-save the file as UTF-8"
)


def _ascii_compatible(encoding: str) -> bool:
    try:
        return "a,\n".encode(encoding) == b"a,\n"
    except (LookupError, UnicodeError):
        return False


def _decode_error(path: Path, fmt: RatingsFormat, lineno: int | None, raw: bytes, exc: UnicodeDecodeError) -> DataFormatError:
    where = f"{path}:{lineno}" if lineno is not None else f"{path}"
    column = f" at column {exc.start + 1}" if lineno is not None else f" at byte {exc.start}"
    preview = raw.decode(fmt.encoding, errors="replace").rstrip("\r\n")[:200]
    return DataFormatError(
        f"{where}: bytes {exc.object[exc.start:exc.end]!r}{column} are not valid {fmt.encoding}: {preview!r}; "
        f"{ENCODING_HINT}"
    )


def _check_encoding(path: Path, fmt: RatingsFormat) -> None:
    """Raise :class:`DataFormatError` if the encoding name is unknown."""
    import codecs

    try:
        codecs.lookup(fmt.encoding)
    except LookupError:
        raise DataFormatError(f"{path}: unknown text encoding {fmt.encoding!r} (e.g. utf-8, latin-1, cp1252)") from None


def _lines(path: Path, fmt: RatingsFormat) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded line); a decoding error names the line and the bytes."""
    if _ascii_compatible(fmt.encoding):
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    yield lineno, raw.decode(fmt.encoding)
                except UnicodeDecodeError as exc:
                    raise _decode_error(path, fmt, lineno, raw, exc) from None
        return
    try:
        with open(path, encoding=fmt.encoding, newline="") as fh:
            yield from enumerate(fh, start=1)
    except UnicodeDecodeError as exc:
        raise _decode_error(path, fmt, None, exc.object, exc) from None


def _data_lines(path: Path, fmt: RatingsFormat) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) of every non-blank data line (header skipped)."""
    for lineno, line in _lines(path, fmt):
        if fmt.header and lineno == 1:
            continue
        text = line.rstrip("\r\n")
        if text.strip():
            yield lineno, text


def _column_indices(path: Path, fmt: RatingsFormat) -> tuple[dict[str, int], int | None]:
    """Map each used field to its column index; also return the expected field count if known."""
    if not fmt.header:
        idx = {k: int(v) for k, v in fmt.columns.items() if v is not None}
        n_fields = 4 if set(idx) == set(FIELDS) and max(idx.values()) == 3 else None
        return idx, n_fields
    first = next(_lines(path, fmt), (1, ""))[1].rstrip("\r\n").lstrip("\ufeff")
    names = [n.strip().strip('"') for n in first.split(fmt.sep)]
    idx = {}
    for key, col in fmt.columns.items():
        if col is None:
            continue
        if isinstance(col, int):
            idx[key] = col
        elif col in names:
            idx[key] = names.index(col)
        else:
            raise DataFormatError(f"{path}:1: header {names} has no column {col!r} (for {key})")
    return idx, len(names)


def _parse_field(key: str, value: str, numeric_ids: bool) -> object:
    value = value.strip()
    if key == "rating":
        out = float(value)
        if not np.isfinite(out):
            raise ValueError(f"rating {value!r} is not finite")
        return out
    if key == "timestamp" or numeric_ids:
        return int(value)
    if not value:
        raise ValueError(f"empty {key} id")
    return value


def _locate_bad_line(
    path: Path, fmt: RatingsFormat, idx: dict[str, int], n_fields: int | None, numeric_ids: bool
) -> None:
    """Scan ``path`` line by line and raise an error naming the first malformed line."""
    if next(_data_lines(path, fmt), None) is None:
        raise DataFormatError(f"{path}: no ratings (header only?)")
    for lineno, text in _data_lines(path, fmt):
        parts = text.split(fmt.sep)
        if n_fields is None:
            n_fields = len(parts)
        if len(parts) != n_fields or len(parts) <= max(idx.values()):
            raise DataFormatError(
                f"{path}:{lineno}: expected {n_fields} fields separated by {fmt.sep!r}, got {len(parts)}: {text[:200]!r}"
            )
        for key, col in idx.items():
            try:
                _parse_field(key, parts[col], numeric_ids)
            except ValueError:
                raise DataFormatError(f"{path}:{lineno}: cannot read {key} from {parts[col]!r}: {text[:200]!r}") from None


def _line_of_row(path: Path, fmt: RatingsFormat, row: int) -> int:
    """Line number of the ``row``-th (0-based) data row."""
    for i, (lineno, _) in enumerate(_data_lines(path, fmt)):
        if i == row:
            return lineno
    raise IndexError(row)  # pragma: no cover - rows come from the same file


def _read_fast(path: Path, fmt: RatingsFormat, idx: dict[str, int], numeric_ids: bool) -> pd.DataFrame:
    import pandas as pd

    sep = fmt.sep
    source: object = path
    if len(sep) > 1:
        # The C parser takes one-character separators only: translate, e.g. "::" -> "\t".
        source = io.BytesIO(path.read_bytes().replace(sep.encode(fmt.encoding), b"\t"))
        sep = "\t"
    id_type = "int64" if numeric_ids else "str"
    dtypes = {"user": id_type, "item": id_type, "rating": "float64", "timestamp": "int64"}
    order = sorted(idx, key=idx.get)
    df = pd.read_csv(
        source,
        sep=sep,
        header=None,
        skiprows=1 if fmt.header else 0,
        usecols=[idx[k] for k in order],
        dtype={idx[k]: dtypes[k] for k in order},
        encoding=fmt.encoding,
        engine="c",
        quoting=3,  # QUOTE_NONE: ratings files do not quote
        keep_default_na=False,
        na_values=[""],
    )
    df.columns = order
    return df


def parse_ratings(path: str | Path, fmt: RatingsFormat, source: str | None = None) -> RawRatings:
    """Read a ratings file strictly; every problem raises :class:`DataFormatError` naming file and line.

    ``source`` is the name given in messages instead of ``path``: the user's own file (or
    ``<archive> member <name>``) when ``path`` is a temporary or verified copy of it.
    """
    path = Path(path)
    if source is None or source == str(path):
        return _parse_ratings(path, fmt)
    try:
        return _parse_ratings(path, fmt)
    except DataFormatError as exc:
        raise DataFormatError(renamed(str(exc), path, source)) from None


def renamed(message: str, path: str | Path, source: str) -> str:
    """``message`` with the leading ``path`` (a copy) replaced by ``source`` (what the user knows)."""
    text = str(path)
    return source + message[len(text):] if message.startswith(text) else f"{source}: {message}"


def _parse_ratings(path: Path, fmt: RatingsFormat) -> RawRatings:
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"ratings file not found: {path}")
    if path.stat().st_size == 0:
        raise DataFormatError(f"{path}: empty file, no ratings")
    with open(path, "rb") as fh:
        head = fh.read(512)
    if looks_like_html(head):
        raise DataFormatError(f"{path}: looks like an HTML page (e.g. a saved error page), not a ratings file")
    _check_encoding(path, fmt)
    idx, n_fields = _column_indices(path, fmt)
    # MovieLens ids are integers; custom files may use any string ids (integers are tried first).
    numeric_ids = True
    df = None
    for ids_numeric in ([True, False] if fmt.string_ids else [True]):
        try:
            df = _read_fast(path, fmt, idx, ids_numeric)
            numeric_ids = ids_numeric
            break
        except (ValueError, pd.errors.ParserError) as exc:
            log.debug("fast parse of %s failed (%s)", path, exc)
    if df is None:
        numeric_ids = not fmt.string_ids
        _locate_bad_line(path, fmt, idx, n_fields, numeric_ids)
        raise DataFormatError(f"{path}: could not be parsed as {fmt.sep!r}-separated ratings")
    if len(df) == 0:
        raise DataFormatError(f"{path}: no ratings (header only?)")
    _check_field_counts(path, fmt, idx, n_fields, numeric_ids, df)
    raw = RawRatings(
        user_ids=df["user"].to_numpy(),
        item_ids=df["item"].to_numpy(),
        rating=df["rating"].to_numpy(dtype=np.float64),
        timestamp=df["timestamp"].to_numpy(dtype=np.int64) if "timestamp" in df else np.zeros(len(df), np.int64),
        has_timestamp="timestamp" in df,
    )
    if not numeric_ids:
        raw = _as_unicode_ids(raw)
    _check_values(path, fmt, raw)
    return raw


def count_separators(path: Path, sep: bytes) -> int:
    """Number of ``sep`` occurrences in the file, streamed in line-aligned chunks."""
    total, carry = 0, b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 26):
            chunk = carry + chunk
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                carry = chunk
                continue
            total += chunk[:cut].count(sep)
            carry = chunk[cut:]
    return total + carry.count(sep)


def _check_field_counts(
    path: Path, fmt: RatingsFormat, idx: dict[str, int], n_fields: int | None, numeric_ids: bool, df: pd.DataFrame
) -> None:
    """Every line must have the same number of fields: pandas pads short lines and ignores long
    ones when only some columns are read, so count the separators of the whole file."""
    if df.isna().any().any():
        _locate_bad_line(path, fmt, idx, n_fields, numeric_ids)
    if n_fields is None:
        n_fields = len(next(_data_lines(path, fmt))[1].split(fmt.sep))
    lines = len(df) + int(fmt.header)
    if count_separators(path, fmt.sep.encode(fmt.encoding)) != (n_fields - 1) * lines:
        _locate_bad_line(path, fmt, idx, n_fields, numeric_ids)


def _as_unicode_ids(raw: RawRatings) -> RawRatings:
    """String ids as fixed-width unicode arrays (never object arrays, so npz needs no pickle)."""
    users = raw.user_ids.astype(str)
    items = raw.item_ids.astype(str)
    return RawRatings(users, items, raw.rating, raw.timestamp, raw.has_timestamp)


def _check_values(path: Path, fmt: RatingsFormat, raw: RawRatings) -> None:
    import pandas as pd

    r = raw.rating
    bad = np.flatnonzero((r < fmt.rating_min) | (r > fmt.rating_max))
    if bad.size:
        row = int(bad[0])
        raise DataFormatError(
            f"{path}:{_line_of_row(path, fmt, row)}: rating {r[row]:g} outside the scale "
            f"[{fmt.rating_min:g}, {fmt.rating_max:g}] ({bad.size} such rows)"
        )
    if fmt.rating_step is not None:
        steps = (r - fmt.rating_min) / fmt.rating_step
        bad = np.flatnonzero(np.abs(steps - np.round(steps)) > 1e-9)
        if bad.size:
            row = int(bad[0])
            raise DataFormatError(
                f"{path}:{_line_of_row(path, fmt, row)}: rating {r[row]:g} is not on the scale's "
                f"{fmt.rating_step:g}-star grid ({bad.size} such rows)"
            )
    pairs = pd.DataFrame({"u": raw.user_ids, "i": raw.item_ids})
    dup = pairs.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((raw.user_ids == raw.user_ids[row]) & (raw.item_ids == raw.item_ids[row]))[0])
        raise DataFormatError(
            f"{path}:{_line_of_row(path, fmt, row)}: duplicate rating of item {raw.item_ids[row]} by user "
            f"{raw.user_ids[row]} (first at line {_line_of_row(path, fmt, first)}; {int(dup.sum())} duplicate rows)"
        )
