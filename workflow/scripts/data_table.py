"""Rule datasets_table: results/tables/datasets.{csv,md} from the prepared summaries."""

import logging

from bilinrec.experiments.datasets.plots import write_overview_table
from bilinrec.io import read_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
write_overview_table([read_json(p) for p in snakemake.input], snakemake.output.csv)
