# How the workflow runs on a cluster (see docs/cluster.md). Included last by the Snakefile; it
# changes nothing for a local run except that every rule now declares mem_mb and runtime (which a
# local run only uses under --resources mem_mb=...).
#
# 1. localrules: downloads (compute nodes often have no internet) and cheap aggregation,
#    plotting and bookkeeping rules run in the Snakemake process itself, not as cluster jobs.
# 2. mem_mb and runtime (minutes) for every rule, from the max_rss (MB) and s columns of
#    results/benchmarks/**.tsv: on the tests' tiny config (tests/test_workflow_smoke.py::
#    smoke_config) every job peaked at 74-273 MB (the interpreter with numpy/scipy/numba is
#    ~110 MB of it) and took under 45 s; on the default config with ml-100k, unlearn_original
#    and unlearn_retrain took ~185 s at ~150 MB, pers_run (d=64) 258 s at 324 MB, the largest
#    peak seen. The 1000 MB floor is 3x that; rules whose memory grows with their data add
#    20-50 MB per MB of input (prepared ratings or unlearning split, an estimate: no larger
#    dataset was measured); lrs_run scales with the largest synthetic problem of the config, and
#    dp_run keeps the mem_mb its rule declares (paper-grid peaks). Memory and time double on a
#    retry (the slurm profile sets retries: 1): a job killed for either gets a second chance.
# 3. SBATCH_ACCOUNT / SBATCH_PARTITION from the environment become the slurm_account /
#    slurm_partition resources, so the SLURM executor passes them to sbatch (it would otherwise
#    guess an account and pick the default partition, overriding what sbatch reads itself).
#
# Values given with --set-resources RULE:NAME=VALUE (or set-resources in a profile) win over
# these. A name here that is no rule of the workflow is an error (a renamed rule must be renamed here).

import math
import os as _cluster_os

CLUSTER_LOCALRULES = [
    "datasets_fetch",
    "datasets_table",
    "datasets_notebook",
    "unlearn_tables",
    "unlearn_race_table",
    "unlearn_notebook",
    "lrs_tables",
    "lrs_notebook",
    "dp_tables",
    "dp_notebook",
    "personalization_tables",
    "personalization_notebook",
    "storage_notebook",
    "forget_table",
    "provenance",
    "claims",
    "report",
]


def _cluster_rule(name):
    """The Rule named ``name`` (an error if the workflow has none: cluster.smk must follow renames)."""
    found = next((rule_ for rule_ in workflow.rules if rule_.name == name), None)
    if found is None:
        raise ValueError(f"workflow/rules/cluster.smk names a rule {name!r} that the workflow does not have")
    return found


# (the `localrules:` directive takes literal names only; this is what it calls)
workflow.localrules(*[_cluster_rule(name).name for name in CLUSTER_LOCALRULES])


def _mem_from_input(floor, per_input_mb, key=None):
    """mem_mb: ``floor`` plus ``per_input_mb`` MB per MB of the input files (only the named input
    ``key`` if given: one made before the job's group starts), doubled per retry."""

    def mem_mb(wildcards, input, attempt):
        paths = [input[key]] if key else list(input)
        size_mb = sum(_cluster_os.path.getsize(path) for path in paths) / 2**20
        return int((floor + per_input_mb * math.ceil(size_mb)) * 2 ** (attempt - 1))

    return mem_mb


def _fixed(value):
    """A resource that doubles on each retry."""
    return lambda wildcards, attempt: int(value * 2 ** (attempt - 1))


def _lrs_mem():
    """lrs_run draws the largest synthetic problem of its experiments: t users x m samples x d."""
    lrs = config["lrs"]
    n_users = max([lrs["problem"]["n_users"], lrs["phase_m_k"]["n_users"], *lrs["phase_m_t"]["n_users"]])
    samples = max(
        max(lrs[exp]["samples"]) if isinstance(lrs[exp]["samples"], list) else lrs[exp]["samples"]
        for exp in ("error_vs_m", "phase_m_t", "phase_m_k", "convergence", "noise")
    )
    # float64 samples and a few working copies, as dp_run's rule estimates it
    return 1000 + n_users * samples * lrs["problem"]["dim"] * 32 // 10**6


