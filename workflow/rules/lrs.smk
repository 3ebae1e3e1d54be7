# Rules of part 'lrs' (Paper A in the linear setting: AMHT-LRS on synthetic data).
# One job per (experiment, seed) runs that experiment's whole grid; a summary rule writes
# the tables and the phase-transition fit; the notebook draws the figures.

LRS = config["lrs"]
LRS_OUT = f"{RESULTS}/lrs"
LRS_EXPERIMENTS = ["error_vs_m", "phase_m_t", "phase_m_k", "convergence", "noise", "m50"]
LRS_SEEDS = seeds_for("lrs", LRS["n_seeds"])
LRS_FIGURES = ["lrs_error_vs_m", "lrs_phase_transition", "lrs_convergence", "lrs_noise", "lrs_m50"]
# lrs_run's memory: the largest synthetic problem of its experiments, t users x m samples x d
# float64 samples and a few working copies (as dp_run's rule estimates it).
LRS_MEM_MB = (
    1000
    + max(LRS["problem"]["n_users"], LRS["phase_m_k"]["n_users"], *LRS["phase_m_t"]["n_users"])
    * max(
        max(LRS[exp]["samples"]) if isinstance(LRS[exp]["samples"], list) else LRS[exp]["samples"]
        for exp in ("error_vs_m", "phase_m_t", "phase_m_k", "convergence", "noise")
    )
    * LRS["problem"]["dim"]
    * 32
    // 10**6
)


rule lrs_run:
    output:
        f"{LRS_OUT}/{{experiment}}_s{{seed}}.csv",
    log:
        f"{LOGS}/lrs/{{experiment}}_s{{seed}}.log",
    benchmark:
        f"{BENCH}/lrs/{{experiment}}_s{{seed}}.tsv"
    wildcard_constraints:
        experiment="|".join(LRS_EXPERIMENTS),
    conda:
        CONDA_ENV
    threads: LRS["threads"]
    resources:
        mem_mb=doubling(LRS_MEM_MB),
        runtime=doubling(240),
    params:
        # the problem, the methods' settings and this experiment's own section
        cfg=lambda wildcards: config_keys(
            "lrs", "problem", "estimator", "baselines", "success_threshold", wildcards.experiment
        ),
    script:
        "../scripts/lrs_run.py"


rule lrs_tables:
    input:
        expand(f"{LRS_OUT}/{{experiment}}_s{{seed}}.csv", experiment=LRS_EXPERIMENTS, seed=LRS_SEEDS),
    output:
        records=f"{LRS_OUT}/records.csv",
        convergence=f"{LRS_OUT}/convergence.csv",
        table=table_outputs("lrs_sample_complexity", "3. Paper A: sample complexity"),
        phase=table_outputs("lrs_phase_transition", "3. Paper A: sample complexity"),
        m50=table_outputs("lrs_m50", "3. Paper A: sample complexity"),
        fit=f"{LRS_OUT}/phase_fit.json",
    log:
        f"{LOGS}/lrs/summary.log",
    benchmark:
        f"{BENCH}/lrs/summary.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    script:
        "../scripts/lrs_tables.py"


rule lrs_notebook:
    input:
        notebook="notebooks/lrs.ipynb",
        records=rules.lrs_tables.output.records,
        convergence=rules.lrs_tables.output.convergence,
        fit=rules.lrs_tables.output.fit,
        m50=rules.lrs_tables.output.m50[0],
    output:
        ipynb=f"{RESULTS}/notebooks/lrs.ipynb",
        html=f"{RESULTS}/notebooks/lrs.html",
        figures=[f for name in LRS_FIGURES for f in figure_outputs(name, "3. Paper A: sample complexity")],
    log:
        f"{LOGS}/lrs/notebook.log",
    benchmark:
        f"{BENCH}/lrs/notebook.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        parameters=lambda wildcards, input, output: {
            "records_csv": absolute(input.records),
            "convergence_csv": absolute(input.convergence),
            "phase_fit_json": absolute(input.fit),
            "m50_csv": absolute(input.m50),
            "m50_max_ratio": config["claims"]["a1_max_floor_ratio"],
            "figures_dir": absolute(os.path.dirname(output.figures[0])),
        },
    script:
        "../scripts/execute_notebook.py"


LRS_TARGETS = (
    rules.lrs_tables.output.table
    + rules.lrs_tables.output.phase
    + rules.lrs_tables.output.m50
    + rules.lrs_notebook.output.figures
    + [rules.lrs_notebook.output.html]
)
ALL_TARGETS.extend(LRS_TARGETS)
CLAIM_TABLES.update(lrs_m50=f"{RESULTS}/tables/lrs_m50.csv", lrs_convergence=f"{LRS_OUT}/convergence.csv")


rule lrs:
    input:
        LRS_TARGETS,
