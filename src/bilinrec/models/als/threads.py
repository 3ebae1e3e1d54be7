"""The thread count of the compiled (Numba) kernels: at most what Numba was started with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba


def kernel_threads(workers: int) -> int:
    """The compiled kernels' thread count for ``workers`` (at least 1, at most Numba's)."""
    return max(1, min(int(workers), numba.config.NUMBA_NUM_THREADS))


@contextmanager
def kernel_workers(workers: int) -> Iterator[int]:
    """Run compiled kernels over ``kernel_threads(workers)`` threads (restored afterwards)."""
    previous = numba.get_num_threads()
    threads = kernel_threads(workers)
    numba.set_num_threads(threads)
    try:
        yield threads
    finally:
        numba.set_num_threads(previous)
