"""Snakemake: split users and fit the background ALS item embeddings (one dataset, d, seed)."""

import logging

from threadpoolctl import threadpool_limits

from bilinrec.experiments.personalization.steps import features_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
logging.captureWarnings(True)

with threadpool_limits(limits=snakemake.threads):
    features_step(
        snakemake.input.ratings,
        snakemake.output[0],
        snakemake.params.cfg,
        int(snakemake.wildcards.d),
        int(snakemake.wildcards.seed),
    )
