"""The whole workflow runs end to end on a small config (synthetic-ml plus a tiny file in
MovieLens 100K format), writes every figure, table, notebook and the provenance, and a
second run has nothing to do."""

import json

import numpy as np
import pytest
import yaml

from conftest import run_snakemake

pytestmark = pytest.mark.workflow


def write_ml100k_format_fixture(path, n_users=40, n_items=30, per_user=18, seed=0):
    """A tiny tab-separated `user item rating timestamp` file, as MovieLens 100K's u.data."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        for i in np.sort(rng.choice(n_items, size=per_user, replace=False)) + 1:
            rows.append(f"{u}\t{i}\t{rng.integers(1, 6)}\t{880000000 + rng.integers(0, 10**6)}")
    path.write_text("\n".join(rows) + "\n")
    return {
        "path": str(path),
        "sep": "\t",
        "header": False,
        "columns": {"user": 0, "item": 1, "rating": 2, "timestamp": 3},
        "rating_scale": [1, 5],
    }


def smoke_config(tmp_path):
    tiny = write_ml100k_format_fixture(tmp_path / "u.data")
    return {
        "datasets": ["tiny", "synthetic-ml"],
        "data": {
            "allow_download": False,
            "custom": {"tiny": tiny},
            "synthetic_ml": {
                "n_users": 60, "n_items": 80, "n_ratings": 1500, "min_ratings_per_user": 12,
                "rank": 3, "sparse_per_user": 2,
            },
        },
    }


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    from conftest import ROOT
    import shutil

    base = tmp_path_factory.mktemp("smoke")
    wf = base / "wf"
    wf.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(ROOT / name, wf / name)
    for name in ("workflow", "notebooks"):
        shutil.copytree(ROOT / name, wf / name, ignore=shutil.ignore_patterns("__pycache__"))
    cfg = wf / "smoke.yaml"
    cfg.write_text(yaml.safe_dump(smoke_config(base)))
    env = {"BILINREC_DATA_DIR": ""}
    first = run_snakemake(wf, "--cores", "2", "--configfile", str(cfg), env=env)
    second = run_snakemake(wf, "-n", "--cores", "2", "--configfile", str(cfg), env=env)
    return wf, first, second


def test_smoke_run_writes_every_output(smoke_run):
    wf, first, _ = smoke_run
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-5000:]
    results = wf / "results"
    for rel in (
        "figures/datasets_overview.pdf",
        "figures/datasets_overview.png",
        "tables/datasets.csv",
        "tables/datasets.md",
        "notebooks/datasets.ipynb",
        "notebooks/datasets.html",
        "provenance.json",
    ):
        assert (results / rel).is_file(), rel
    prov = json.loads((results / "provenance.json").read_text())
    assert prov["config"]["datasets"] == ["tiny", "synthetic-ml"]
    assert prov["packages"]["snakemake"]


def test_second_run_has_nothing_to_do(smoke_run):
    _, first, second = smoke_run
    assert first.returncode == 0
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert "Nothing to be done" in out, out[-3000:]
