"""Benchmark scripts run from their folder (``from common import ...``): tests import them the same way."""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def load_bench(monkeypatch):
    """``load_bench(name)``: the script ``benchmarks/<name>.py`` as a module (unloaded afterwards)."""
    loaded = []

    def load(name: str):
        monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
        loaded.append(name)
        return importlib.import_module(name)

    yield load
    for name in loaded:
        sys.modules.pop(name, None)
