"""Rule dp_accounting: the calibrated noise multiplier and achieved epsilon of every private
(method, epsilon) of the grid, computed once for all runs."""

import logging

from bilinrec.experiments.dp.steps import precompute_accounting
from bilinrec.experiments.jobs import job
from bilinrec.io import write_json

with job(snakemake):
    cache = precompute_accounting(snakemake.params.cfg)
    logging.info("%d noise multipliers, %d epsilons", len(cache["noise_multipliers"]), len(cache["epsilons"]))
    write_json(snakemake.output[0], cache)
