"""Rule prepare_dataset: write results/data/<dataset>/{ratings.npz,summary.json}."""

import logging
from pathlib import Path

from bilinrec.experiments.datasets.steps import prepare_dataset

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
prepare_dataset(
    snakemake.wildcards.dataset,
    snakemake.params.data,
    root_seed=snakemake.params.seed,
    resources=snakemake.params.resources,
    out_dir=Path(snakemake.output.ratings).parent,
)
