"""Rule dp_notebook: execute notebooks/lrs_dp.ipynb, which writes the lrs_dp_* figures."""

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
        "fixed_epsilon": str(snakemake.params.fixed_epsilon),
        "figures_dir": os.path.abspath(os.path.dirname(snakemake.output.figures[0])),
    },
    cwd=os.getcwd(),
)
