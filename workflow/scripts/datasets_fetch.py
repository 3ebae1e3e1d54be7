"""Rule datasets_fetch: find or download one dataset into resources/<dataset>/ and verify it."""

from pathlib import Path

from bilinrec.data.acquire import resolve_local_dir
from bilinrec.experiments.datasets.steps import fetch_step
from bilinrec.experiments.jobs import job

with job(snakemake):
    # The local data directory is read here (env BILINREC_DATA_DIR wins over data.local_dir), not passed as a
    # param, so that changing it does not re-run a fetch that is already verified.
    fetch_step(
        snakemake.wildcards.dataset,
        snakemake.params.data,
        resources=Path(snakemake.output[0]).parent.parent,  # resources/<dataset>/source.json
        local_dir=resolve_local_dir(snakemake.config["data"].get("local_dir")),
    )
