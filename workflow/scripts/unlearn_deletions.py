"""Rule unlearn_deletions: the deleted cells of one run."""

import logging

from bilinrec.experiments.unlearn.steps import deletions_step

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
deletions_step(
    split_path=snakemake.input.split,
    dataset=snakemake.wildcards.dataset,
    strategy=snakemake.wildcards.strategy,
    fraction=float(snakemake.wildcards.fraction),
    cfg=snakemake.params.cfg,
    root_seed=snakemake.params.root_seed,
    seed=int(snakemake.wildcards.seed),
    out=snakemake.output[0],
)
