"""Rule lrs_run: one synthetic experiment's grid for one seed -> CSV of records."""

import logging

from bilinrec.experiments.jobs import job
from bilinrec.experiments.lrs.steps import run_experiment
from bilinrec.io import atomic_path

with job(snakemake):
    records = run_experiment(snakemake.wildcards.experiment, snakemake.params.cfg, int(snakemake.wildcards.seed))
    logging.info("%d records in %.1f s", len(records), records["job_seconds"].iloc[0])
    with atomic_path(snakemake.output[0]) as tmp:
        records.to_csv(tmp, index=False)
