"""Rule lrs_summary: concatenate the per-seed records; sample-complexity and phase tables."""

import logging

from bilinrec.experiments.lrs.steps import write_summaries

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
write_summaries(
    record_paths=list(snakemake.input),
    records_csv=snakemake.output.records,
    convergence_csv=snakemake.output.convergence,
    table_csv=snakemake.output.table[0],
    phase_csv=snakemake.output.phase[0],
    fit_json=snakemake.output.fit,
)
