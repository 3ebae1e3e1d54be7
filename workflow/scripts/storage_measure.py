"""Snakemake: measure serialized per-user storage of every scheme and model."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.storage.steps import storage_step

with job(snakemake):
    storage_step(snakemake.output.table[0], snakemake.params.cfg, snakemake.params.linear_dims, snakemake.params.seed)
