"""Rule unlearn_split: positives, held-out cells and confidences of one (dataset, seed)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import split_step

with job(snakemake):
    split_step(
        dataset=snakemake.wildcards.dataset,
        ratings_path=snakemake.input[0] if len(snakemake.input) else None,
        cfg=snakemake.params.cfg,
        root_seed=snakemake.params.root_seed,
        seed=int(snakemake.wildcards.seed),
        out=snakemake.output[0],
    )
