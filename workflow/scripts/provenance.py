"""Write results/provenance.json: resolved config, package versions, git commit, platform."""

import logging

from bilinrec.experiments.jobs import job
from bilinrec.io import write_json
from bilinrec.provenance import collect_provenance

with job(snakemake):
    write_json(snakemake.output[0], collect_provenance(snakemake.params.config))
    logging.info("wrote %s", snakemake.output[0])
