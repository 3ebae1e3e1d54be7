"""Fixtures shared by the test suite."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def movielens_dir() -> Path | None:
    """The directory of real MovieLens archives given by BILINREC_DATA_DIR, if any."""
    value = os.environ.get("BILINREC_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (Snakefile, config, overlays, environment, rules, notebooks) into ``dest``."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "config.yaml", "environment.yml"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("config", "workflow", "notebooks"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the workflow in a temporary directory."""
    return copy_workflow(tmp_path / "wf")


def run_snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 900):
    """Run Snakemake in ``workdir``; returns the CompletedProcess (stdout+stderr merged)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--snakefile", str(workdir / "Snakefile"), *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=workdir,
    )


@pytest.fixture(scope="session")
def smoke_local_run(tmp_path_factory):
    """The whole workflow run locally on the smoke config (tests/test_workflow_smoke.py), once
    per session: (workflow dir, first run, dry run, report run)."""
    from test_workflow_smoke import run_smoke

    return run_smoke(tmp_path_factory.mktemp("smoke"))
