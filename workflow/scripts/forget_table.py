"""Rule forget_table: the forget table and the time-to-forget figure."""

from bilinrec.experiments.forget.steps import forget_table_step
from bilinrec.experiments.jobs import job

with job(snakemake):
    forget_table_step([*snakemake.input.als, snakemake.input.lrs], snakemake.output.table[0],
                      snakemake.output.figure[0][: -len(".pdf")])
