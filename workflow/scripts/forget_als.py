"""Rule forget_als: ALS certified and exact forgetting of whole users vs retraining, audited (with near-miss controls)."""

from bilinrec.experiments.forget.steps import als_forget_step
from bilinrec.experiments.jobs import job

with job(snakemake):
    als_forget_step(snakemake.input.split, snakemake.wildcards.dataset, snakemake.params.cfg,
                    snakemake.params.model, snakemake.params.seed, snakemake.output[0], threads=snakemake.threads,
                    frozen_confidence=snakemake.params.confidence)
