"""Compute results/claims.{csv,md} from the result tables (bilinrec.experiments.claims)."""

import logging

from bilinrec.experiments.claims import run_claims
from bilinrec.experiments.jobs import job

with job(snakemake):
    verdict = run_claims(dict(snakemake.input.items()), snakemake.params.thresholds,
                         snakemake.output.csv, snakemake.output.md)
    logging.info("verdicts:\n%s", verdict[["id", "verdict", "value"]].to_string(index=False))
