"""Rule unlearn_tables: results/tables/unlearn_summary and unlearn_checks (csv, md, tex)."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.unlearn.report import write_checks, write_summary

with job(snakemake):
    write_summary(list(snakemake.input), snakemake.output.summary[0])
    write_checks(list(snakemake.input), snakemake.output.checks[0])
