"""Acquisition order, verification and safe extraction, on tiny fake archives (no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
import stat
import time
import urllib.error
import zipfile

import pytest

from bilinrec.data import AcquisitionError, DataFormatError, VerificationError, fetch
from bilinrec.data.acquire import ENV_DATA_DIR, ratings_file_of, resolve_local_dir
from bilinrec.data.extract import safe_extract
from bilinrec.data.registry import MOVIELENS

U_DATA = "1\t10\t4\t881250949\n1\t20\t3\t881250950\n2\t10\t5\t881250951\n3\t30\t1\t881250952\n"
U_DATA_SHA = hashlib.sha256(U_DATA.encode()).hexdigest()


def make_zip(path, members):
    """Write a zip with ``members`` (name -> text) and return its sha256."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_spec(**overrides):
    """ml-100k's format with checks that fit the tiny U_DATA (4 ratings, 3 users, 3 items)."""
    base = dict(archive_sha256="0" * 64, ratings_sha256=U_DATA_SHA, n_ratings=4, n_users=3, n_items=3)
    return dataclasses.replace(MOVIELENS["ml-100k"], **{**base, **overrides})


class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def opener_serving(data, calls=None):
    def opener(url, timeout):
        if calls is not None:
            calls.append((url, timeout))
        return FakeResponse(data)

    return opener


def assert_nothing_left(resources, name="ml-100k"):
    """A failed fetch into an empty resources/ leaves no file or folder behind."""
    assert not (resources / name).exists(), list((resources / name).rglob("*"))


@pytest.fixture(autouse=True)
def no_env_data_dir(monkeypatch):
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)


def test_download_of_official_archive_is_verified_by_sha256(tmp_path):
    archive = tmp_path / "official.zip"
    sha = make_zip(archive, {"ml-100k/u.data": U_DATA, "ml-100k/README": "readme"})
    calls = []
    record = fetch(tiny_spec(archive_sha256=sha), tmp_path / "res", opener=opener_serving(archive.read_bytes(), calls),
                   timeout=7)
    assert calls == [("https://files.grouplens.org/datasets/movielens/ml-100k.zip", 7)]
    assert record["source"] == "download" and record["check"] == "archive-sha256"
    assert (tmp_path / "res/ml-100k/ml-100k/u.data").read_text() == U_DATA
    assert json.loads((tmp_path / "res/ml-100k/source.json").read_text()) == record


def test_download_with_wrong_checksum_fails_and_leaves_nothing(tmp_path):
    archive = tmp_path / "other.zip"
    make_zip(archive, {"ml-100k/u.data": U_DATA})
    with pytest.raises(VerificationError, match="differs from the published 0000"):
        fetch(tiny_spec(), tmp_path / "res", opener=opener_serving(archive.read_bytes()))
    assert_nothing_left(tmp_path / "res")
    assert not (tmp_path / "res/ml-100k/ml-100k").exists()


def test_html_error_page_saved_as_zip_is_rejected(tmp_path):
    page = b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>"
    with pytest.raises(DataFormatError, match="HTML page"):
        fetch(tiny_spec(archive_sha256=None), tmp_path / "res", opener=opener_serving(page))
    assert_nothing_left(tmp_path / "res")


def test_truncated_zip_is_rejected(tmp_path):
    archive = tmp_path / "local" / "ml-100k.zip"
    archive.parent.mkdir()
    make_zip(archive, {"ml-100k/u.data": U_DATA})
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="not a valid zip archive|corrupt or truncated"):
        fetch(tiny_spec(), tmp_path / "res", local_dir=archive.parent, allow_download=False)
    assert_nothing_left(tmp_path / "res")


