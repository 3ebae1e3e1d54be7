"""Rule datasets_prepare: write results/data/<dataset>/{ratings.npz,summary.json}."""

from pathlib import Path

from bilinrec.experiments.datasets.steps import prepare_step
from bilinrec.experiments.jobs import job

with job(snakemake):
    prepare_step(
        snakemake.wildcards.dataset,
        snakemake.params.data,
        root_seed=snakemake.params.seed,
        resources=snakemake.params.resources,
        out_dir=Path(snakemake.output.ratings).parent,
    )
