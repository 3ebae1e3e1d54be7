# Provenance, claims verdict and report.


rule provenance:
    output:
        f"{RESULTS}/provenance.json",
    log:
        f"{LOGS}/provenance.log",
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        config=config,
    script:
        "../scripts/provenance.py"


# The result tables the claims read (see bilinrec.experiments.claims.TABLE_COLUMNS).
CLAIM_TABLES = {
    "unlearn_paired": f"{RESULTS}/tables/unlearn_paired.csv",
    "lrs_m50": f"{RESULTS}/tables/lrs_m50.csv",
    "lrs_convergence": f"{LRS_OUT}/convergence.csv",
    "dp_utility": f"{RESULTS}/tables/dp_utility.csv",
    "storage_trained": f"{RESULTS}/tables/storage_trained.csv",
    "personalization_paired": f"{RESULTS}/tables/personalization_paired.csv",
}


rule claims:
    input:
        **CLAIM_TABLES,
    output:
        csv=table_output(f"{RESULTS}/claims.csv", "claims", "1. Claims verdict"),
        md=f"{RESULTS}/claims.md",
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCH}/claims.tsv"
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        thresholds=config["claims"],
    script:
        "../scripts/claims.py"


ALL_TARGETS.append(f"{RESULTS}/claims.md")


rule report:
    input:
        ALL_TARGETS,
    output:
        f"{RESULTS}/report.html",
    log:
        f"{LOGS}/report.log",
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        config=config,
    script:
        "../scripts/report.py"
