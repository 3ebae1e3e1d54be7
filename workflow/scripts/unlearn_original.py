"""Rule unlearn_original: the model before deletion, shared by all runs of (dataset, seed)."""

import logging

from bilinrec.experiments.unlearn.steps import original_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
original_step(
    split_path=snakemake.input.split,
    cfg=snakemake.params.cfg,
    seed=int(snakemake.wildcards.seed),
    out=snakemake.output[0],
    threads=snakemake.threads,
)