def test_offline_without_local_copy_fails_fast_with_instructions(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    start = time.monotonic()
    with pytest.raises(AcquisitionError) as err:
        fetch(MOVIELENS["ml-100k"], tmp_path / "res", opener=offline, retries=3)
    assert time.monotonic() - start < 5
    message = str(err.value)
    for part in ("https://files.grouplens.org/datasets/movielens/ml-100k.zip", "ml-100k.zip", ENV_DATA_DIR,
                 "data.local_dir"):
        assert part in message
    assert not (tmp_path / "res/ml-100k").exists()


def test_transient_download_errors_are_retried(tmp_path, monkeypatch):
    monkeypatch.setattr("bilinrec.data.acquire.time.sleep", lambda s: None)
    archive = tmp_path / "official.zip"
    sha = make_zip(archive, {"ml-100k/u.data": U_DATA})
    attempts = []

    def flaky(url, timeout):
        attempts.append(url)
        if len(attempts) < 3:
            raise urllib.error.HTTPError(url, 503, "busy", {}, None)
        return FakeResponse(archive.read_bytes())

    assert fetch(tiny_spec(archive_sha256=sha), tmp_path / "res", opener=flaky, retries=3)["source"] == "download"
    assert len(attempts) == 3


def test_downloads_disabled_names_the_url(tmp_path):
    with pytest.raises(AcquisitionError, match="downloads are disabled.*ml-100k.zip"):
        fetch(MOVIELENS["ml-100k"], tmp_path / "res", allow_download=False)


def test_local_rezip_is_accepted_by_content_checksum(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    make_zip(local / "ml-100k.zip", {"ml-100k/u.data": U_DATA})
    record = fetch(tiny_spec(), tmp_path / "res", local_dir=local, allow_download=False)
    assert record["source"] == "local_dir" and record["check"] == "ratings-sha256"
    assert "not the official one" in record["check_detail"]


def test_local_copy_with_other_content_is_rejected(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    make_zip(local / "ml-100k.zip", {"ml-100k/u.data": U_DATA.replace("\t4\t", "\t5\t")})
    with pytest.raises(VerificationError, match="differs from the published content checksum"):
        fetch(tiny_spec(), tmp_path / "res", local_dir=local, allow_download=False)
    assert_nothing_left(tmp_path / "res")
    assert not (tmp_path / "res/ml-100k/ml-100k").exists()


def test_local_copy_checked_by_counts_when_no_content_checksum(tmp_path):
    local = tmp_path / "local" / "ml-100k"
    local.mkdir(parents=True)
    (local / "u.data").write_text(U_DATA)
    record = fetch(tiny_spec(ratings_sha256=None), tmp_path / "res", local_dir=local.parent, allow_download=False)
    assert record["check"] == "counts" and record["counts"] == {"n_ratings": 4, "n_users": 3, "n_items": 3}
    with pytest.raises(VerificationError, match=r"n_users=3 \(expected 4\)"):
        fetch(tiny_spec(ratings_sha256=None, n_users=4), tmp_path / "res2", local_dir=local.parent,
              allow_download=False)
    assert_nothing_left(tmp_path / "res2")


def test_unknown_checksum_and_counts_fall_back_to_a_strict_parse(tmp_path):
    local = tmp_path / "local"
    make_zip_dir = local / "ml-latest-small"
    make_zip_dir.mkdir(parents=True)
    (make_zip_dir / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    record = fetch(MOVIELENS["ml-latest-small"], tmp_path / "res", local_dir=local, allow_download=False)
    assert record["check"] == "parse"
    (make_zip_dir / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,7.0,964982703\n")
    with pytest.raises(DataFormatError, match="outside the scale"):
        fetch(MOVIELENS["ml-latest-small"], tmp_path / "res2", local_dir=local, allow_download=False)


def test_resources_copy_comes_first_and_env_wins_over_config(tmp_path, monkeypatch):
    res = tmp_path / "res"
    (res / "ml-100k").mkdir(parents=True)
    make_zip(res / "ml-100k" / "ml-100k.zip", {"ml-100k/u.data": U_DATA})
    record = fetch(tiny_spec(), res, local_dir=tmp_path / "elsewhere", allow_download=False)
    assert record["source"] == "resources"
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path / "env"))
    assert resolve_local_dir(tmp_path / "config") == tmp_path / "env"
    monkeypatch.delenv(ENV_DATA_DIR)
    assert resolve_local_dir(tmp_path / "config") == tmp_path / "config"
    assert resolve_local_dir(None) is None


def test_second_fetch_does_nothing_and_a_changed_file_is_refetched(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    make_zip(local / "ml-100k.zip", {"ml-100k/u.data": U_DATA})
    res = tmp_path / "res"
    fetch(tiny_spec(), res, local_dir=local, allow_download=False)
    record_file = res / "ml-100k" / "source.json"
    before = record_file.stat().st_mtime_ns
    (local / "ml-100k.zip").unlink()  # a verified copy needs no source any more
    assert fetch(tiny_spec(), res, allow_download=False)["source"] == "local_dir"
    assert record_file.stat().st_mtime_ns == before
    path, _ = ratings_file_of(res, "ml-100k")
    path.write_text(U_DATA + "4\t40\t2\t881250953\n")
    with pytest.raises(VerificationError, match="changed since it was verified"):
        ratings_file_of(res, "ml-100k")
    with pytest.raises(VerificationError, match="content checksum"):  # the resources copy is re-checked
        fetch(tiny_spec(), res, allow_download=False)


def test_archive_without_the_ratings_file(tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    make_zip(local / "ml-100k.zip", {"ml-100k/README": "x"})
    with pytest.raises(DataFormatError, match="has no member 'ml-100k/u.data'"):
        fetch(tiny_spec(), tmp_path / "res", local_dir=local, allow_download=False)
    assert_nothing_left(tmp_path / "res")


@pytest.mark.parametrize(
    "member, message",
    [("../evil.txt", r"escapes the target"), ("ml-100k/../../evil.txt", r"escapes the target"),
     ("/etc/evil.txt", "absolute path"), ("..\\evil.txt", "escapes the target")],
)
def test_extraction_refuses_path_traversal(tmp_path, member, message):
    archive = tmp_path / "bad.zip"
    make_zip(archive, {"ml-100k/u.data": U_DATA, member: "x"})
    with pytest.raises(DataFormatError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_extraction_refuses_symlinks(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("ml-100k/u.data")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DataFormatError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_extraction_refuses_zip_bombs(tmp_path):
    archive = tmp_path / "bomb.zip"
    make_zip(archive, {"ml-100k/u.data": "0" * (8 << 20)})
    with pytest.raises(DataFormatError, match="zip bomb"):
        safe_extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_extraction_is_atomic_on_corrupt_member(tmp_path):
    archive = tmp_path / "corrupt.zip"
    make_zip(archive, {"a/first.txt": "fine " * 1000, "a/second.txt": "also fine " * 1000})
    data = bytearray(archive.read_bytes())
    offset = data.find(b"a/second.txt") + len("a/second.txt") + 5
    data[offset : offset + 20] = b"\xff" * 20  # corrupt the compressed payload of the second member
    archive.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="corrupt or truncated"):
        safe_extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_synthetic_has_nothing_to_fetch(tmp_path):
    from bilinrec.data import get_spec

    with pytest.raises(ValueError, match="nothing to fetch"):
        fetch(get_spec("synthetic-ml"), tmp_path)
