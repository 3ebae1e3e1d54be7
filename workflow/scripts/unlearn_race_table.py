"""Rule unlearn_race_table: results/tables/unlearn_race and figure unlearn_race_speedup."""

import os

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.steps import race_table_step

with job(snakemake):
    race_table_step(list(snakemake.input), snakemake.output.table[0],
                    os.path.splitext(snakemake.output.figure[0])[0])
