"""Rule unlearn_tables: results/tables/unlearn_summary and unlearn_checks (csv, md, tex)."""

import logging

from bilinrec.experiments.unlearn.report import write_checks, write_summary

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
write_summary(list(snakemake.input), snakemake.output.summary[0])
write_checks(list(snakemake.input), snakemake.output.checks[0])
