"""Rule unlearn_tables: results/tables/unlearn_summary, unlearn_checks and unlearn_paired (csv, md, tex)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.report import write_checks, write_paired, write_summary

with job(snakemake):
    write_summary(list(snakemake.input), snakemake.output.summary[0])
    write_checks(list(snakemake.input), snakemake.output.checks[0])
    write_paired(list(snakemake.input), snakemake.output.paired[0])
