"""Snakemake: fit, tune and test every personalization method (one dataset, d, seed)."""

import logging

from threadpoolctl import threadpool_limits

from bilinrec.experiments.personalization.steps import run_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s", force=True)
logging.captureWarnings(True)

with threadpool_limits(limits=snakemake.threads):
    run_step(
        snakemake.input.ratings,
        snakemake.input.features,
        {name: snakemake.output[name] for name in ("metrics", "buckets", "per_user")},
        snakemake.params.cfg,
        snakemake.wildcards.dataset,
        int(snakemake.wildcards.d),
        int(snakemake.wildcards.seed),
    )
