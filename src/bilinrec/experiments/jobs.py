"""What every workflow script does around its one call: log to the rule's log file, limit threads."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator


@contextlib.contextmanager
def job(snakemake: Any) -> Iterator[None]:
    """Log (and warnings) to ``snakemake.log[0]``; BLAS/OpenMP threads limited to the rule's ``threads``."""
    from threadpoolctl import threadpool_limits

    logging.basicConfig(filename=snakemake.log[0], level=logging.INFO,
                        format="%(asctime)s %(name)s %(message)s", force=True)
    logging.captureWarnings(True)
    with threadpool_limits(limits=max(1, int(getattr(snakemake, "threads", 1)))):
        yield
