"""Rule unlearn_retrain: retraining from scratch on the reduced data (one band member)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import retrain_step

with job(snakemake):
    retrain_step(
        split_path=snakemake.input.split,
        deletions_path=snakemake.input.deletions,
        cfg=snakemake.params.cfg,
        seed=int(snakemake.wildcards.seed),
        member=int(snakemake.wildcards.member),
        out=snakemake.output[0],
        threads=snakemake.threads,
    )
