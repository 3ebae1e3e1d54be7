# Rules of part 'storage' (Paper A: per-user storage against full fine-tuning).
# One job serializes stores of every model and scheme; the notebook draws the storage figures
# (storage vs RMSE reads the personalization table).

STORAGE = config["storage"]


rule storage_measure:
    output:
        table=table_outputs("storage", "5. Paper A: MovieLens and storage", (".csv", ".md")),
    log:
        f"{LOGS}/storage/measure.log",
    benchmark:
        f"{BENCH}/storage/measure.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        cfg=config_keys("storage", "models", "lrs_variants", "n_users", "embedding_dim", "max_measured_bytes"),
        linear_dims=config["personalization"]["factors"],
        seed=derive_seed(ROOT_SEED, "storage"),
    script:
        "../scripts/storage_measure.py"


rule storage_trained:
    output:
        table=table_outputs("storage_trained", "5. Paper A: MovieLens and storage", (".csv", ".md")),
    log:
        f"{LOGS}/storage/trained.log",
    benchmark:
        f"{BENCH}/storage/trained.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(2000),
        runtime=doubling(30),
    params:
        cfg=STORAGE["trained"],
        seed=derive_seed(ROOT_SEED, "storage_trained"),
        min_ratio=config["claims"]["a4_min_ratio"],
    script:
        "../scripts/storage_trained.py"


rule storage_notebook:
    input:
        notebook="notebooks/storage.ipynb",
        storage=rules.storage_measure.output.table[0],
        trained=rules.storage_trained.output.table[0],
        summary=f"{RESULTS}/tables/personalization.csv",
    output:
        storage_scaling=figure_outputs("storage_scaling", "5. Paper A: MovieLens and storage"),
        storage_vs_rmse=figure_outputs("storage_vs_rmse", "5. Paper A: MovieLens and storage"),
        storage_trained=figure_outputs("storage_trained", "5. Paper A: MovieLens and storage"),
        ipynb=f"{RESULTS}/notebooks/storage.ipynb",
        html=f"{RESULTS}/notebooks/storage.html",
    log:
        f"{LOGS}/storage/notebook.log",
    benchmark:
        f"{BENCH}/storage/notebook.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        parameters=lambda wildcards, input, output: {
            "storage_csv": absolute(input.storage),
            "trained_csv": absolute(input.trained),
            "storage_trained_stem": figure_stem(output.storage_trained),
            "a4_min_ratio": config["claims"]["a4_min_ratio"],
            "summary_csv": absolute(input.summary),
            "storage_scaling_stem": figure_stem(output.storage_scaling),
            "storage_vs_rmse_stem": figure_stem(output.storage_vs_rmse),
            "storage_vs_rmse_m": str(STORAGE["figure_train_size"]),
        },
    script:
        "../scripts/execute_notebook.py"


STORAGE_TARGETS = (
    rules.storage_measure.output.table
    + rules.storage_trained.output.table
    + rules.storage_notebook.output.storage_trained
    + rules.storage_notebook.output.storage_scaling
    + rules.storage_notebook.output.storage_vs_rmse
    + [rules.storage_notebook.output.html]
)
ALL_TARGETS.extend(STORAGE_TARGETS)
CLAIM_TABLES["storage_trained"] = f"{RESULTS}/tables/storage_trained.csv"


rule storage:
    input:
        STORAGE_TARGETS,
