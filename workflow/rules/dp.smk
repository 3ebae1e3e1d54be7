# Rules of part 'dp' (Paper A: differentially private AMHT-LRS, privacy-utility experiments).
# The noise of every private (method, epsilon) is calibrated once (it depends on neither t nor
# the seed); one job per (t, seed, method) draws the (t, seed) problem and fits the method for
# every epsilon; a summary rule writes the table; the notebook draws the figures. The grid runs
# in mechanism.mode (default simulation: seeded noise, labelled "not a private release"); rule
# dp_audit audits the private mode's mechanism with a canary (epsilon lower bound next to its ceiling,
# with planted-broken and null controls) and shows the known-seed attack on the simulation mode
# (docs/privacy.md).

DP = config["dp"]
DP_OUT = f"{RESULTS}/dp"
DP_SEEDS = seeds_for("dp", DP["n_seeds"])
DP_FIGURES = ["dp_utility", "dp_users"]
# dp.large_users: further numbers of users t, each with a subset of the methods and epsilons
DP_LARGE = DP["large_users"]
# What dp_run reads; at a t of dp.large_users, its epsilons replace the grid's.
DP_RUN_KEYS = (
    "epsilons",
    "delta",
    "problem",
    "mechanism",
    "estimator",
    "reference",
    "local_alpha",
    "test_users",
    "n_test",
)


rule dp_accounting:
    output:
        f"{DP_OUT}/accounting.json",
    log:
        f"{LOGS}/dp/accounting.log",
    benchmark:
        f"{BENCH}/dp/accounting.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(60),
    params:
        # the private methods' noise calibration (grid and audit); the audit's trials are not read here
        cfg=config_keys(
            "dp",
            "methods",
            "epsilons",
            "delta",
            "problem",
            "mechanism",
            "estimator",
            "audit.epsilons",
            "audit.known_seed_epsilon",
            "audit.problem",
        ),
    script:
        "../scripts/dp_accounting.py"


rule dp_run:
    input:
        accounting=rules.dp_accounting.output[0],
    output:
        f"{DP_OUT}/t{{n_users}}/{{method}}_s{{seed}}.csv",
    log:
        f"{LOGS}/dp/t{{n_users}}/{{method}}_s{{seed}}.log",
    benchmark:
        f"{BENCH}/dp/t{{n_users}}/{{method}}_s{{seed}}.tsv"
    wildcard_constraints:
        n_users=r"\d+",
        method="|".join(DP["methods"]),
    conda:
        CONDA_ENV
    threads: DP["threads"]
    resources:
        # peak memory: the t m x d float64 samples plus half of that (measured at t = 1e5, m = 30,
        # d = 100: 2.9 GB for amht_lrs, 3.3 GB for DP-AMHT-LRS; this gives 4.6 GB)
        runtime=doubling(240),
        mem_mb=lambda wc: 1000 + int(wc.n_users) * DP["problem"]["samples"] * DP["problem"]["dim"] * 12 // 10**6,
    params:
        cfg=lambda wildcards: config_keys("dp", *DP_RUN_KEYS)
        | ({"epsilons": DP_LARGE["epsilons"]} if int(wildcards.n_users) in DP_LARGE["n_users"] else {}),
    script:
        "../scripts/dp_run.py"


rule dp_audit:
    input:
        accounting=rules.dp_accounting.output[0],
    output:
        f"{DP_OUT}/audit.csv",
    log:
        f"{LOGS}/dp/audit.log",
    benchmark:
        f"{BENCH}/dp/audit.tsv"
    conda:
        CONDA_ENV
    threads: DP["threads"]
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(60),
    params:
        cfg=config_keys("dp", "epsilons", "delta", "mechanism", "estimator", "audit"),
        seed=DP_SEEDS[0],
    script:
        "../scripts/dp_audit.py"


rule dp_tables:
    input:
        runs=expand(
            f"{DP_OUT}/t{{n_users}}/{{method}}_s{{seed}}.csv",
            n_users=DP["n_users"],
            method=DP["methods"],
            seed=DP_SEEDS,
        )
        + expand(
            f"{DP_OUT}/t{{n_users}}/{{method}}_s{{seed}}.csv",
            n_users=DP_LARGE["n_users"],
            method=DP_LARGE["methods"],
            seed=DP_SEEDS,
        ),
        audit=rules.dp_audit.output[0],
    output:
        records=f"{DP_OUT}/records.csv",
        table=table_outputs("dp_utility", "4. Paper A: privacy"),
        audit=table_outputs("dp_audit", "4. Paper A: privacy"),
    log:
        f"{LOGS}/dp/summary.log",
    benchmark:
        f"{BENCH}/dp/summary.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        delta=DP["delta"],
        mode=DP["mechanism"].get("mode", "simulation"),
    script:
        "../scripts/dp_tables.py"


rule dp_notebook:
    input:
        notebook="notebooks/dp.ipynb",
        records=rules.dp_tables.output.records,
        audit=rules.dp_audit.output[0],
    output:
        ipynb=f"{RESULTS}/notebooks/dp.ipynb",
        html=f"{RESULTS}/notebooks/dp.html",
        figures=[f for name in DP_FIGURES for f in figure_outputs(name, "4. Paper A: privacy")],
    log:
        f"{LOGS}/dp/notebook.log",
    benchmark:
        f"{BENCH}/dp/notebook.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        parameters=lambda wildcards, input, output: {
            "records_csv": absolute(input.records),
            "audit_csv": absolute(input.audit),
            "fixed_epsilon": str(DP["fixed_epsilon"]),
            "figures_dir": absolute(os.path.dirname(output.figures[0])),
        },
    script:
        "../scripts/execute_notebook.py"


DP_TARGETS = (
    rules.dp_tables.output.table
    + rules.dp_tables.output.audit
    + rules.dp_notebook.output.figures
    + [rules.dp_notebook.output.html]
)
ALL_TARGETS.extend(DP_TARGETS)
CLAIM_TABLES["dp_utility"] = f"{RESULTS}/tables/dp_utility.csv"


rule dp:
    input:
        DP_TARGETS,
