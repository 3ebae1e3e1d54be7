"""Rule dp_run: one method on one (t, seed) problem, every epsilon -> CSV of records."""

import logging

import pandas as pd
from threadpoolctl import threadpool_limits

from bilinrec.io import atomic_path, read_json
from bilinrec.models.lrs import load_accounting_cache
from bilinrec.experiments.dp.steps import run_dp_method

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
logging.captureWarnings(True)
load_accounting_cache(read_json(snakemake.input.accounting))
with threadpool_limits(limits=snakemake.threads):
    records = run_dp_method(
        snakemake.params.cfg, int(snakemake.wildcards.n_users), int(snakemake.wildcards.seed),
        snakemake.wildcards.method,
    )
with atomic_path(snakemake.output[0]) as tmp:
    pd.DataFrame(records).to_csv(tmp, index=False)
