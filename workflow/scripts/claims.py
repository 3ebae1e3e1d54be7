"""Compute results/claims.{csv,md} from the result tables (bilinrec.claims)."""

import logging

from bilinrec.experiments.claims import run_claims

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
verdict = run_claims(dict(snakemake.input.items()), snakemake.params.thresholds,
                     snakemake.output.csv, snakemake.output.md)
logging.info("verdicts:\n%s", verdict[["id", "verdict", "value"]].to_string(index=False))
