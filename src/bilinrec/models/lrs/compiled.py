"""Running the compiled (Numba) kernels of AMHT-LRS: whether to (:data:`ENABLED`; else the batched
NumPy reference path) and on how many threads (:func:`n_threads`, :func:`run_chunked`, :func:`map_static`)."""

from __future__ import annotations

import itertools
import os

#: Use the compiled kernels (set ``BILINREC_LRS_FUSED=0`` to run the batched NumPy reference path).
ENABLED = os.environ.get("BILINREC_LRS_FUSED", "1") != "0"


#: Users per work chunk handed to a thread (scratch buffers are allocated once per chunk).
CHUNK_USERS = 2048


_CONTROLLER = None


def n_threads() -> int:
    """Threads for the kernels: the current BLAS thread limit (so ``threadpool_limits``, which
    the workflow sets from Snakemake's ``threads``, bounds them too)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController().select(user_api="blas")
    limits = [lib.num_threads for lib in _CONTROLLER.lib_controllers]
    return max(1, min(limits) if limits else 1)


def run_chunked(kernel, n_items: int, *args, offset: int = 0, chunk: int | None = None) -> None:
    """``kernel(*args, lo, hi)`` over ``[offset, offset + n_items)`` in chunks of ``chunk`` items
    (default ``CHUNK_USERS``), on :func:`n_threads` threads (the kernels release the GIL and
    write disjoint outputs)."""
    chunk = chunk or CHUNK_USERS
    bounds = list(range(offset, offset + n_items, chunk)) + [offset + n_items]
    chunks = list(itertools.pairwise(bounds))
    threads = min(n_threads(), len(chunks))
    if threads <= 1:
        for lo, hi in chunks:
            kernel(*args, lo, hi)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(kernel, *args, lo, hi) for lo, hi in chunks]:
            future.result()



def map_static(part, n_items: int) -> list:
    """``[part(lo, hi)]`` over a fixed split of ``range(n_items)`` into :func:`n_threads`
    contiguous ranges, run in threads with BLAS limited to one thread meanwhile (results in
    range order, so sums over them are deterministic for a given thread count)."""
    threads = max(1, min(n_threads(), n_items))
    bounds = [n_items * p // threads for p in range(threads + 1)]
    if threads == 1:
        return [part(0, n_items)]
    from concurrent.futures import ThreadPoolExecutor

    with _CONTROLLER.limit(limits=1), ThreadPoolExecutor(threads) as pool:
        return list(pool.map(part, bounds[:-1], bounds[1:]))

