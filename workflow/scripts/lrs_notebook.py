"""Rule lrs_notebook: execute notebooks/lrs_synthetic.ipynb, which writes the lrs_* figures."""

import logging
import os

from bilinrec.notebooks import execute_notebook

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
execute_notebook(
    snakemake.input.notebook,
    snakemake.output.ipynb,
    snakemake.output.html,
    parameters={
        "records_csv": os.path.abspath(snakemake.input.records),
        "convergence_csv": os.path.abspath(snakemake.input.convergence),
        "phase_fit_json": os.path.abspath(snakemake.input.fit),
        "figures_dir": os.path.abspath(os.path.dirname(snakemake.output.figures[0])),
    },
    cwd=os.getcwd(),
)
