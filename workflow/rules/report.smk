# Provenance, claims verdict and report.


rule provenance:
    output:
        f"{RESULTS}/provenance.json",
    log:
        f"{LOGS}/provenance.log",
    params:
        config=config,
    conda:
        CONDA_ENV
    script:
        "../scripts/provenance.py"


# The result tables the claims read (see bilinrec.claims.TABLE_COLUMNS).
CLAIM_TABLES = {
    "unlearn_summary": f"{RESULTS}/tables/unlearn_summary.csv",
    "unlearn_checks": f"{RESULTS}/tables/unlearn_checks.csv",
    "lrs_phase_transition": f"{RESULTS}/tables/lrs_phase_transition.csv",
    "lrs_sample_complexity": f"{RESULTS}/tables/lrs_sample_complexity.csv",
    "lrs_convergence": f"{LRS_OUT}/convergence.csv",
    "lrs_dp_utility": f"{RESULTS}/tables/lrs_dp_utility.csv",
    "lrs_storage": f"{RESULTS}/tables/lrs_storage.csv",
    "lrs_movielens_paired": f"{RESULTS}/tables/lrs_movielens_paired.csv",
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
    params:
        thresholds=config["claims"],
    conda:
        CONDA_ENV
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
    params:
        config=config,
    conda:
        CONDA_ENV
    script:
        "../scripts/report.py"
