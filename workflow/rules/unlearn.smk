# Rules of part 'unlearn' (Paper B, Unlearn-ALS).
# DAG per dataset and seed: split -> original (trained once, shared by every deletion run);
# per run (dataset, strategy, fraction, seed): deletions -> retrain (one job per band member)
# and unlearn -> evaluate; then the summary tables and the notebook with the figures.

from bilinrec.experiments.unlearn import STRATEGIES, SYNTHETIC

UNLEARN = config["unlearn"]
UNLEARN_RUNS = [
    dict(dataset=d, strategy=g["strategy"], fraction=str(f), seed=s)
    for d in UNLEARN["datasets"]
    for g in UNLEARN["grid"]
    if g.get("datasets") is None or d in g["datasets"]
    for f in g["fractions"]
    for s in UNLEARN_SEEDS
]
UNLEARN_RUN = "{dataset}/s{seed}/{strategy}_f{fraction}"
UNLEARN_FIGURES = ["unlearn_convergence", "unlearn_deleted_scores", "unlearn_mia", "unlearn_speedup"]


wildcard_constraints:
    strategy="|".join(STRATEGIES),
    fraction=r"0\.\d+",
    member=r"\d+",


rule unlearn_split:
    input:
        # the synthetic low-rank matrix is generated here; other datasets come from the data rules
        lambda wildcards: [] if wildcards.dataset == SYNTHETIC else f"{RESULTS}/data/{wildcards.dataset}/ratings.npz",
    output:
        f"{UNLEARN_OUT}/{{dataset}}/s{{seed}}/split.npz",
    log:
        f"{LOGS}/unlearn/{{dataset}}/split_s{{seed}}.log",
    benchmark:
        f"{BENCH}/unlearn/{{dataset}}/split_s{{seed}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_from_input(1000, 20),
        runtime=doubling(30),
    params:
        cfg=lambda wildcards: config_keys(
            "unlearn",
            "holdout_fraction",
            "confidence",
            "synthetic" if wildcards.dataset == SYNTHETIC else "min_rating",
        ),
        root_seed=ROOT_SEED,
    script:
        "../scripts/unlearn_split.py"


rule unlearn_original:
    input:
        split=rules.unlearn_split.output[0],
    output:
        f"{UNLEARN_OUT}/{{dataset}}/s{{seed}}/original.npz",
    log:
        f"{LOGS}/unlearn/{{dataset}}/original_s{{seed}}.log",
    benchmark:
        f"{BENCH}/unlearn/{{dataset}}/original_s{{seed}}.tsv"
    conda:
        CONDA_ENV
    threads: UNLEARN["threads"]
    resources:
        mem_mb=mem_from_input(1000, 20, "split"),
        runtime=doubling(120),
    params:
        cfg=config_keys("unlearn", "model"),
    script:
        "../scripts/unlearn_original.py"


rule unlearn_deletions:
    input:
        split=rules.unlearn_split.output[0],
    output:
        f"{UNLEARN_OUT}/{UNLEARN_RUN}/deletions.npz",
    log:
        f"{LOGS}/unlearn/{UNLEARN_RUN}/deletions.log",
    benchmark:
        f"{BENCH}/unlearn/{UNLEARN_RUN}/deletions.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_from_input(1000, 20, "split"),
        runtime=doubling(30),
    params:
        cfg=config_keys("unlearn", "deletion"),
        root_seed=ROOT_SEED,
    script:
        "../scripts/unlearn_deletions.py"


rule unlearn_retrain:
    input:
        split=rules.unlearn_split.output[0],
        deletions=rules.unlearn_deletions.output[0],
    output:
        f"{UNLEARN_OUT}/{UNLEARN_RUN}/retrain_b{{member}}.npz",
    log:
        f"{LOGS}/unlearn/{UNLEARN_RUN}/retrain_b{{member}}.log",
    benchmark:
        f"{BENCH}/unlearn/{UNLEARN_RUN}/retrain_b{{member}}.tsv"
    conda:
        CONDA_ENV
    threads: UNLEARN["threads"]
    resources:
        mem_mb=mem_from_input(1000, 20, "split"),
        runtime=doubling(120),
    params:
        cfg=config_keys("unlearn", "model"),
    script:
        "../scripts/unlearn_retrain.py"


rule unlearn_unlearn:
    input:
        split=rules.unlearn_split.output[0],
        deletions=rules.unlearn_deletions.output[0],
        original=rules.unlearn_original.output[0],
    output:
        f"{UNLEARN_OUT}/{UNLEARN_RUN}/unlearned.npz",
    log:
        f"{LOGS}/unlearn/{UNLEARN_RUN}/unlearn.log",
    benchmark:
        f"{BENCH}/unlearn/{UNLEARN_RUN}/unlearn.tsv"
    conda:
        CONDA_ENV
    threads: UNLEARN["threads"]
    resources:
        mem_mb=mem_from_input(1000, 20, "split"),
        runtime=doubling(120),
    params:
        cfg=config_keys("unlearn", "model", "unlearning"),
    script:
        "../scripts/unlearn_unlearn.py"


