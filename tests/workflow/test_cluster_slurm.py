"""The cluster route on a real SLURM (docs/cluster.md): the tests' tiny config runs through
profiles/slurm with the documented commands, every SLURM job reserves the CPUs and
memory Snakemake declared for it, local rules never become SLURM jobs, and every table equals
the local run's (tests/workflow/test_workflow_smoke.py), timing columns aside.

Needs a running SLURM cluster, the SLURM executor plugin (`pip install -e '.[slurm]'`) and a
filesystem shared with the compute nodes at the same path (the test's temporary directory: true
on a single-node cluster). `.ci/slurm-up.sh` brings up such a cluster on this machine; with
BILINREC_SLURM_UP set to that script (as root) the test switches the cluster between "without
accounting" (the full comparison) and "with accounting" (a shorter run). Without SLURM it skips
and says why; with BILINREC_SLURM_REQUIRED=1 (set by .ci/run once the cluster is up) it fails
instead of skipping."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, copy_workflow, run_snakemake

pytestmark = pytest.mark.workflow

SLURM_UP = os.environ.get("BILINREC_SLURM_UP")
REQUIRED = os.environ.get("BILINREC_SLURM_REQUIRED") == "1"
PROFILE = "profiles/slurm"

# Columns holding wall-clock measurements differ between any two runs, so they are dropped before
# comparing. Read off every table's header (tiny config): lrs_sample_complexity seconds_{mean,std,
# count}, lrs_movielens fit_seconds_*, unlearn_summary compute_seconds_* and speedup_* (a ratio of
# two timings). No other column of any table is a timing.
TIMING_COLUMN = re.compile(r"(^|_)seconds(_|$)|(^|_)speedup(_|$)")
# claims.csv: the rows whose measure is a timing (B3, "median speedup over retraining"), and
# durations quoted in the free-text `detail` of the others (A2: "0.02 s per round").
TIMING_CLAIM = re.compile(r"speedup|seconds", re.IGNORECASE)
TIMING_DETAIL = re.compile(r"\d[\d.]* s\b")
# Rules that must run in the Snakemake process, never as SLURM jobs: every rule marked
# `localrule: True` in workflow/rules/ (which ones must be is checked in test_config_checks.py).
LOCAL_RULES = {name for path in (ROOT / "workflow" / "rules").glob("*.smk")
               for name, body in re.findall(r"^rule (\w+):\n((?:    .*\n|\n)*)", path.read_text(), re.M)
               if re.search(r"^    localrule: True$", body, re.M)}


def _skip(reason):
    if REQUIRED:
        pytest.fail(f"BILINREC_SLURM_REQUIRED=1 but {reason}")
    pytest.skip(reason)


def _run(*cmd, check=False):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check)


def _slurm_problem():
    """Why SLURM can't be used here, or None."""
    if shutil.which("sbatch") is None:
        return "SLURM is not installed (no sbatch on PATH); as root, .ci/slurm-up.sh installs and starts one"
    nodes = _run("sinfo", "-h", "-o", "%t")
    if nodes.returncode != 0:
        return f"no SLURM controller answers (sinfo: {nodes.stderr.strip()})"
    if not re.search(r"^(idle|mix|alloc)", nodes.stdout, re.MULTILINE):
        return f"no SLURM node is up (sinfo states: {nodes.stdout.split()})"
    return None


def _accounting():
    """Whether the cluster keeps accounting (sacct answers)."""
    return _run("sacct", "-n", "-X", "-S", "now").returncode == 0


def _ensure_mode(accounting):
    """A usable cluster in the wanted mode: as it is, or (re)started with BILINREC_SLURM_UP; else skip."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        _skip("the SLURM executor plugin is not installed: pip install -e '.[slurm]'")
    wanted = "--accounting" if accounting else "--no-accounting"
    problem = _slurm_problem()
    if problem is None and _accounting() == accounting:
        return
    if not SLURM_UP:
        _skip(problem or f"the cluster runs {'without' if accounting else 'with'} accounting; set "
              f"BILINREC_SLURM_UP=.ci/slurm-up.sh (as root) to let the test run it {wanted}")
    done = subprocess.run(["bash", SLURM_UP, wanted], capture_output=True, text=True, timeout=900)
    problem = _slurm_problem()
    if done.returncode != 0 or problem or _accounting() != accounting:
        _skip(f"{SLURM_UP} {wanted} failed ({problem}): {done.stdout[-1500:]}{done.stderr[-1500:]}")


def _node_cpus():
    return max(int(n) for n in _run("sinfo", "-h", "-o", "%c", check=True).stdout.split())


def _default_partition():
    return next(p.rstrip("*") for p in _run("sinfo", "-h", "-o", "%P", check=True).stdout.split() if p.endswith("*"))


def run_on_slurm(local_wf, dest, targets, *extra, env=None):
    """Run the documented cluster command on a copy of the workflow with the smoke config."""
    wf = copy_workflow(dest)
    shutil.copy(local_wf / "smoke.yaml", wf / "smoke.yaml")
    args = [
        *targets, "--workflow-profile", PROFILE, "--configfile", "smoke.yaml",
        # a group job may ask for as many CPUs as the node has (docs/cluster.md, "groups")
        "--cores", str(_node_cpus()),
        # first poll after 1 s, not the plugin's 40 s: the tiny jobs take seconds, and while no job ends
        # the plugin adds 10 s to every further wait, so the first wait sets the pace
        "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs", *extra,
    ]
    env = {"BILINREC_DATA_DIR": "", "SBATCH_PARTITION": _default_partition(), **(env or {})}
    # the jobs run `python -m snakemake` from this environment (sbatch --export=ALL)
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '')}"
    done = run_snakemake(wf, *args, env=env, timeout=3600)  # 30 min seen on 2 cores at load 25
    return wf, done


def submitted_jobs(log):
    """{slurm job id: (snakemake job id or group id)} from Snakemake's log."""
    return dict(
        (int(m.group(2)), m.group(1))
        for m in re.finditer(r"Job (\S+) has been submitted with SLURM jobid (\d+)", log)
    )


