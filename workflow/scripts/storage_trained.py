"""Snakemake: fit AMHT-LRS and full fine-tuning at several model sizes, serialize both, measure bytes."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.storage.steps import trained_storage_step

with job(snakemake):
    trained_storage_step(snakemake.output.table[0], snakemake.params.cfg, snakemake.params.seed,
                         snakemake.params.min_ratio)
