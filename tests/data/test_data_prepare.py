"""Prepared form, loader, CLI and workflow helpers, on a tiny custom dataset and a small synthetic one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bilinrec.cli import main
from bilinrec.data import load_prepared, read_summary
from bilinrec.data.acquire import ENV_DATA_DIR
from bilinrec.data.testing import write_tiny_ratings
from bilinrec.experiments.datasets.config import (
    checked_datasets,
    data_config_for,
    fetch_record,
)
from bilinrec.experiments.datasets.steps import fetch_step, prepare_step
from bilinrec.io import load_npz
from bilinrec.seeds import derive_seed

SYNTH = {"n_users": 60, "n_items": 80, "n_ratings": 1500, "rank": 3, "sparse_per_user": 2,
         "min_ratings_per_user": 5}


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)
    entry = write_tiny_ratings(tmp_path / "src" / "tiny.csv", n_users=12, n_items=15, per_user=6)
    return {"custom": {"tiny": entry}, "allow_download": False, "synthetic_ml": SYNTH}


def test_custom_dataset_prepared_with_contiguous_ids(tmp_path, tiny):
    record = fetch_step("tiny", tiny, tmp_path / "res")
    assert record["source"] == "custom" and record["check"] == "parse"
    summary = prepare_step("tiny", tiny, resources=tmp_path / "res", out_dir=tmp_path / "out")
    data = load_prepared(tmp_path / "out" / "ratings.npz")
    assert (data.n_users, data.n_items, data.n_ratings) == (12, summary["n_items"], 72)
    assert data.user.dtype == data.item.dtype == data.timestamp.dtype == np.int64 and data.rating.dtype == np.float64
    assert set(np.unique(data.user)) == set(range(data.n_users))
    assert set(np.unique(data.item)) == set(range(data.n_items))
    assert np.all(np.diff(data.user * data.n_items + data.item) > 0)  # sorted by (user, item), no duplicates
    assert data.user_ids.dtype.kind == "U" and data.user_ids[0] == "u1"
    # rows map back to the original file through user_ids / item_ids
    lines = (tmp_path / "src" / "tiny.csv").read_text().splitlines()[1:]
    original = {(u, int(i)): float(r) for u, i, r, _ in (line.split(",") for line in lines)}
    restored = {(data.user_ids[u], int(data.item_ids[i])): r for u, i, r in zip(data.user, data.item, data.rating)}
    assert restored == original
    assert summary["n_ratings"] == 72 and summary["density"] == pytest.approx(72 / (12 * data.n_items))
    assert sum(summary["rating_histogram"].values()) == 72
    assert summary["user_activity"]["q50"] == 6 and summary["source"]["ratings_sha256"] == record["ratings_sha256"]
    assert data.truth is None
    csr = data.to_csr()
    assert csr.shape == (12, data.n_items) and csr.nnz == 72 and csr.sum() == pytest.approx(data.rating.sum())
    assert data.to_csr("ones").sum() == 72
    assert data.to_csr(np.arange(72.0)).sum() == pytest.approx(np.arange(72.0).sum())
    with pytest.raises(ValueError, match="values must have shape"):
        data.to_csr(np.ones(3))


def test_prepare_refuses_an_unfetched_or_changed_file(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="bilinrec data fetch tiny"):
        prepare_step("tiny", tiny, resources=tmp_path / "res", out_dir=tmp_path / "out")
    fetch_step("tiny", tiny, tmp_path / "res")
    (tmp_path / "res" / "tiny" / "tiny.csv").write_text("user,item,rating,timestamp\nu1,1,5,1\n")
    with pytest.raises(ValueError, match="changed since it was verified"):
        prepare_step("tiny", tiny, resources=tmp_path / "res", out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_synthetic_prepared_with_ground_truth_and_seed_from_root(tmp_path, tiny):
    summary = prepare_step("synthetic-ml", tiny, root_seed=11, out_dir=tmp_path / "a")
    prepare_step("synthetic-ml", tiny, root_seed=11, out_dir=tmp_path / "b")
    assert summary["source"]["seed"] == derive_seed(11, "synthetic-ml")
    a, b = load_npz(tmp_path / "a" / "ratings.npz"), load_npz(tmp_path / "b" / "ratings.npz")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    data = load_prepared(tmp_path / "a")
    assert data.n_ratings == 1500 and data.truth is not None
    assert data.truth.user_factors.shape == (data.n_users, 3)
    assert data.truth.item_factors.shape == (data.n_items, 3)
    assert np.corrcoef(data.truth.score(data.user, data.item), data.rating)[0, 1] > 0.7
    with pytest.raises(ValueError, match="root_seed"):
        prepare_step("synthetic-ml", tiny, out_dir=tmp_path / "c")


def test_load_prepared_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepared dataset not found"):
        load_prepared(tmp_path / "nothing.npz")
    np.savez(tmp_path / "x.npz", user=np.arange(3))
    with pytest.raises(ValueError, match="missing arrays"):
        load_prepared(tmp_path / "x.npz")


def test_cli_fetch_prepare_info(tmp_path, tiny, monkeypatch, capsys):
    import yaml

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"seed": 5, "data": tiny}))
    assert main(["data", "fetch", "tiny"]) == 0
    assert json.loads(capsys.readouterr().out)["check"] == "parse"
    assert main(["data", "prepare", "tiny", "--out", "prepared"]) == 0
    assert "72 ratings, 12 users" in capsys.readouterr().out
    assert read_summary(tmp_path / "prepared" / "tiny")["n_ratings"] == 72
    assert main(["data", "prepare", "synthetic-ml", "--out", "prepared"]) == 0
    assert "1500 ratings" in capsys.readouterr().out
    assert read_summary(tmp_path / "prepared" / "synthetic-ml")["source"]["seed"] == derive_seed(5, "synthetic-ml")
    assert main(["data", "info", "ml-1m"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["expected_counts"]["n_ratings"] == 1_000_209 and info["format"]["sep"] == "::"
    assert main(["data", "fetch", "ml-1m", "--no-download"]) == 2
    assert "ml-1m.zip" in capsys.readouterr().err
    assert main(["data", "info", "no-such-set"]) == 2


def test_workflow_helpers_select_only_what_a_step_depends_on(tiny):
    config = {"data": {**tiny, "download_retries": 3, "download_timeout": 30}}
    assert fetch_record("synthetic-ml") == [] and fetch_record("ml-100k") == ["resources/ml-100k/source.json"]
    assert data_config_for(config, "prepare", "ml-100k") == {}
    assert data_config_for(config, "prepare", "synthetic-ml") == {"synthetic_ml": SYNTH}
    fetch_params = data_config_for(config, "fetch", "tiny")
    assert fetch_params["custom"] == {"tiny": tiny["custom"]["tiny"]} and "synthetic_ml" not in fetch_params
    with pytest.raises(ValueError, match="step must be"):
        data_config_for(config, "plot", "tiny")
    assert checked_datasets({**config, "datasets": ["ml-1m", "tiny", "synthetic-ml"]}) == ["ml-1m", "tiny", "synthetic-ml"]
    with pytest.raises(ValueError, match="config datasets: unknown dataset 'ml-7m'"):
        checked_datasets({**config, "datasets": ["ml-100k", "ml-7m"]})


def test_local_dir_precedence_explicit_then_env_then_config(tmp_path, monkeypatch):
    from bilinrec.experiments.datasets import steps

    seen = []
    monkeypatch.setattr(steps, "fetch", lambda spec, resources, local_dir, **kw: seen.append(local_dir))
    data = {"local_dir": str(tmp_path / "config")}
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path / "env"))
    fetch_step("ml-100k", data, tmp_path, local_dir=tmp_path / "flag")
    fetch_step("ml-100k", data, tmp_path)
    monkeypatch.delenv(ENV_DATA_DIR)
    fetch_step("ml-100k", data, tmp_path)
    assert seen == [tmp_path / "flag", tmp_path / "env", tmp_path / "config"]