def declared_resources(log):
    """{snakemake job id: {"rule", "threads", "mem_mb", "runtime"}} from Snakemake's job listing."""
    jobs, current = {}, None
    for line in log.splitlines():
        line = line.strip()
        if m := re.match(r"(local)?rule (\w+):$", line):
            current = {"rule": m.group(2), "threads": 1}
        elif current is None:
            continue
        elif m := re.match(r"jobid: (\d+)$", line):
            jobs[m.group(1)] = current
        elif m := re.match(r"threads: (\d+)$", line):
            current["threads"] = int(m.group(1))
        elif line.startswith("resources:"):
            for key in ("mem_mb", "runtime"):
                if m := re.search(rf"\b{key}=(\d+)", line):
                    current[key] = int(m.group(1))
    return jobs


def slurm_job(jobid):
    """`scontrol show job` of one job as a dict (finished jobs stay for MinJobAge seconds)."""
    out = _run("scontrol", "show", "job", "-o", str(jobid), check=True).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def _minutes(limit):
    days, _, rest = limit.rpartition("-")
    h, m, s = (int(x) for x in rest.split(":"))
    return (int(days) if days else 0) * 1440 + h * 60 + m + (s > 0)


def check_reservations(log):
    """Every SLURM job reserved what Snakemake declared; returns the SLURM jobs."""
    declared = declared_resources(log)
    jobs = {sid: slurm_job(sid) for sid in submitted_jobs(log)}
    assert jobs, "no job was submitted to SLURM"
    cpus_cap = _node_cpus()
    for sid, job in jobs.items():
        comment = job.get("Comment", "")
        rule = re.match(r"rule_(\w+?)_wildcards_|rule_(\w+)$", comment)
        rule = rule and (rule.group(1) or rule.group(2))
        assert rule not in LOCAL_RULES, f"local rule {rule} ran as SLURM job {sid}"
        snakemake_id = submitted_jobs(log)[sid]
        mem = int(job["MinMemoryNode"].rstrip("M"))
        if snakemake_id.isdigit():  # one rule
            want = declared[snakemake_id]
            assert want["rule"] == rule, (sid, comment, want)
            assert int(job["NumCPUs"]) == want["threads"], (sid, rule, job["NumCPUs"], want)
            assert mem == want["mem_mb"], (sid, rule, mem, want)
            assert _minutes(job["TimeLimit"]) == want["runtime"], (sid, rule, job["TimeLimit"], want)
        else:  # a group job: its members side by side, capped by --cores
            assert comment.startswith("rule_") and 1 <= int(job["NumCPUs"]) <= cpus_cap, (sid, job)
            assert 1000 <= mem < 8000, (sid, comment, mem)
    return jobs


#: Tables of the private-mode privacy audit: its noise comes from a secret source by design, so no
#: two runs agree (the seeded simulation tables do).
SECRET_NOISE_TABLES = {"tables/dp_audit.csv"}
SECRET_NOISE_COLUMN = re.compile(r"audit")


def tables(results):
    """Every result table (CSV) of a run, timing and secret-noise columns and rows dropped, as strings."""
    out = {}
    for path in sorted([*results.glob("tables/*.csv"), results / "claims.csv"]):
        if not path.is_file() or path.relative_to(results).as_posix() in SECRET_NOISE_TABLES:
            continue
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df = df.drop(columns=[c for c in df.columns if TIMING_COLUMN.search(c) or SECRET_NOISE_COLUMN.search(c)])
        if path.name == "claims.csv":
            df = df[~df["measure"].str.contains(TIMING_CLAIM)].reset_index(drop=True)
            df["detail"] = df["detail"].str.replace(TIMING_DETAIL, "<seconds>", regex=True)
        out[path.relative_to(results).as_posix()] = df
    return out


