"""Rule lrs_experiment: one synthetic experiment's grid for one seed -> CSV of records."""

import logging

from threadpoolctl import threadpool_limits

from bilinrec.io import atomic_path
from bilinrec.experiments.lrs.steps import run_experiment

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
logging.captureWarnings(True)
with threadpool_limits(limits=snakemake.threads):
    records = run_experiment(snakemake.wildcards.experiment, snakemake.params.cfg, int(snakemake.wildcards.seed))
logging.info("%d records in %.1f s", len(records), records["job_seconds"].iloc[0])
with atomic_path(snakemake.output[0]) as tmp:
    records.to_csv(tmp, index=False)
