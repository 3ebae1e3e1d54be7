"""Snakemake: fit, tune and test every personalization method (one dataset, d, seed)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.personalization.steps import run_step

with job(snakemake):
    run_step(
        snakemake.input.ratings,
        snakemake.input.features,
        {name: snakemake.output[name] for name in ("metrics", "buckets", "per_user")},
        snakemake.params.cfg,
        snakemake.wildcards.dataset,
        int(snakemake.wildcards.d),
        int(snakemake.wildcards.seed),
        resources="resources",
    )