rule unlearn_evaluate:
    input:
        split=rules.unlearn_split.output[0],
        deletions=rules.unlearn_deletions.output[0],
        original=rules.unlearn_original.output[0],
        retrained=expand(
            f"{UNLEARN_OUT}/{UNLEARN_RUN}/retrain_b{{member}}.npz",
            member=range(UNLEARN["band_size"]),
            allow_missing=True,
        ),
        unlearned=rules.unlearn_unlearn.output[0],
    output:
        metrics=f"{UNLEARN_OUT}/{UNLEARN_RUN}/metrics.json",
        scores=f"{UNLEARN_OUT}/{UNLEARN_RUN}/scores.npz",
        history=f"{UNLEARN_OUT}/{UNLEARN_RUN}/history.npz",
    log:
        f"{LOGS}/unlearn/{UNLEARN_RUN}/evaluate.log",
    benchmark:
        f"{BENCH}/unlearn/{UNLEARN_RUN}/evaluate.tsv"
    conda:
        CONDA_ENV
    threads: UNLEARN["threads"]
    resources:
        mem_mb=mem_from_input(1000, 20, "split"),
        runtime=doubling(120),
    params:
        cfg=config_keys("unlearn", "model", "evaluation"),
    script:
        "../scripts/unlearn_evaluate.py"


UNLEARN_METRICS = [f"{UNLEARN_OUT}/{UNLEARN_RUN}/metrics.json".format(**r) for r in UNLEARN_RUNS]


rule unlearn_tables:
    input:
        UNLEARN_METRICS,
    output:
        summary=table_outputs("unlearn_summary", "6. Paper B: Unlearn-ALS"),
        checks=table_outputs("unlearn_checks", "6. Paper B: Unlearn-ALS"),
        paired=table_outputs("unlearn_paired", "6. Paper B: Unlearn-ALS"),
    log:
        f"{LOGS}/unlearn/tables.log",
    benchmark:
        f"{BENCH}/unlearn/tables.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    script:
        "../scripts/unlearn_tables.py"


rule unlearn_notebook:
    input:
        notebook="notebooks/unlearn.ipynb",
        summary=f"{RESULTS}/tables/unlearn_summary.csv",
        metrics=UNLEARN_METRICS,
    output:
        ipynb=f"{RESULTS}/notebooks/unlearn.ipynb",
        html=f"{RESULTS}/notebooks/unlearn.html",
        figures=[f for name in UNLEARN_FIGURES for f in figure_outputs(name, "6. Paper B: Unlearn-ALS")],
    log:
        f"{LOGS}/unlearn/notebook.log",
    benchmark:
        f"{BENCH}/unlearn/notebook.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        parameters=lambda wildcards, input, output: {
            "summary_csv": absolute(input.summary),
            "metrics_paths": [absolute(p) for p in input.metrics],
            "figures_dir": absolute(os.path.dirname(output.figures[0])),
        },
    script:
        "../scripts/execute_notebook.py"


# The fair race: per raced dataset, race seed, deletion size and stratum (one job each), unlearning vs
# three retraining peers under one stopping rule.
UNLEARN_RACE = UNLEARN["race"]
UNLEARN_RACE_RUNS = [
    f"{UNLEARN_OUT}/{d}/s{s}/race/{size}_{stratum}.csv"
    for d in UNLEARN_RACE["datasets"]
    if d in UNLEARN["datasets"]
    for s in UNLEARN_SEEDS[: UNLEARN_RACE["n_seeds"]]
    for size in UNLEARN_RACE["sizes"]
    for stratum in (["uniform"] if size in ("record", "user") else UNLEARN_RACE["strata"])
]


rule unlearn_race:
    input:
        split=rules.unlearn_split.output[0],
        original=rules.unlearn_original.output[0],
    output:
        f"{UNLEARN_OUT}/{{dataset}}/s{{seed}}/race/{{size}}_{{stratum}}.csv",
    log:
        f"{LOGS}/unlearn/{{dataset}}/race_s{{seed}}_{{size}}_{{stratum}}.log",
    benchmark:
        f"{BENCH}/unlearn/{{dataset}}/race_s{{seed}}_{{size}}_{{stratum}}.tsv"
    wildcard_constraints:
        size=r"record|user|[0-9.e-]+",
        stratum="uniform|popular",
    conda:
        CONDA_ENV
    threads: UNLEARN["threads"]
    resources:
        mem_mb=mem_from_input(1000, 20, "split"),
        runtime=doubling(240),
    params:
        # race.sizes and race.strata: the job's own size and stratum replace them
        cfg=config_keys("unlearn", "model", "race", drop=("race.datasets", "race.n_seeds", "race.sizes", "race.strata")),
        root_seed=ROOT_SEED,
    script:
        "../scripts/unlearn_race.py"


rule unlearn_race_table:
    input:
        UNLEARN_RACE_RUNS,
    output:
        table=table_outputs("unlearn_race", "6. Paper B: Unlearn-ALS"),
        figure=figure_outputs("unlearn_race_speedup", "6. Paper B: Unlearn-ALS"),
    log:
        f"{LOGS}/unlearn/race_table.log",
    benchmark:
        f"{BENCH}/unlearn/race_table.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    script:
        "../scripts/unlearn_race_table.py"


UNLEARN_TARGETS = (
    rules.unlearn_tables.output.summary
    + rules.unlearn_tables.output.checks
    + rules.unlearn_tables.output.paired
    + (rules.unlearn_race_table.output.table + rules.unlearn_race_table.output.figure if UNLEARN_RACE_RUNS else [])
    + rules.unlearn_notebook.output.figures
    + [rules.unlearn_notebook.output.html]
)
ALL_TARGETS.extend(UNLEARN_TARGETS)
CLAIM_TABLES["unlearn_paired"] = f"{RESULTS}/tables/unlearn_paired.csv"


rule unlearn:
    input:
        UNLEARN_TARGETS,
