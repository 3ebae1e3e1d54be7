# Rules of part 'forget' (both papers: forgetting whole users).
# forget_als: an ALS model (unlearn.model, a cell-wise confidence) on the unlearn split's training
# positives (first unlearn seed; made even for a dataset not in unlearn.datasets); users forgotten
# from it, certified and exact, against retraining; forget_lrs: AMHT-LRS exact against retraining, and DP-AMHT-LRS covered by its
# guarantee against a fresh private fit; forget_table: the table and the figure.

FORGET = config["forget"]
FORGET_OUT = f"{RESULTS}/forget"
FORGET_CATEGORY = "7. Both papers: forgetting"


rule forget_als:
    input:
        split=f"{UNLEARN_OUT}/{{dataset}}/s{UNLEARN_SEEDS[0]}/split.npz",
    output:
        f"{FORGET_OUT}/als_{{dataset}}.csv",
    log:
        f"{LOGS}/forget/als_{{dataset}}.log",
    benchmark:
        f"{BENCH}/forget/als_{{dataset}}.tsv"
    conda:
        CONDA_ENV
    threads: FORGET["threads"]
    resources:
        mem_mb=mem_from_input(1000, 20, "split"),
        runtime=doubling(120),
    params:
        cfg=config_keys("forget", "n_forgotten", "als", drop=("als.datasets",)),
        model={**config["unlearn"]["model"], **FORGET["als"]["stopping"]},
        confidence=config["unlearn"]["confidence"],
        seed=UNLEARN_SEEDS[0],
    script:
        "../scripts/forget_als.py"


rule forget_lrs:
    output:
        f"{FORGET_OUT}/lrs.csv",
    log:
        f"{LOGS}/forget/lrs.log",
    benchmark:
        f"{BENCH}/forget/lrs.tsv"
    conda:
        CONDA_ENV
    threads: FORGET["threads"]
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(60),
    params:
        cfg=config_keys("forget", "n_forgotten", "lrs", "dp"),
        seed=derive_seed(ROOT_SEED, "forget-lrs"),
    script:
        "../scripts/forget_lrs.py"


rule forget_table:
    input:
        als=expand(rules.forget_als.output[0], dataset=FORGET["als"]["datasets"]),
        lrs=rules.forget_lrs.output[0],
    output:
        table=table_outputs("forget", FORGET_CATEGORY),
        figure=figure_outputs("forget_time", FORGET_CATEGORY),
    log:
        f"{LOGS}/forget/table.log",
    benchmark:
        f"{BENCH}/forget/table.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    script:
        "../scripts/forget_table.py"


FORGET_TARGETS = rules.forget_table.output.table + rules.forget_table.output.figure
ALL_TARGETS.extend(FORGET_TARGETS)


rule forget:
    input:
        FORGET_TARGETS,
