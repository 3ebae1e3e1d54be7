"""Snakemake: generate the positive-control dataset synthetic-ml-sparse of claim A5."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.personalization.steps import control_step

with job(snakemake):
    control_step(snakemake.output[0], snakemake.params.cfg, int(snakemake.params.seed))
