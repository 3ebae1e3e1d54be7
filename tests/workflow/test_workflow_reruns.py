"""Editing one config key reruns only the jobs that read it (and the jobs downstream of them).

Each rule's params hold exactly the config values its script reads (``config_keys`` in
workflow/rules/common.smk), and Snakemake reruns a job when its params change. The test records
every job of the tests' tiny config as done without running it (``--touch``), then edits one key per
part in a copy of the config and asks a dry run with ``--rerun-triggers params`` what it would run."""

import copy
import re

import pytest
import yaml
from conftest import copy_workflow, run_snakemake
from test_workflow_smoke import smoke_config

pytestmark = pytest.mark.workflow

ENV = {"BILINREC_DATA_DIR": ""}
# Rules downstream of nearly everything: provenance records the whole config, all asks for every output.
ALWAYS = {"provenance", "all"}


@pytest.fixture(scope="module")
def touched(tmp_path_factory):
    """A workflow copy whose every job of the tiny config is recorded as done (empty outputs, metadata)."""
    base = tmp_path_factory.mktemp("reruns")
    wf = copy_workflow(base / "wf")
    config = smoke_config(base)
    (wf / "smoke.yaml").write_text(yaml.safe_dump(config))
    plan = run_snakemake(wf, "-n", "--forceall", "--cores", "1", "--configfile", "smoke.yaml", env=ENV)
    log = plan.stdout + plan.stderr
    assert plan.returncode == 0, log[-3000:]
    for line in re.findall(r"^    output: (.*)$", log, re.M):
        for name in line.split(", "):
            (wf / name).parent.mkdir(parents=True, exist_ok=True)
            (wf / name).touch()
    done = run_snakemake(wf, "--touch", "--forceall", "--cores", "1", "--configfile", "smoke.yaml", env=ENV)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return wf, config


def planned(wf, config):
    """{rule: jobs} that a dry run with ``config`` would run because their params changed."""
    (wf / "edited.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(wf, "-n", "--rerun-triggers", "params", "--cores", "1", "--quiet", "rules",
                         "--configfile", "edited.yaml", env=ENV)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    if "Nothing to be done" in out:
        return {}
    table = out[out.index("Job stats:"):]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if name != "total"}


def edited(config, key, value):
    """A copy of ``config`` with the dotted ``key`` set to ``value``."""
    config = copy.deepcopy(config)
    *path, last = key.split(".")
    section = config
    for name in path:
        section = section.setdefault(name, {})
    section[last] = value
    return config


def test_unchanged_config_plans_nothing(touched):
    wf, config = touched
    assert planned(wf, config) == {}


UNLEARN_RUN = {"unlearn_deletions", "unlearn_retrain", "unlearn_unlearn", "unlearn_evaluate"}
UNLEARN_SUMMARY = {"unlearn_tables", "unlearn_notebook", "claims"}
PERS_SUMMARY = {"personalization_tables", "personalization_notebook", "storage_notebook", "claims"}

# (key, new value, {rule: number of jobs, or None for any number}); every other rule must not run
CASES = [
    ("data.synthetic_ml.noise", 0.4,
     {"datasets_prepare": 1, "datasets_table": 1, "datasets_notebook": 1, "personalization_features": None,
      "personalization_run": None, **dict.fromkeys(PERS_SUMMARY, 1)}),
    # the synthetic matrix: only the synthetic dataset's split and what follows it, not the race (on tiny)
    ("unlearn.synthetic.density", 0.25,
     {"unlearn_split": 1, "unlearn_original": 1, **dict.fromkeys(UNLEARN_RUN, None),
      **dict.fromkeys(UNLEARN_SUMMARY, 1)}),
    ("unlearn.evaluation.mia_folds", 3,
     {"unlearn_evaluate": None, **dict.fromkeys(UNLEARN_SUMMARY, 1)}),
    ("unlearn.race.tol", 1e-3, {"unlearn_race": None, "unlearn_race_table": 1}),
    ("lrs.noise.noise", [0.0, 0.2], {"lrs_run": 1, "lrs_tables": 1, "lrs_notebook": 1, "claims": 1}),
    ("dp.audit.trials", 12, {"dp_audit": 1, "dp_tables": 1, "dp_notebook": 1, "claims": 1}),
    ("personalization.bootstrap", 200, dict.fromkeys(PERS_SUMMARY, 1)),
    ("storage.max_measured_bytes", 10**6, {"storage_measure": 1, "storage_notebook": 1}),
    ("forget.lrs.max_rounds", 10, {"forget_lrs": 1, "forget_table": 1}),
    ("claims.b3_min_speedup", 3.0, {"claims": 1}),
]


@pytest.mark.parametrize("key,value,expected", CASES, ids=[case[0] for case in CASES])
def test_editing_one_key_reruns_only_its_readers(touched, key, value, expected):
    wf, config = touched
    jobs = planned(wf, edited(config, key, value))
    assert set(jobs) == set(expected) | ALWAYS, jobs
    for rule, count in expected.items():
        assert count is None or jobs[rule] == count, (rule, jobs)
