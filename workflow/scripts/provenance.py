"""Write results/provenance.json: resolved config, package versions, git commit, platform."""

import logging

from bilinrec.provenance import collect_provenance
from bilinrec.io import write_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
write_json(snakemake.output[0], collect_provenance(snakemake.params.config))
logging.info("wrote %s", snakemake.output[0])
