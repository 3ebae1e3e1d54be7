"""Rule dp_tables: concatenate the per-run records and write the dp_utility table."""

import logging

import pandas as pd

from bilinrec.experiments.dp.steps import utility_table
from bilinrec.experiments.jobs import job
from bilinrec.io import atomic_path
from bilinrec.tables import write_table

with job(snakemake):
    records = pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True)
    with atomic_path(snakemake.output.records) as tmp:
        records.to_csv(tmp, index=False)
    summary, shown = utility_table(records)
    write_table(
        summary, snakemake.output.table[0], display=shown,
        caption=(f"DP-AMHT-LRS privacy-utility trade-off on synthetic data (user-level DP, "
                 f"delta = {snakemake.params.delta:g}); mean ± std over seeds."),
    )
    logging.info("%d records, %d table rows", len(records), len(summary))
