"""Rule lrs_tables: concatenate the per-seed records; sample-complexity and phase tables."""

from bilinrec.experiments.jobs import job
from bilinrec.experiments.lrs.steps import write_summaries

with job(snakemake):
    write_summaries(
        record_paths=list(snakemake.input),
        records_csv=snakemake.output.records,
        convergence_csv=snakemake.output.convergence,
        table_csv=snakemake.output.table[0],
        phase_csv=snakemake.output.phase[0],
        fit_json=snakemake.output.fit,
        m50_csv=snakemake.output.m50[0],
    )
