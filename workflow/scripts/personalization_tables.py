"""Snakemake: summarize the personalization runs over seeds into tables."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.personalization.steps import tables_step

with job(snakemake):
    tables_step(
        snakemake.input.metrics,
        snakemake.input.buckets,
        snakemake.input.per_user,
        {name: snakemake.output[name][0] for name in ("table", "buckets", "paired")},
        snakemake.params.cfg,
        snakemake.params.seed,
    )
