# Rules of parts 'personalization' (Paper A on MovieLens, sparse-data regime) and 'storage'.

PERS = config["personalization"]
STORAGE = config["storage"]
PERS_DATASETS = PERS["datasets"] or config["datasets"]
PERS_SEEDS = seeds_for("personalization", PERS["seeds"])
PERS_DIR = f"{RESULTS}/personalization"
PERS_RUN = PERS_DIR + "/{dataset}/d{d}_s{seed}"
PERS_TABLES = [f"{RESULTS}/tables/lrs_movielens{suffix}.{ext}"
               for suffix in ("", "_buckets", "_paired") for ext in ("csv", "md", "tex")]
PERS_FIGURES = {name: f"{RESULTS}/figures/{name}"
                for name in ("lrs_movielens_rmse_vs_m", "lrs_storage_scaling", "lrs_storage_vs_rmse")}
PERS_NOTEBOOK = [f"{RESULTS}/notebooks/lrs_movielens.{ext}" for ext in ("ipynb", "html")]
STORAGE_TABLES = [f"{RESULTS}/tables/lrs_storage.{ext}" for ext in ("csv", "md")]


def pers_runs(kind):
    return expand(PERS_RUN + f"_{kind}.csv", dataset=PERS_DATASETS, d=PERS["factors"], seed=PERS_SEEDS)


def figure_files(*names):
    return [f"{PERS_FIGURES[n]}.{ext}" for n in names for ext in ("pdf", "png")]


rule pers_features:
    input:
        ratings=f"{RESULTS}/data/{{dataset}}/ratings.npz",
    output:
        PERS_RUN + "_features.npz",
    log:
        f"{LOGS}/personalization/{{dataset}}_d{{d}}_s{{seed}}_features.log",
    benchmark:
        f"{BENCH}/personalization/{{dataset}}_d{{d}}_s{{seed}}_features.tsv"
    wildcard_constraints:
        d=r"\d+",
    threads: 1
    params:
        cfg=PERS,
    script:
        "../scripts/pers_features.py"


rule pers_run:
    input:
        ratings=f"{RESULTS}/data/{{dataset}}/ratings.npz",
        features=PERS_RUN + "_features.npz",
    output:
        metrics=PERS_RUN + "_metrics.csv",
        buckets=PERS_RUN + "_buckets.csv",
        per_user=PERS_RUN + "_per_user.csv",
    log:
        f"{LOGS}/personalization/{{dataset}}_d{{d}}_s{{seed}}_run.log",
    benchmark:
        f"{BENCH}/personalization/{{dataset}}_d{{d}}_s{{seed}}_run.tsv"
    wildcard_constraints:
        d=r"\d+",
    threads: 1
    params:
        cfg=PERS,
    script:
        "../scripts/pers_run.py"


rule pers_tables:
    input:
        metrics=pers_runs("metrics"),
        buckets=pers_runs("buckets"),
        per_user=pers_runs("per_user"),
    output:
        table=f"{RESULTS}/tables/lrs_movielens.csv",
        buckets=f"{RESULTS}/tables/lrs_movielens_buckets.csv",
        paired=f"{RESULTS}/tables/lrs_movielens_paired.csv",
        extra=[p for p in PERS_TABLES if not p.endswith(".csv")],
    log:
        f"{LOGS}/personalization/tables.log",
    benchmark:
        f"{BENCH}/personalization/tables.tsv"
    params:
        cfg=PERS,
        seed=derive_seed(ROOT_SEED, "personalization", "tables"),
    script:
        "../scripts/pers_tables.py"


rule storage_measure:
    output:
        csv=f"{RESULTS}/tables/lrs_storage.csv",
        md=f"{RESULTS}/tables/lrs_storage.md",
    log:
        f"{LOGS}/storage/measure.log",
    benchmark:
        f"{BENCH}/storage/measure.tsv"
    params:
        cfg=STORAGE,
        linear_dims=PERS["factors"],
        seed=derive_seed(ROOT_SEED, "storage"),
    script:
        "../scripts/storage_measure.py"


rule pers_notebook:
    input:
        notebook="notebooks/lrs_movielens.ipynb",
        summary=f"{RESULTS}/tables/lrs_movielens.csv",
        storage=f"{RESULTS}/tables/lrs_storage.csv",
    output:
        figures=figure_files(*PERS_FIGURES),
        ipynb=PERS_NOTEBOOK[0],
        html=PERS_NOTEBOOK[1],
    log:
        f"{LOGS}/personalization/notebook.log",
    benchmark:
        f"{BENCH}/personalization/notebook.tsv"
    params:
        rmse_vs_m_stem=PERS_FIGURES["lrs_movielens_rmse_vs_m"],
        storage_scaling_stem=PERS_FIGURES["lrs_storage_scaling"],
        storage_vs_rmse_stem=PERS_FIGURES["lrs_storage_vs_rmse"],
        train_sizes=[str(m) for m in PERS["train_sizes"]],
        storage_vs_rmse_m=str(STORAGE["figure_train_size"]),
    script:
        "../scripts/pers_notebook.py"


rule personalization:
    input:
        PERS_TABLES,
        figure_files("lrs_movielens_rmse_vs_m"),
        PERS_NOTEBOOK,


rule storage:
    input:
        STORAGE_TABLES,
        figure_files("lrs_storage_scaling", "lrs_storage_vs_rmse"),
        PERS_NOTEBOOK,


ALL_TARGETS.extend(PERS_TABLES + STORAGE_TABLES + figure_files(*PERS_FIGURES) + PERS_NOTEBOOK)
