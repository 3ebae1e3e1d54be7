"""Rule forget_lrs: AMHT-LRS exact forgetting vs retraining, DP-covered vs a fresh private fit."""

from bilinrec.experiments.forget.steps import lrs_forget_step
from bilinrec.experiments.jobs import job

with job(snakemake):
    lrs_forget_step(snakemake.params.cfg, snakemake.params.seed, snakemake.output[0])
