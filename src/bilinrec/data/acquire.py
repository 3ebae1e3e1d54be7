"""Find, download and verify a dataset's ratings file into ``resources/<dataset>/``.

Order of sources: a copy already in ``resources/<dataset>/``; a copy in the local data
directory (``BILINREC_DATA_DIR`` wins over ``data.local_dir``), as ``<dir>/<name>.zip`` or an
extracted folder; the official URL. An official archive is verified by its published checksum;
any other copy only by the ratings file's content checksum (where known), else the documented
counts, else (no published reference at all) a strict parse. ``resources/<dataset>/source.json``
is written last and records the source and the check used, so it marks a completed fetch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bilinrec.data.errors import AcquisitionError, DataFormatError, VerificationError
from bilinrec.data.extract import safe_extract
from bilinrec.data.parsers import parse_ratings
from bilinrec.data.registry import DatasetSpec
from bilinrec.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)

ENV_DATA_DIR = "BILINREC_DATA_DIR"
SOURCE_RECORD = "source.json"


def resolve_local_dir(configured: str | os.PathLike | None = None) -> Path | None:
    """The local data directory: env ``BILINREC_DATA_DIR`` if set, else ``configured``."""
    value = os.environ.get(ENV_DATA_DIR) or configured
    return Path(value) if value else None


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _counts(spec: DatasetSpec, ratings_file: Path, source: str | None = None) -> dict[str, int]:
    raw = parse_ratings(ratings_file, spec.fmt, source=source)
    return {
        "n_ratings": len(raw),
        "n_users": len(np.unique(raw.user_ids)),
        "n_items": len(np.unique(raw.item_ids)),
    }


def _with_dataset(spec: DatasetSpec, exc: ValueError) -> ValueError:
    """Fill the dataset name into a parser's generic hint (``data.custom.<name>``)."""
    text = str(exc)
    if "<name>" in text and spec.kind == "custom":
        return type(exc)(text.replace("data.custom.<name>", f"data.custom.{spec.name}"))
    return exc


def verify_ratings_content(
    spec: DatasetSpec, ratings_file: Path, source: str | None = None
) -> tuple[str, str, dict[str, int] | None]:
    """Check a ratings file that did not come in the official archive.

    ``source`` names the file in messages when ``ratings_file`` is a temporary copy: the user's
    own file, or ``<archive> member <path>``. Returns (check name, human-readable detail, counts if
    parsed). Raises :class:`VerificationError` when the content checksum or the documented counts differ.
    """
    where = source or str(ratings_file)
    if spec.ratings_sha256:
        digest = file_digest(ratings_file)
        if digest != spec.ratings_sha256:
            raise VerificationError(
                f"{where}: sha256 {digest} differs from the published content checksum "
                f"{spec.ratings_sha256} of {spec.name}/{spec.ratings_filename}; this is not the published "
                f"{spec.name} (edited, truncated or another version): replace it with the official archive "
                f"{spec.url}, or remove it so the workflow downloads that"
            )
        return "ratings-sha256", f"content sha256 of {spec.ratings_filename} matches {spec.ratings_sha256}", None
    try:
        counts = _counts(spec, ratings_file, where)
    except DataFormatError as exc:
        raise _with_dataset(spec, exc) from None
    expected = spec.expected_counts()
    if expected:
        wrong = {k: (counts[k], v) for k, v in expected.items() if counts[k] != v}
        if wrong:
            detail = ", ".join(f"{k}={got} (expected {want})" for k, (got, want) in wrong.items())
            raise VerificationError(
                f"{where}: counts differ from the documented {spec.name}: {detail}; replace it with the "
                f"official archive {spec.url}, or remove it so the workflow downloads that"
            )
        detail = ", ".join(f"{k}={v}" for k, v in expected.items())
        return "counts", f"documented counts match: {detail}", counts
    return "parse", "no published checksum or counts; the file parsed strictly without errors", counts


def _archive_check(spec: DatasetSpec, archive: Path) -> tuple[str | None, str, str]:
    """Compare an archive with its published checksum: (check or None, detail, sha256)."""
    sha = file_digest(archive)
    if spec.archive_sha256 and sha == spec.archive_sha256:
        return "archive-sha256", f"archive sha256 matches the published {sha}", sha
    if spec.archive_md5:
        md5 = file_digest(archive, "md5")
        if md5 == spec.archive_md5:
            return "archive-md5", f"archive md5 matches the published {md5} (no sha256 is published)", sha
    return None, "", sha


