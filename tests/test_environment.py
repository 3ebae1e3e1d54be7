"""The conda environment and pyproject.toml declare the same runtime dependencies."""

import re
import tomllib

import yaml
from conftest import ROOT

# conda-forge names that differ from the PyPI names
CONDA_ALIASES = {"snakemake-minimal": "snakemake", "matplotlib-base": "matplotlib"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_every_runtime_dependency_is_in_environment_yml():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {_name(p) for p in dep.get("pip", []) if not p.startswith("-")}
        else:
            name = _name(dep)
            names.add(CONDA_ALIASES.get(name, name))
    missing = sorted(runtime - names)
    assert not missing, f"runtime dependencies missing from environment.yml: {missing}"


def test_environment_pins_versions_and_installs_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    conda = [d for d in env["dependencies"] if isinstance(d, str) and d not in ("pip",)]
    assert all("=" in d for d in conda), "every conda dependency must be pinned"
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("-e .") for p in pip)
