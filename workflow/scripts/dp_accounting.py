"""Rule dp_accounting: the calibrated noise multiplier and achieved epsilon of every private
(method, epsilon) of the grid, computed once for all runs."""

import logging

from bilinrec.io import write_json
from bilinrec.experiments.dp.steps import precompute_accounting

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
cache = precompute_accounting(snakemake.params.cfg)
logging.info("%d noise multipliers, %d epsilons", len(cache["noise_multipliers"]), len(cache["epsilons"]))
write_json(snakemake.output[0], cache)
