# Rules of parts 'personalization' (Paper A on MovieLens, sparse-data regime) and 'storage'.
# One job per (dataset, d, seed) fits the background ALS, one runs every method at every m;
# a summary rule writes the tables; the notebook draws the figures of both parts.

import os

PERS = config["personalization"]
STORAGE = config["storage"]
PERS_DATASETS = PERS["datasets"] or config["datasets"]
PERS_SEEDS = seeds_for("personalization", PERS["seeds"])
PERS_RUN = f"{RESULTS}/personalization/{{dataset}}/d{{d}}_s{{seed}}"
# The features step only depends on the protocol and the background ALS settings.
PERS_FEATURE_KEYS = ("train_sizes", "background_fraction", "test_fraction", "validation_fraction",
                     "min_eval_users", "als")
PERS_RUNS = expand(f"{RESULTS}/personalization/{{dataset}}/d{{d}}_s{{seed}}",
                   dataset=PERS_DATASETS, d=PERS["factors"], seed=PERS_SEEDS)


rule pers_features:
    input:
        ratings=f"{RESULTS}/data/{{dataset}}/ratings.npz",
    output:
        f"{PERS_RUN}_features.npz",
    log:
        f"{LOGS}/personalization/{{dataset}}_d{{d}}_s{{seed}}_features.log",
    benchmark:
        f"{BENCH}/personalization/{{dataset}}_d{{d}}_s{{seed}}_features.tsv"
    wildcard_constraints:
        d=r"\d+",
    threads: 1
    params:
        cfg={key: PERS[key] for key in PERS_FEATURE_KEYS},
    conda:
        CONDA_ENV
    script:
        "../scripts/pers_features.py"


rule pers_run:
    input:
        ratings=f"{RESULTS}/data/{{dataset}}/ratings.npz",
        features=f"{PERS_RUN}_features.npz",
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
    threads: 1
    params:
        cfg=PERS,
    conda:
        CONDA_ENV
    script:
        "../scripts/pers_run.py"


rule pers_tables:
    input:
        metrics=[f"{run}_metrics.csv" for run in PERS_RUNS],
        buckets=[f"{run}_buckets.csv" for run in PERS_RUNS],
        per_user=[f"{run}_per_user.csv" for run in PERS_RUNS],
    output:
        table=table_outputs("lrs_movielens", "5. Paper A: MovieLens and storage"),
        buckets=table_outputs("lrs_movielens_buckets", "5. Paper A: MovieLens and storage"),
        paired=table_outputs("lrs_movielens_paired", "5. Paper A: MovieLens and storage"),
    log:
        f"{LOGS}/personalization/tables.log",
    benchmark:
        f"{BENCH}/personalization/tables.tsv"
    params:
        cfg=PERS,
        seed=derive_seed(ROOT_SEED, "personalization", "tables"),
    conda:
        CONDA_ENV
    script:
        "../scripts/pers_tables.py"


rule storage_measure:
    output:
        table=table_outputs("lrs_storage", "5. Paper A: MovieLens and storage", (".csv", ".md")),
    log:
        f"{LOGS}/storage/measure.log",
    benchmark:
        f"{BENCH}/storage/measure.tsv"
    params:
        cfg=STORAGE,
        linear_dims=PERS["factors"],
        seed=derive_seed(ROOT_SEED, "storage"),
    conda:
        CONDA_ENV
    script:
        "../scripts/storage_measure.py"


rule pers_notebook:
    input:
        notebook="notebooks/lrs_movielens.ipynb",
        summary=f"{RESULTS}/tables/lrs_movielens.csv",
        storage=f"{RESULTS}/tables/lrs_storage.csv",
    output:
        rmse_vs_m=figure_outputs("lrs_movielens_rmse_vs_m", "5. Paper A: MovieLens and storage"),
        storage_scaling=figure_outputs("lrs_storage_scaling", "5. Paper A: MovieLens and storage"),
        storage_vs_rmse=figure_outputs("lrs_storage_vs_rmse", "5. Paper A: MovieLens and storage"),
        ipynb=f"{RESULTS}/notebooks/lrs_movielens.ipynb",
        html=f"{RESULTS}/notebooks/lrs_movielens.html",
    log:
        f"{LOGS}/personalization/notebook.log",
    benchmark:
        f"{BENCH}/personalization/notebook.tsv"
    params:
        stems=lambda wildcards, output: {
            name: os.path.splitext(output[name][0])[0]
            for name in ("rmse_vs_m", "storage_scaling", "storage_vs_rmse")
        },
        train_sizes=[str(m) for m in PERS["train_sizes"]],
        storage_vs_rmse_m=str(STORAGE["figure_train_size"]),
    conda:
        CONDA_ENV
    script:
        "../scripts/pers_notebook.py"


PERS_TARGETS = (
    rules.pers_tables.output.table
    + rules.pers_tables.output.buckets
    + rules.pers_tables.output.paired
    + rules.pers_notebook.output.rmse_vs_m
    + [rules.pers_notebook.output.ipynb, rules.pers_notebook.output.html]
)
STORAGE_TARGETS = (
    rules.storage_measure.output.table
    + rules.pers_notebook.output.storage_scaling
    + rules.pers_notebook.output.storage_vs_rmse
    + [rules.pers_notebook.output.ipynb, rules.pers_notebook.output.html]
)
ALL_TARGETS.extend(PERS_TARGETS + STORAGE_TARGETS)


rule personalization:
    input:
        PERS_TARGETS,


rule storage:
    input:
        STORAGE_TARGETS,
