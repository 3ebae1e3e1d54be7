"""Rule unlearn_original: the model before deletion, shared by all runs of (dataset, seed)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import original_step

with job(snakemake):
    original_step(
        split_path=snakemake.input.split,
        cfg=snakemake.params.cfg,
        seed=int(snakemake.wildcards.seed),
        out=snakemake.output[0],
        threads=snakemake.threads,
    )
