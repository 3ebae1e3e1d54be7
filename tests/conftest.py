"""Fixtures shared by the test suite."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
#: Test files that share the session's smoke run (``smoke_local_run``): one xdist worker runs them all.
SMOKE_FILES = ("test_workflow_smoke.py", "test_cluster_slurm.py")


def movielens_dir() -> Path | None:
    """The directory of real MovieLens archives given by BILINREC_DATA_DIR, if any."""
    value = os.environ.get("BILINREC_DATA_DIR")
    return Path(value) if value and Path(value).is_dir() else None


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (Snakefile, config, overlays, environment, rules, notebooks, cluster profile) into ``dest``."""
    dest.mkdir(parents=True)
    for name in ("Snakefile", "config.yaml", "environment.yml"):
        shutil.copy(ROOT / name, dest / name)
    # profiles/default is left out: its 10 s job-rate window would slow the tests' many short runs
    for name in ("config", "workflow", "notebooks", "profiles/slurm"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def workflow_copy(tmp_path):
    """A copy of the workflow in a temporary directory."""
    return copy_workflow(tmp_path / "wf")


def dry_run_with(workdir: Path, override: dict):
    """``snakemake -n`` in ``workdir`` with the config ``override`` laid over config.yaml: the
    CompletedProcess and its merged output."""
    import yaml

    bad = workdir / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    proc = run_snakemake(workdir, "-n", "--cores", "1", "--configfile", str(bad))
    return proc, proc.stdout + proc.stderr


def run_snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 900):
    """Run Snakemake in ``workdir``; returns the CompletedProcess (stdout+stderr merged)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*SNAKEMAKE, "--directory", str(workdir), "--snakefile", str(workdir / "Snakefile"), *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=workdir,
    )


@pytest.fixture(scope="session")
def smoke_local_run(tmp_path_factory):
    """The whole workflow run locally on the smoke config (tests/workflow/test_workflow_smoke.py), once
    per session: (workflow dir, first run, dry run, report run)."""
    from test_workflow_smoke import run_smoke

    return run_smoke(tmp_path_factory.mktemp("smoke"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under ``--dist load`` (the default of ``-n``), schedule like it but send the tests of
    SMOKE_FILES to one worker as a single unit, so the smoke run is made once (it takes minutes)
    while the other workers run everything else. (xdist's own ``xdist_group`` mark has no effect
    with pytest 9.2, which ignores the node-id suffix xdist 3.8 adds.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SmokeOnOneWorker(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return "smoke run" if nodeid.split("::")[0].endswith(SMOKE_FILES) else nodeid

    return SmokeOnOneWorker(config, log)


@pytest.fixture
def load_bench(monkeypatch):
    """``load_bench(name)``: the script ``benchmarks/<name>.py`` as a module, imported as it runs
    (from its folder, ``from common import ...``), and unloaded afterwards."""
    loaded = []

    def load(name: str):
        monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
        loaded.append(name)
        return importlib.import_module(name)

    yield load
    for name in loaded:
        sys.modules.pop(name, None)
