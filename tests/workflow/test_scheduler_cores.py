"""Snakemake runs at most ``--cores`` single-threaded jobs at once.

Every runtime in docs/runtime.md assumes it, and so does ``threads:`` on the compute rules.
Snakemake 9.10-9.16 break it: their count of free cores grows as jobs finish
(snakemake/snakemake#3815, #3913), so on 2 cores a run can have 3 or 4 jobs going, which
inflates every job's wall time and the memory peak. pyproject.toml asks for a release without
the bug; this test fails if the installed Snakemake has it.
"""

from conftest import run_snakemake

# One job that many depend on, as datasets_prepare and unlearn_split are in the workflow: on a
# faulty release the jobs it releases start all at once (snakemake/snakemake#3913). Each job is
# a process, as the workflow's script jobs are, and records when it started and ended.
SNAKEFILE = """
STAMP = 'start=$(date +%s.%N); sleep {params.seconds}; echo $start $(date +%s.%N) > {output}'

rule all:
    input: expand("fanned{i}", i=range(8))

rule shared:
    output: "shared"
    params: seconds=0.5
    shell: STAMP

rule fanned:
    input: "shared"
    output: "fanned{i}"
    params: seconds=1
    shell: STAMP
"""


def most_at_once(intervals):
    """The largest number of the (start, end) intervals that overlap at one time."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:  # an end sorts before a start at the same time
        running += step
        peak = max(peak, running)
    return peak


def test_most_at_once_counts_overlaps():
    assert most_at_once([(0, 1), (1, 2), (2, 3)]) == 1
    assert most_at_once([(0, 3), (1, 2), (1.5, 4), (3.5, 5)]) == 3


def test_snakemake_runs_at_most_cores_jobs_at_once(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    proc = run_snakemake(tmp_path, "--cores", "2", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    intervals = [
        tuple(float(value) for value in (tmp_path / name).read_text().split())
        for name in ["shared", *(f"fanned{i}" for i in range(8))]
    ]
    assert most_at_once(intervals) <= 2
