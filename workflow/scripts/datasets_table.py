"""Rule datasets_table: results/tables/datasets.{csv,md} from the prepared summaries."""

from bilinrec.experiments.datasets.plots import write_overview_table
from bilinrec.experiments.jobs import job
from bilinrec.io import read_json

with job(snakemake):
    write_overview_table([read_json(p) for p in snakemake.input], snakemake.output.csv)