def _record_is_valid(target: Path, record: dict[str, Any]) -> bool:
    ratings = target / record.get("ratings_file", "")
    return ratings.is_file() and file_digest(ratings) == record.get("ratings_sha256")


def _install(tmp_root: Path, relative: str, target: Path) -> None:
    """Move the top-level entry of ``relative`` from ``tmp_root`` into ``target`` (replacing it)."""
    top = Path(relative).parts[0]
    dest = target / top
    if dest.is_dir():
        shutil.rmtree(dest)
    elif dest.exists():
        dest.unlink()
    os.replace(tmp_root / top, dest)


def _from_archive(spec: DatasetSpec, archive: Path, target: Path, official: bool) -> dict[str, Any]:
    """Verify ``archive``, extract it safely into ``target`` and return the record fields."""
    check, detail, sha = _archive_check(spec, archive)
    if check is None and official and (spec.archive_sha256 or spec.archive_md5):
        raise VerificationError(
            f"{archive}: checksum {sha} differs from the published "
            f"{spec.archive_sha256 or 'md5 ' + str(spec.archive_md5)} of {spec.url} (downloaded from there; a "
            f"proxy, captive portal or interrupted transfer?); run again to retry, or download it yourself and "
            f"put it in {archive.parent}/ or in {ENV_DATA_DIR}"
        )
    tmp = safe_extract(archive, target)
    try:
        ratings = tmp / spec.ratings_path
        if not ratings.is_file():
            raise DataFormatError(f"{archive}: has no member {spec.ratings_path!r}; is it the {spec.name} archive?")
        counts = None
        if check is None:
            check, detail, counts = verify_ratings_content(spec, ratings, f"{archive} member {spec.ratings_path}")
            detail = f"archive is not the official one (sha256 {sha}); {detail}"
        _install(tmp, spec.ratings_path, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"check": check, "check_detail": detail, "archive_sha256": sha, "ratings_file": spec.ratings_path,
            "counts": counts}


def _from_file(spec: DatasetSpec, ratings: Path, target: Path, relative: str) -> dict[str, Any]:
    """Copy a loose ratings file into ``target/relative`` after verifying its content."""
    dest = target / relative
    if ratings.resolve() == dest.resolve():
        check, detail, counts = verify_ratings_content(spec, ratings)
    else:
        with atomic_path(dest) as tmp:
            shutil.copyfile(ratings, tmp)
            check, detail, counts = verify_ratings_content(spec, tmp, str(ratings))
    return {"check": check, "check_detail": detail, "archive_sha256": None, "ratings_file": relative,
            "counts": counts}


def _candidates(spec: DatasetSpec, directory: Path) -> list[tuple[str, Path]]:
    """Copies of ``spec`` in ``directory``: its zip archive, or an extracted folder."""
    found = []
    archive = directory / spec.archive_name
    if archive.is_file():
        found.append(("archive", archive))
    for folder_file in (directory / spec.ratings_path, directory / spec.name / spec.ratings_filename):
        if folder_file.is_file():
            found.append(("file", folder_file))
            break
    return found


