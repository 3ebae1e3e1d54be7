"""Snakemake: split users and fit the background ALS item embeddings (one dataset, d, seed)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.personalization.steps import features_step

with job(snakemake):
    features_step(
        snakemake.input.ratings,
        snakemake.output[0],
        snakemake.params.cfg,
        int(snakemake.wildcards.d),
        int(snakemake.wildcards.seed),
    )
