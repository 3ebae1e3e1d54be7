"""A bad config.yaml fails before any job runs, with a message that names the key."""

import pytest
import yaml
from conftest import ROOT, dry_run_with, run_snakemake


@pytest.mark.parametrize(
    "override,key",
    [
        ({"seed": "abc"}, "seed"),
        ({"seed": -3}, "seed"),
        ({"surprise": 1}, "surprise"),
        ({"unlearnn": {}}, "unlearnn: no such section (sections: claims, data, dp"),
        ({"personalization": {"seeds": 3}}, "personalization.seeds was renamed: use personalization.n_seeds"),
        ({"data": {"download_retries": "many"}}, "download_retries"),
        ({"data": {"synthetic_ml": {"n_users": -5}}}, "n_users"),
        ({"data": {"unknown_key": True}}, "unknown_key"),
        ({"datasets": "ml-100k"}, "datasets"),
    ],
)
def test_bad_config_fails_before_any_job(workflow_copy, override, key):
    proc, out = dry_run_with(workflow_copy, override)
    assert proc.returncode != 0, out
    assert key in out, out
    assert not (workflow_copy / "results").exists()


def test_unknown_dataset_name_fails_with_the_name(workflow_copy):
    proc, out = dry_run_with(workflow_copy, {"datasets": ["ml-100k", "ml-7m"]})
    assert proc.returncode != 0
    assert "ml-7m" in out and "datasets" in out


def test_default_config_dry_run_succeeds(workflow_copy):
    proc = run_snakemake(workflow_copy, "-n", "--cores", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_paper_scale_overlay_validates_and_plans_the_paper_dp_grid(workflow_copy):
    proc = run_snakemake(workflow_copy, "-n", "--cores", "2", "--configfile", "config/paper.yaml",
                         "--quiet", "rules", "--", "dp")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = dict(line.split()[:2] for line in out.splitlines() if line.split()[:1] == ["dp_run"])
    assert counts == {"dp_run": "75"}, out  # t in {1e3, 1e4, 1e5} x 5 methods x 5 seeds


def test_ml100k_unlearning_overlay_plans_every_strategy_and_fraction_at_5_seeds(workflow_copy):
    proc = run_snakemake(workflow_copy, "-n", "--cores", "2", "--configfile", "config/paper.yaml",
                         "config/paper-unlearn-ml100k.yaml", "--quiet", "rules", "--", "unlearn")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = dict(line.split()[:2] for line in out.splitlines() if line.split()[:1] in (["unlearn_unlearn"], ["unlearn_original"]))
    assert counts == {"unlearn_unlearn": "120", "unlearn_original": "5"}, out  # 6 strategies x 4 fractions x 5 seeds



def test_default_profile_spaces_out_the_scheduler_timer():
    """profiles/default (the profile plain `snakemake` reads) sets a job-rate window of at least
    10 s: with Snakemake's 1 s default the scheduler loop runs ever more often as jobs finish."""
    from snakemake.settings.types import MaxJobsPerTimespan

    settings = yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text())
    assert MaxJobsPerTimespan.parse_choice(settings["max-jobs-per-timespan"]).timespan >= 10
