"""Rule dp_run: one method on one (t, seed) problem, every epsilon -> CSV of records."""

import pandas as pd

from bilinrec.experiments.dp.steps import run_dp_method
from bilinrec.experiments.jobs import job
from bilinrec.io import atomic_path, read_json
from bilinrec.models.lrs import load_accounting_cache

with job(snakemake):
    load_accounting_cache(read_json(snakemake.input.accounting))
    records = run_dp_method(
        snakemake.params.cfg, int(snakemake.wildcards.n_users), int(snakemake.wildcards.seed),
        snakemake.wildcards.method,
    )
    with atomic_path(snakemake.output[0]) as tmp:
        pd.DataFrame(records).to_csv(tmp, index=False)