def assert_same_tables(local_results, cluster_results, names=None):
    local, cluster = tables(local_results), tables(cluster_results)
    if names is None:
        assert sorted(cluster) == sorted(local)
    else:
        local = {k: v for k, v in local.items() if k in names}
        assert sorted(local) == sorted(names) and set(local) <= set(cluster)
    for name, df in local.items():
        pd.testing.assert_frame_equal(cluster[name], df, check_exact=True, obj=name)


def _table_targets(local_results):
    return sorted(p.relative_to(local_results.parent).as_posix() for p in local_results.glob("tables/*.csv")) + [
        "results/claims.csv"
    ]


def _local_run(request):
    """The local smoke run to compare with, asked for only once SLURM is known to be usable."""
    wf, first, *_ = request.getfixturevalue("smoke_local_run")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return wf


def test_tiny_config_without_accounting_matches_local(request, tmp_path):
    _ensure_mode(accounting=False)
    local_run = _local_run(request)
    targets = _table_targets(local_run / "results")
    wf, done = run_on_slurm(local_run, tmp_path / "wf", targets, "--slurm-status-command", "squeue")
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    assert "steps (100%) done" in log, log[-3000:]
    jobs = check_reservations(log)
    assert all(job["Partition"] == _default_partition() for job in jobs.values())
    # the download and the claims ran in Snakemake's own process
    assert re.search(r"^localrule datasets_fetch:", log, re.MULTILINE), log[-3000:]
    assert re.search(r"^localrule claims:", log, re.MULTILINE), log[-3000:]
    assert_same_tables(local_run / "results", wf / "results")


def test_with_accounting_account_from_environment(request, tmp_path):
    _ensure_mode(accounting=True)
    local_run = _local_run(request)
    user = _run("id", "-un").stdout.strip()
    accounts = _run("sacctmgr", "-n", "-P", "list", "assoc", f"user={user}", "format=account").stdout.split()
    accounts = [a for a in accounts if a != "root"] or accounts  # root's own association comes too
    if not accounts:
        _skip(f"SLURM user {user} has no account association (sacctmgr list assoc)")
    targets = ["results/tables/datasets.csv", "results/tables/storage.csv"]
    wf, done = run_on_slurm(local_run, tmp_path / "wf", targets, env={"SBATCH_ACCOUNT": accounts[0]})
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    jobs = check_reservations(log)
    assert {job["Account"] for job in jobs.values()} == {accounts[0]}
    assert_same_tables(local_run / "results", wf / "results", names={"tables/datasets.csv", "tables/storage.csv"})


def test_every_job_declares_memory_and_runtime(tmp_path):
    """Without SLURM: in the plan of the tiny config every job has mem_mb and runtime
    (each rule's `resources:`), so no job falls back to a site default."""
    import yaml
    from test_workflow_smoke import smoke_config

    wf = copy_workflow(tmp_path / "wf")
    (wf / "smoke.yaml").write_text(yaml.safe_dump(smoke_config(tmp_path)))
    done = run_snakemake(wf, "-n", "--cores", "2", "--configfile", "smoke.yaml", env={"BILINREC_DATA_DIR": ""})
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    blocks = re.findall(r"^(?:localrule|rule) (\w+):\n(.*?)^\S", log, re.MULTILINE | re.DOTALL)
    rules_seen = set()
    for rule, body in blocks:
        rules_seen.add(rule)
        if rule != "all":
            assert re.search(r"resources: .*\bmem_mb=", body) and re.search(r"\bruntime=\d+", body), (rule, body)
    assert {"storage_measure", "dp_accounting", "dp_run", "unlearn_evaluate", "provenance"} <= rules_seen


@pytest.mark.parametrize("env,expected", [
    ({}, None),
    ({"SBATCH_ACCOUNT": "acct"}, ["slurm_account=acct"]),
    ({"SBATCH_ACCOUNT": "acct", "SBATCH_PARTITION": "short"}, ["slurm_account=acct", "slurm_partition=short"]),
])
def test_profile_takes_account_and_partition_from_the_environment(monkeypatch, env, expected):
    """Without SLURM: the profile turns SBATCH_ACCOUNT / SBATCH_PARTITION into the slurm_account /
    slurm_partition resources, and sets no default-resources without them (a user's own --profile keeps its own)."""
    from conftest import ROOT
    from snakemake.profiles import ProfileConfigFileParser

    for name in ("SBATCH_ACCOUNT", "SBATCH_PARTITION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with open(ROOT / PROFILE / "config.yaml") as stream:
        settings = ProfileConfigFileParser().parse(stream)
    assert settings["executor"] == "slurm"
    assert settings.get("default-resources") == expected
