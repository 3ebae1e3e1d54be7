"""Rule unlearn_notebook: execute notebooks/unlearn.ipynb, which writes the unlearn_* figures."""

import logging
import os

from bilinrec.notebooks import execute_notebook

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
execute_notebook(
    snakemake.input.notebook,
    snakemake.output.ipynb,
    snakemake.output.html,
    parameters={
        "summary_csv": os.path.abspath(snakemake.input.summary),
        "metrics_paths": [os.path.abspath(p) for p in snakemake.input.metrics],
        "figures_dir": os.path.abspath(os.path.dirname(snakemake.output.figures[0])),
    },
    cwd=os.getcwd(),
)
