"""Rule unlearn_retrain: retraining from scratch on the reduced data (one band member)."""

import logging

from bilinrec.experiments.unlearn.steps import retrain_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
retrain_step(
    split_path=snakemake.input.split,
    deletions_path=snakemake.input.deletions,
    cfg=snakemake.params.cfg,
    seed=int(snakemake.wildcards.seed),
    member=int(snakemake.wildcards.member),
    out=snakemake.output[0],
    threads=snakemake.threads,
)
