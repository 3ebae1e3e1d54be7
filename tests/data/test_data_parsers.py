"""Parsers of every registry format and of custom files, on tiny files written here."""

from __future__ import annotations

import numpy as np
import pytest

from bilinrec.data import DataFormatError, get_spec, parse_ratings
from bilinrec.data.registry import MOVIELENS, custom_spec


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def fmt(name):
    return MOVIELENS[name].fmt


def test_registry_has_every_movielens_dataset_with_url_and_format():
    for name in ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"):
        spec = get_spec(name)
        assert spec.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
        assert spec.fmt is not None and spec.ratings_path.endswith(spec.ratings_filename)
    assert get_spec("ml-10m").archive_sha256 is None and get_spec("ml-10m").archive_md5
    assert get_spec("ml-latest-small").archive_sha256 is None
    assert get_spec("ml-latest-small").expected_counts() == {}
    assert get_spec("ml-100k").expected_counts() == {"n_ratings": 100_000, "n_users": 943, "n_items": 1_682}
    assert get_spec("synthetic-ml").kind == "synthetic"


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'ml-2k'.*ml-100k"):
        get_spec("ml-2k")


def test_ml100k_tab_format(tmp_path):
    path = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    raw = parse_ratings(path, fmt("ml-100k"))
    assert raw.user_ids.tolist() == [196, 186, 22]
    assert raw.item_ids.tolist() == [242, 302, 377]
    assert raw.rating.tolist() == [3.0, 3.0, 1.0]
    assert raw.timestamp.dtype == np.int64 and raw.timestamp[0] == 881250949


def test_ml1m_double_colon_format(tmp_path):
    path = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    raw = parse_ratings(path, fmt("ml-1m"))
    assert raw.user_ids.tolist() == [1, 1, 2]
    assert raw.rating.tolist() == [5.0, 3.0, 4.0]


def test_ml10m_half_stars(tmp_path):
    path = write(tmp_path, "ratings.dat", "1::122::5::838985046\n1::185::4.5::838983525\n2::292::0.5::838983421\n")
    raw = parse_ratings(path, fmt("ml-10m"))
    assert raw.rating.tolist() == [5.0, 4.5, 0.5]


@pytest.mark.parametrize("name", ["ml-20m", "ml-25m", "ml-latest-small"])
def test_csv_with_header(tmp_path, name):
    text = "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n2,32,0.5,1112484819\n"
    raw = parse_ratings(write(tmp_path, "ratings.csv", text), fmt(name))
    assert raw.user_ids.tolist() == [1, 1, 2] and raw.item_ids.tolist() == [2, 29, 32]
    assert raw.rating.tolist() == [3.5, 3.5, 0.5]


def test_csv_header_with_reordered_columns(tmp_path):
    text = "movieId,timestamp,userId,rating\n2,1112486027,1,3.5\n"
    raw = parse_ratings(write(tmp_path, "ratings.csv", text), fmt("ml-20m"))
    assert (raw.user_ids[0], raw.item_ids[0], raw.rating[0], raw.timestamp[0]) == (1, 2, 3.5, 1112486027)


def test_custom_string_ids_without_timestamp(tmp_path):
    path = write(tmp_path, "r.tsv", "alice;book 1;4\nbob;book 2;2.5\n")
    spec = custom_spec("mine", {"path": str(path), "sep": ";", "header": False,
                                "columns": {"user": 0, "item": 1, "rating": 2}, "rating_scale": [0, 5]})
    raw = parse_ratings(path, spec.fmt)
    assert raw.user_ids.tolist() == ["alice", "bob"] and raw.item_ids.tolist() == ["book 1", "book 2"]
    assert raw.user_ids.dtype.kind == "U"  # never object arrays (no pickles in npz)
    assert not raw.has_timestamp and raw.timestamp.tolist() == [0, 0]


def test_custom_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"data.custom.x.path"):
        custom_spec("x", {"columns": {"user": 0, "item": 1, "rating": 2}})
    with pytest.raises(ValueError, match=r"data.custom.x.columns: missing rating"):
        custom_spec("x", {"path": "a", "columns": {"user": 0, "item": 1}})
    with pytest.raises(ValueError, match=r"needs header: true"):
        custom_spec("x", {"path": "a", "header": False, "columns": {"user": "u", "item": 1, "rating": 2}})
    with pytest.raises(ValueError, match="clashes"):
        get_spec("ml-100k", {"ml-100k": {"path": "a", "columns": {"user": 0, "item": 1, "rating": 2}}})


@pytest.mark.parametrize(
    "text, message",
    [
        ("1\t2\t3\t4\n1\t3\t3\n", r"u.data:2: expected 4 fields"),
        ("1\t2\t3\t4\n1\t3\t3\t5\t9\n", r"u.data:2: expected 4 fields"),
        ("1\t2\t3\t4\t7\n", r"u.data:1: expected 4 fields"),
        ("1\t2\t3\t4\n\n1\tx\t3\t5\n", r"u.data:3: cannot read item from 'x'"),
        ("1\t2\t3\t4\n1\t3\t\t5\n", r"u.data:2: cannot read rating"),
        ("1\t2\t3\t4\n1\t3\t6\t5\n", r"u.data:2: rating 6 outside the scale \[1, 5\]"),
        ("1\t2\t0\t4\n", r"u.data:1: rating 0 outside the scale"),
        ("1\t2\t3.5\t4\n", r"u.data:1: rating 3.5 is not on the scale's 1-star grid"),
        ("1\t2\t3\t4\n1\t5\t3\t4\n1\t2\t4\t9\n", r"u.data:3: duplicate rating of item 2 by user 1 \(first at line 1"),
        ("", r"u.data: empty file"),
        ("<!DOCTYPE html><html><body>404 Not Found</body></html>\n", r"u.data: looks like an HTML page"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, text, message):
    with pytest.raises(DataFormatError, match=message):
        parse_ratings(write(tmp_path, "u.data", text), fmt("ml-100k"))


def test_header_only_and_missing_header_column(tmp_path):
    with pytest.raises(DataFormatError, match="no ratings"):
        parse_ratings(write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n"), fmt("ml-20m"))
    with pytest.raises(DataFormatError, match=r"ratings.csv:1: header .* has no column 'movieId'"):
        parse_ratings(write(tmp_path, "ratings.csv", "userId,item,rating,timestamp\n1,2,3,4\n"), fmt("ml-20m"))


def test_double_colon_bad_line_reported_with_original_separator(tmp_path):
    path = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1:::661::3::978302109\n")
    with pytest.raises(DataFormatError, match=r"ratings.dat:2: "):
        parse_ratings(path, fmt("ml-1m"))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        parse_ratings(tmp_path / "nope.dat", fmt("ml-1m"))
