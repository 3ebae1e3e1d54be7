"""Rule dp_audit: canary membership-inference audit of DP-AMHT-LRS -> CSV of epsilon lower bounds."""

import pandas as pd

from bilinrec.experiments.dp.steps import run_dp_audit
from bilinrec.experiments.jobs import job
from bilinrec.io import atomic_path, read_json
from bilinrec.models.lrs import load_accounting_cache

with job(snakemake):
    load_accounting_cache(read_json(snakemake.input.accounting))
    records = run_dp_audit(snakemake.params.cfg, int(snakemake.params.seed))
    with atomic_path(snakemake.output[0]) as tmp:
        pd.DataFrame(records).to_csv(tmp, index=False)
