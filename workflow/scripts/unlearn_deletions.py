"""Rule unlearn_deletions: the deleted cells of one run."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import deletions_step

with job(snakemake):
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
