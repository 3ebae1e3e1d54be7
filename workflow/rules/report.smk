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
