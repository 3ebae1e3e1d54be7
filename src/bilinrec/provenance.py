"""Provenance of a run: resolved config, package versions, git commit, platform."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

PACKAGES = (
    "bilinrec", "numpy", "scipy", "pandas", "scikit-learn", "matplotlib", "seaborn",
    "snakemake", "papermill", "dp-accounting", "implicit",
)


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: str | Path = ".") -> dict[str, Any]:
    """Commit hash and dirty flag of ``repo`` (``None`` when it is not a git checkout)."""
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def collect_provenance(config: Mapping[str, Any], repo: str | Path = ".") -> dict[str, Any]:
    import numpy as np

    return {
        "config": dict(config),
        "packages": package_versions(),
        "git": git_state(repo),
        "python": sys.version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
        "blas": _blas_info(np),
    }


def _blas_info(np) -> str | None:
    try:
        cfg = np.show_config(mode="dicts")
        return cfg.get("Build Dependencies", {}).get("blas", {}).get("name")
    except Exception:  # noqa: BLE001 - informational only
        return None
