# Rules of part 'personalization' (Paper A on MovieLens, sparse-data regime).
# One job per (dataset, d, seed) fits the background ALS, one runs every method at every m;
# a summary rule writes the tables; the notebook draws the figure.

import os

from bilinrec.experiments.datasets.config import fetch_record
from bilinrec.experiments.personalization import CONTROL_DATASET

PERS = config["personalization"]
PERS_CONTROL = PERS["positive_control"]
PERS_DATASETS = list(PERS["datasets"] or config["datasets"]) + (
    [CONTROL_DATASET] if PERS_CONTROL.get("enabled", True) else []
)
PERS_SEEDS = seeds_for("personalization", PERS["n_seeds"])
PERS_RUN = f"{RESULTS}/personalization/{{dataset}}/d{{d}}_s{{seed}}"
PERS_CONTROL_RATINGS = f"{RESULTS}/personalization/data/{CONTROL_DATASET}/ratings.npz"


PERS_RUNS = expand(
    f"{RESULTS}/personalization/{{dataset}}/d{{d}}_s{{seed}}", dataset=PERS_DATASETS, d=PERS["factors"], seed=PERS_SEEDS
)


rule personalization_control:
    output:
        PERS_CONTROL_RATINGS,
    log:
        f"{LOGS}/personalization/control_data.log",
    benchmark:
        f"{BENCH}/personalization/control_data.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        cfg=config_keys("personalization", "positive_control", drop=("positive_control.enabled",))["positive_control"],
        seed=derive_seed(ROOT_SEED, "personalization", CONTROL_DATASET),
    script:
        "../scripts/personalization_control.py"


rule personalization_features:
    input:
        ratings=personalization_ratings,
    output:
        f"{PERS_RUN}_features.npz",
    log:
        f"{LOGS}/personalization/{{dataset}}_d{{d}}_s{{seed}}_features.log",
    benchmark:
        f"{BENCH}/personalization/{{dataset}}_d{{d}}_s{{seed}}_features.tsv"
    wildcard_constraints:
        d=r"\d+",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=mem_from_input(1000, 50, "ratings"),
        runtime=doubling(120),
    params:
        # the protocol and the background ALS
        cfg=config_keys(
            "personalization",
            "train_sizes",
            "background_fraction",
            "test_fraction",
            "validation_fraction",
            "min_eval_users",
            "als",
        ),
    script:
        "../scripts/personalization_features.py"


rule personalization_run:
    input:
        ratings=personalization_ratings,
        features=f"{PERS_RUN}_features.npz",
        genre_source=personalization_genre_source,
    output:
        metrics=f"{PERS_RUN}_metrics.csv",
        buckets=f"{PERS_RUN}_buckets.csv",
        per_user=f"{PERS_RUN}_per_user.csv",
    log:
        f"{LOGS}/personalization/{{dataset}}_d{{d}}_s{{seed}}_run.log",
    benchmark:
        f"{BENCH}/personalization/{{dataset}}_d{{d}}_s{{seed}}_run.tsv"
    wildcard_constraints:
        d=r"\d+",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=mem_from_input(1000, 50, "ratings"),
        runtime=doubling(240),
    params:
        # the methods and their settings; the split and item features come from the features file
        cfg=config_keys(
            "personalization",
            "train_sizes",
            "feature_sets",
            "methods",
            "grid",
            "amht",
            "fedrep",
            "sparse_only",
            "dp",
            "als.regularization",
            "als.scale_regularization",
            "intercept",
            "clip_predictions",
            "activity_buckets",
            "shared_background",
            "tuning_budget",
        ),
    script:
        "../scripts/personalization_run.py"


rule personalization_tables:
    input:
        metrics=[f"{run}_metrics.csv" for run in PERS_RUNS],
        buckets=[f"{run}_buckets.csv" for run in PERS_RUNS],
        per_user=[f"{run}_per_user.csv" for run in PERS_RUNS],
    output:
        table=table_outputs("personalization", "5. Paper A: MovieLens and storage"),
        buckets=table_outputs("personalization_buckets", "5. Paper A: MovieLens and storage"),
        paired=table_outputs("personalization_paired", "5. Paper A: MovieLens and storage"),
    log:
        f"{LOGS}/personalization/tables.log",
    benchmark:
        f"{BENCH}/personalization/tables.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        cfg=config_keys("personalization", "train_sizes", "bootstrap", "confidence_level"),
        seed=derive_seed(ROOT_SEED, "personalization", "tables"),
    script:
        "../scripts/personalization_tables.py"


rule personalization_notebook:
    input:
        notebook="notebooks/personalization.ipynb",
        summary=f"{RESULTS}/tables/personalization.csv",
        paired=f"{RESULTS}/tables/personalization_paired.csv",
    output:
        rmse_vs_m=figure_outputs("personalization_rmse_vs_m", "5. Paper A: MovieLens and storage"),
        paired=figure_outputs("personalization_paired", "5. Paper A: MovieLens and storage"),
        ipynb=f"{RESULTS}/notebooks/personalization.ipynb",
        html=f"{RESULTS}/notebooks/personalization.html",
    log:
        f"{LOGS}/personalization/notebook.log",
    benchmark:
        f"{BENCH}/personalization/notebook.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        parameters=lambda wildcards, input, output: {
            "summary_csv": absolute(input.summary),
            "paired_csv": absolute(input.paired),
            "rmse_vs_m_stem": figure_stem(output.rmse_vs_m),
            "paired_stem": figure_stem(output.paired),
            "train_sizes": [str(m) for m in PERS["train_sizes"]],
        },
    script:
        "../scripts/execute_notebook.py"


PERS_TARGETS = (
    rules.personalization_tables.output.table
    + rules.personalization_tables.output.buckets
    + rules.personalization_tables.output.paired
    + rules.personalization_notebook.output.rmse_vs_m
    + rules.personalization_notebook.output.paired
    + [rules.personalization_notebook.output.html]
)
ALL_TARGETS.extend(PERS_TARGETS)
CLAIM_TABLES["personalization_paired"] = f"{RESULTS}/tables/personalization_paired.csv"


rule personalization:
    input:
        PERS_TARGETS,