# rule: (mem_mb, runtime in minutes). mem_mb None: keep the rule's own.
CLUSTER_RESOURCES = {
    ("datasets_prepare",): (_mem_from_input(1000, 50), _fixed(60)),
    ("unlearn_split",): (_mem_from_input(1000, 20), _fixed(30)),
    ("unlearn_original",): (_mem_from_input(1000, 20, "split"), _fixed(120)),
    ("unlearn_deletions",): (_mem_from_input(1000, 20, "split"), _fixed(30)),
    ("unlearn_retrain",): (_mem_from_input(1000, 20, "split"), _fixed(120)),
    ("unlearn_unlearn",): (_mem_from_input(1000, 20, "split"), _fixed(120)),
    ("unlearn_evaluate",): (_mem_from_input(1000, 20, "split"), _fixed(120)),
    ("unlearn_race",): (_mem_from_input(1000, 20, "split"), _fixed(240)),
    ("lrs_run",): (_fixed(_lrs_mem()), _fixed(240)),
    ("dp_accounting",): (_fixed(1000), _fixed(60)),
    ("dp_run",): (None, _fixed(240)),
    ("dp_audit",): (_fixed(1000), _fixed(60)),
    ("personalization_control",): (_fixed(1000), _fixed(30)),
    ("personalization_features",): (_mem_from_input(1000, 50, "ratings"), _fixed(120)),
    ("personalization_run",): (_mem_from_input(1000, 50, "ratings"), _fixed(240)),
    ("storage_measure",): (_fixed(1000), _fixed(30)),
    ("storage_trained",): (_fixed(2000), _fixed(30)),  # measured 0.74 GB peak on the default config
    ("forget_als",): (_mem_from_input(1000, 20, "split"), _fixed(120)),
    ("forget_lrs",): (_fixed(1000), _fixed(60)),
    # local rules: what they use on the machine that runs Snakemake
    ("datasets_fetch",): (_fixed(1000), _fixed(60)),
    ("datasets_table",): (_fixed(1000), _fixed(30)),
    ("datasets_notebook",): (_mem_from_input(1000, 20), _fixed(30)),
    ("unlearn_tables",): (_fixed(1000), _fixed(30)),
    ("unlearn_race_table",): (_fixed(1000), _fixed(30)),
    ("unlearn_notebook",): (_fixed(1000), _fixed(30)),
    ("lrs_tables",): (_fixed(1000), _fixed(30)),
    ("lrs_notebook",): (_fixed(1000), _fixed(30)),
    ("dp_tables",): (_fixed(1000), _fixed(30)),
    ("dp_notebook",): (_fixed(1000), _fixed(30)),
    ("personalization_tables",): (_fixed(1000), _fixed(30)),
    ("personalization_notebook",): (_fixed(1000), _fixed(30)),
    ("storage_notebook",): (_fixed(1000), _fixed(30)),
    ("forget_table",): (_fixed(1000), _fixed(30)),
    ("provenance",): (_fixed(1000), _fixed(30)),
    ("claims",): (_fixed(1000), _fixed(30)),
    ("report",): (_fixed(1000), _fixed(30)),
}

_CLUSTER_FROM_ENV = {"slurm_account": "SBATCH_ACCOUNT", "slurm_partition": "SBATCH_PARTITION"}
_cluster_overrides = workflow.resource_settings.overwrite_resources


def _apply_cluster_resources():
    for names, (mem_mb, runtime) in CLUSTER_RESOURCES.items():
        for name in names:
            rule_ = _cluster_rule(name)
            given = _cluster_overrides.get(name, {})  # --set-resources wins
            declared = {"mem_mb": mem_mb, "runtime": runtime}
            for key, value in declared.items():
                if value is not None and key not in given:
                    rule_.resources[key] = value
    for rule_ in workflow.rules:
        given = _cluster_overrides.get(rule_.name, {})
        for key, variable in _CLUSTER_FROM_ENV.items():
            value = _cluster_os.environ.get(variable)
            current = rule_.resources.get(key)
            current = getattr(current, "value", current)  # Snakemake >= 9.2x wraps resource values
            if value and key not in given and current is None:
                rule_.resources[key] = value


_apply_cluster_resources()
