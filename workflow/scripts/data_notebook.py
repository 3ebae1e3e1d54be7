"""Rule datasets_notebook: execute notebooks/datasets.ipynb, which writes the overview figure."""

import logging
from pathlib import Path

from bilinrec.notebooks import execute_notebook

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
execute_notebook(
    snakemake.input.notebook,
    snakemake.output.ipynb,
    snakemake.output.html,
    parameters={
        "datasets": list(snakemake.params.datasets),
        "ratings_paths": [str(Path(p).resolve()) for p in snakemake.input.ratings],
        "figure_stem": str(Path(snakemake.output.pdf).with_suffix("").resolve()),
    },
)
