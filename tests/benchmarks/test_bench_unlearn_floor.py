"""The unlearning grid's FLOP-floor benchmark prices the grid the workflow would run."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(load_bench):
    return load_bench("bench_unlearn_floor")


def test_the_unlearn_section_gets_the_schema_defaults_config_yaml_leaves_out(bench):
    section = bench.unlearn_section(ROOT / "config.yaml", ROOT / "config" / "paper.yaml")
    assert section["model"]["factors"] == 100  # the schema's default; config.yaml does not list it
    assert section["n_seeds"] == 10  # the overlay's
    runs = bench.grid_runs(section)
    # every strategy x fraction on both datasets
    assert len(runs) == 6 * 4 * 2
    assert {d for d, _, _ in runs} == {"synthetic-lowrank", "ml-100k"}


def test_the_default_grid_is_what_the_workflow_runs(bench, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    runs = bench.grid_runs(bench.unlearn_section(ROOT / "config.yaml", empty))
    assert len(runs) == 13  # the default grid of workflow/schemas/unlearn.schema.yaml


def test_overlays_are_laid_over_in_turn(bench):
    section = bench.unlearn_section(ROOT / "config.yaml", ROOT / "config" / "paper.yaml",
                                    ROOT / "config" / "paper-unlearn-ml100k.yaml")
    assert section["n_seeds"] == 5  # the last overlay wins
    runs = bench.grid_runs(section)
    assert len(runs) == 6 * 4 and {d for d, _, _ in runs} == {"ml-100k"}  # paper.yaml's grid, ml-100k only
