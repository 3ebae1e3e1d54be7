"""Snakemake: summarize the personalization runs over seeds into tables."""

import logging

from bilinrec.experiments.personalization.steps import tables_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
logging.captureWarnings(True)

tables_step(
    snakemake.input.metrics,
    snakemake.input.buckets,
    snakemake.input.per_user,
    {name: snakemake.output[name][0] for name in ("table", "buckets", "paired")},
    snakemake.params.cfg,
    snakemake.params.seed,
)
