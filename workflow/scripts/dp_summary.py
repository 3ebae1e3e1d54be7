"""Rule dp_summary: concatenate the per-run records and write the lrs_dp_utility table."""

import logging

import pandas as pd

from bilinrec.io import atomic_path
from bilinrec.experiments.dp.steps import utility_table
from bilinrec.tables import write_table

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
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