def _download(url: str, dest: Path, retries: int, timeout: float, opener: Callable = urllib.request.urlopen) -> None:
    """Download ``url`` to ``dest`` atomically, with a progress bar; retry transient failures only."""
    from tqdm.auto import tqdm

    last: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            with opener(url, timeout=timeout) as resp, atomic_path(dest) as tmp, open(tmp, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
                out.flush()
            return
        except urllib.error.HTTPError as exc:
            last = exc
            if exc.code < 500:  # 4xx will not change on retry
                break
        except urllib.error.URLError as exc:
            last = exc
            if isinstance(exc.reason, socket.gaierror):  # no DNS: offline, fail fast
                break
        except (TimeoutError, ConnectionError, OSError) as exc:
            last = exc
        if attempt < retries:
            log.warning("download of %s failed (%s); retry %d/%d", url, last, attempt, retries - 1)
            time.sleep(min(2.0 ** (attempt - 1), 10.0))
    raise AcquisitionError(f"download of {url} failed: {last}")


def _offline_message(spec: DatasetSpec, target: Path, local_dir: Path | None, why: str) -> str:
    where = f"{local_dir}" if local_dir else "not set"
    return (
        f"{spec.name}: {why}. Expected the official archive {spec.url} (file name {spec.archive_name}). "
        f"Supply a local copy: put {spec.archive_name} or the extracted folder {spec.name}/ in a directory and "
        f"set {ENV_DATA_DIR}=<dir> (or data.local_dir in config.yaml; currently {where}), "
        f"or place {spec.archive_name} in {target}/."
    )


def fetch(
    spec: DatasetSpec,
    resources: str | os.PathLike = "resources",
    local_dir: str | os.PathLike | None = None,
    allow_download: bool = True,
    retries: int = 3,
    timeout: float = 30.0,
    opener: Callable = urllib.request.urlopen,
) -> dict[str, Any]:
    """Make a verified copy of ``spec``'s ratings file in ``resources/<name>/``; return its record.

    ``local_dir`` is used as given (resolve the environment with :func:`resolve_local_dir`).
    If ``source.json`` already records a verified copy whose checksum still matches, nothing is redone.
    """
    if spec.kind == "synthetic":
        raise ValueError(f"dataset: {spec.name} is generated, there is nothing to fetch")
    if retries < 1:
        raise ValueError(f"retries must be at least 1, got {retries}")
    target = Path(resources) / spec.name
    record_path = target / SOURCE_RECORD
    if record_path.is_file():
        record = read_json(record_path)
        if _record_is_valid(target, record):
            log.info("%s: already verified in %s (%s check); nothing to do", spec.name, target, record["check"])
            return record
        log.warning("%s: %s is stale (ratings file missing or changed); fetching again", spec.name, record_path)
        record_path.unlink()
    existed = target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        record = _acquire(spec, target, local_dir, allow_download, retries, timeout, opener)
    except BaseException as exc:
        log.error("%s: fetch failed: %s", spec.name, exc)
        _remove_empty_dirs(target, keep_root=existed)  # leave no empty folders behind a failed fetch
        raise
    log.info("%s: verified by %s: %s", spec.name, record["check"], record["check_detail"])
    write_json(record_path, record)
    return record


def _remove_empty_dirs(root: Path, keep_root: bool) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not keep_root and not any(root.iterdir()):
        root.rmdir()


def _acquire(
    spec: DatasetSpec,
    target: Path,
    local_dir: str | os.PathLike | None,
    allow_download: bool,
    retries: int,
    timeout: float,
    opener: Callable,
) -> dict[str, Any]:
    """Find (or download), verify and install a copy of ``spec`` in ``target``; return its record."""
    if spec.kind == "custom":
        origin = Path(spec.ratings_path)
        if not origin.is_file():
            raise FileNotFoundError(f"data.custom.{spec.name}.path: ratings file not found: {origin}")
        fields = _from_file(spec, origin, target, origin.name)
        source, where = "custom", str(origin)
    else:
        fields = source = where = None
        local = Path(local_dir) if local_dir else None
        for source_name, directory in (("resources", target), ("local_dir", local)):
            if directory is None:
                continue
            for what, path in _candidates(spec, directory):
                log.info("%s: using the %s copy %s", spec.name, source_name, path)
                if what == "archive":
                    fields = _from_archive(spec, path, target, official=False)
                else:
                    fields = _from_file(spec, path, target, spec.ratings_path)
                source, where = source_name, str(path)
                break
            if fields:
                break
        if fields is None:
            if not allow_download:
                raise AcquisitionError(_offline_message(spec, target, local, "no local copy and downloads are disabled"))
            archive = target / spec.archive_name
            log.info("%s: downloading %s", spec.name, spec.url)
            try:
                _download(spec.url, archive, retries, timeout, opener)
            except AcquisitionError as exc:
                raise AcquisitionError(_offline_message(spec, target, local, str(exc))) from None
            try:
                fields = _from_archive(spec, archive, target, official=True)
            except ValueError:
                archive.unlink(missing_ok=True)  # a bad download must not be mistaken for a local copy next time
                raise
            source, where = "download", spec.url

    ratings = target / fields["ratings_file"]
    return {
        "dataset": spec.name,
        "kind": spec.kind,
        "source": source,
        "origin": where,
        **fields,
        "ratings_sha256": file_digest(ratings),
        "ratings_bytes": ratings.stat().st_size,
    }


def ratings_file_of(resources: str | os.PathLike, name: str) -> tuple[Path, dict[str, Any]]:
    """The fetched ratings file of ``name`` and its record; checks it has not changed since."""
    target = Path(resources) / name
    record_path = target / SOURCE_RECORD
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run `bilinrec data fetch {name}` first")
    record = read_json(record_path)
    if not _record_is_valid(target, record):
        raise VerificationError(f"{target / record.get('ratings_file', '?')}: missing or changed since it was verified")
    return target / record["ratings_file"], record
