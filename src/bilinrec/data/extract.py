"""Safe, atomic extraction of zip archives.

Every member is checked before anything is written: no absolute paths, no ``..`` components,
no symlinks, a bounded number of members, bounded total size and compression ratio (zip-bomb
guard). Members are extracted into a temporary directory beside the destination, with their
actual byte counts checked as they stream, and only a fully extracted tree is returned.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from bilinrec.data.errors import DataFormatError, looks_like_html

#: Limits of :func:`safe_extract`; generous for the largest MovieLens archive (ml-25m, ~1.2 GB extracted).
MAX_TOTAL_BYTES = 8 * 1024**3
MAX_MEMBERS = 10_000
MAX_RATIO = 100.0
_CHUNK = 1 << 20


#: Compression methods Python's zipfile reads (stored, deflate, bzip2, lzma).
SUPPORTED_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                     zipfile.ZIP_LZMA: "lzma"}
_METHOD_NAMES = {9: "Deflate64 (enhanced deflate)", 6: "implode", 93: "zstd", 95: "xz", 98: "PPMd", 99: "AES"}
REZIP_HINT = ("re-zip it with a standard method (e.g. `unzip` it with 7-Zip or your archive tool, then "
              "`zip -r -Z deflate NAME.zip FOLDER/`), or put the extracted folder instead of the archive")


def _check_member(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    if info.compress_type not in SUPPORTED_METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise DataFormatError(
            f"{archive}: member {info.filename!r} is compressed with {method}, which Python's zipfile cannot "
            f"read (it reads {', '.join(SUPPORTED_METHODS.values())}); {REZIP_HINT}"
        )
    if info.flag_bits & 0x1:
        raise DataFormatError(f"{archive}: member {info.filename!r} is encrypted (password-protected); {REZIP_HINT}")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise DataFormatError(f"{archive}: member {info.filename!r} has an absolute path; refusing to extract")
    if ".." in parts:
        raise DataFormatError(f"{archive}: member {info.filename!r} escapes the target directory (..)")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DataFormatError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to extract")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > _CHUNK:
        raise DataFormatError(
            f"{archive}: member {info.filename!r} expands {info.file_size / info.compress_size:.0f}x "
            f"(limit {MAX_RATIO:.0f}x); refusing a possible zip bomb"
        )


def open_zip(archive: str | Path) -> zipfile.ZipFile:
    """Open ``archive``, turning 'not a zip' into a clear error (HTML page, truncated download)."""
    archive = Path(archive)
    with open(archive, "rb") as fh:
        head = fh.read(512)
    if looks_like_html(head):
        raise DataFormatError(f"{archive}: is an HTML page (e.g. an error page saved as .zip), not a zip archive")
    try:
        return zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{archive}: not a valid zip archive (truncated or corrupt download?): {exc}") from None


def safe_extract(archive: str | Path, parent: str | Path) -> Path:
    """Extract ``archive`` into a new temporary directory inside ``parent`` and return it.

    The caller moves what it needs into place and removes the directory. On any error the
    temporary directory is removed and a :class:`DataFormatError` is raised.
    """
    archive = Path(archive)
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    with open_zip(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise DataFormatError(f"{archive}: {len(infos)} members (limit {MAX_MEMBERS}); refusing to extract")
        for info in infos:
            _check_member(archive, info)
        declared = sum(i.file_size for i in infos)
        if declared > MAX_TOTAL_BYTES:
            raise DataFormatError(f"{archive}: expands to {declared} bytes (limit {MAX_TOTAL_BYTES}); refusing")
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=parent))
        try:
            written = 0
            for info in infos:
                out = tmp / info.filename.replace("\\", "/")
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    member_bytes = 0
                    while chunk := src.read(_CHUNK):
                        member_bytes += len(chunk)
                        written += len(chunk)
                        if member_bytes > info.file_size or written > MAX_TOTAL_BYTES:
                            raise DataFormatError(f"{archive}: member {info.filename!r} is larger than declared")
                        dst.write(chunk)
        except (NotImplementedError, RuntimeError) as exc:  # compression or encryption zipfile cannot read
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataFormatError(f"{archive}: cannot extract: {exc}; {REZIP_HINT}") from None
        except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataFormatError(f"{archive}: corrupt or truncated archive ({exc}); download it again or "
                                  f"replace it with a good copy") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return tmp
