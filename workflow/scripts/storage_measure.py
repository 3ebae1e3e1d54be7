"""Snakemake: measure serialized per-user storage of every scheme and model."""

import logging

from bilinrec.experiments.personalization.steps import storage_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
logging.captureWarnings(True)

storage_step(snakemake.output.table[0], snakemake.params.cfg, snakemake.params.linear_dims, snakemake.params.seed)
