"""Render the Snakemake HTML report of this run, with the run's own resolved config."""

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from bilinrec.experiments.jobs import job

with job(snakemake):
    workdir = Path.cwd()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=workdir, delete=False) as fh:
        yaml.safe_dump(dict(snakemake.params.config), fh)
        config_file = Path(fh.name)
    try:
        cmd = [sys.executable, "-m", "snakemake", "--report", snakemake.output[0], "--nolock",
               "--snakefile", str(workdir / "Snakefile"), "--configfile", str(config_file)]
        logging.info("running %s", " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
        logging.info("%s\n%s", proc.stdout, proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(f"snakemake --report failed (exit {proc.returncode}); see {snakemake.log[0]}")
    finally:
        config_file.unlink()
