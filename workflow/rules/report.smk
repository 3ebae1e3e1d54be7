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
