"""OpenBLAS's idle threads: the environment the workflow's jobs and the AMHT-LRS benchmark get."""

from pathlib import Path

from bilinrec.blas import QUIET_BLAS, quiet_blas


def test_quiet_blas_adds_the_timeout_and_keeps_a_users_value():
    assert quiet_blas({}) == QUIET_BLAS == {"OPENBLAS_THREAD_TIMEOUT": "4"}
    mine = {"OPENBLAS_THREAD_TIMEOUT": "20", "PATH": "/bin"}
    assert quiet_blas(mine) is mine and mine == {"OPENBLAS_THREAD_TIMEOUT": "20", "PATH": "/bin"}


def test_the_workflow_sets_it_for_every_job():
    """The rule files' common part sets it in the environment Snakemake's jobs inherit."""
    common = (Path(__file__).parents[1] / "workflow" / "rules" / "common.smk").read_text()
    assert "quiet_blas(os.environ)" in common
