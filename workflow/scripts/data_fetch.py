"""Rule fetch_dataset: find or download one dataset into resources/<dataset>/ and verify it."""

import logging
from pathlib import Path

from bilinrec.data.steps import fetch_dataset

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
fetch_dataset(
    snakemake.wildcards.dataset,
    snakemake.params.data,
    resources=Path(snakemake.output[0]).parent.parent,  # resources/<dataset>/source.json
    local_dir=snakemake.params.local_dir,
)
