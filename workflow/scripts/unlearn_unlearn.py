"""Rule unlearn_unlearn: Unlearn-ALS (retrain, mask) and naive fine-tuning of one run."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import unlearn_step

with job(snakemake):
    unlearn_step(
        split_path=snakemake.input.split,
        deletions_path=snakemake.input.deletions,
        original_path=snakemake.input.original,
        cfg=snakemake.params.cfg,
        seed=int(snakemake.wildcards.seed),
        out=snakemake.output[0],
        threads=snakemake.threads,
    )
