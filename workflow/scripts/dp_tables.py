"""Rule dp_tables: concatenate the per-run records and write the dp_utility and dp_audit tables."""

import logging

import pandas as pd

from bilinrec.experiments.dp.steps import audit_table, utility_table
from bilinrec.experiments.jobs import job
from bilinrec.io import atomic_path
from bilinrec.models.lrs import RELEASE_LABELS
from bilinrec.tables import write_table

with job(snakemake):
    records = pd.concat([pd.read_csv(path) for path in snakemake.input.runs], ignore_index=True)
    with atomic_path(snakemake.output.records) as tmp:
        records.to_csv(tmp, index=False)
    audit = pd.read_csv(snakemake.input.audit)
    summary, shown = utility_table(records, audit)
    write_table(
        summary, snakemake.output.table[0], display=shown,
        caption=(f"DP-AMHT-LRS privacy-utility trade-off on synthetic data (user-level DP, "
                 f"delta = {snakemake.params.delta:g}); mean ± std over seeds. Private rows: "
                 f"{RELEASE_LABELS[snakemake.params.mode]}. The audit column is the likelihood-ratio audit's "
                 f"empirical lower bound on epsilon for the private mode's mechanism, with its ceiling "
                 f"(docs/privacy.md)."),
    )
    a_summary, a_shown = audit_table(audit)
    write_table(
        a_summary, snakemake.output.audit[0], display=a_shown,
        caption=("Privacy audit of DP-AMHT-LRS: membership inference of a canary user; Clopper-Pearson "
                 "lower bound on epsilon next to its ceiling (the bound of a perfect test over the same "
                 "trials). A bound above the claimed epsilon refutes the claim; a claim at or above the "
                 "ceiling cannot be tested. Planted-broken controls (noise too small) must be refuted, "
                 "the null control (no canary) must give 0."),
    )
    logging.info("%d records, %d table rows, %d audits", len(records), len(summary), len(audit))
