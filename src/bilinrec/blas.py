"""OpenBLAS's idle worker threads: asleep right after each call, not spinning.

After a multi-threaded call OpenBLAS's worker threads spin (``sched_yield`` in a loop) for about
2^28 cycles before they sleep. Between the BLAS calls and the Numba kernels of an AMHT-LRS fit
that spinning competes with the kernels' threads for the cores: on 2 cores it cost 8-9% of the
fit's CPU and most of its run-to-run spread (``docs/benchmarks-performance.md``). OpenBLAS reads
``OPENBLAS_THREAD_TIMEOUT`` (log2 of those cycles; 4 is its minimum) once, when it is loaded, so
the variable must be in a process's environment before numpy is imported: the workflow sets it
for every job (``workflow/rules/common.smk``), ``benchmarks/bench_lrs.py`` for its fits. A value
the user set is kept.
"""

from __future__ import annotations

from collections.abc import MutableMapping

#: The environment under which OpenBLAS's workers sleep at once after a call.
QUIET_BLAS = {"OPENBLAS_THREAD_TIMEOUT": "4"}


def quiet_blas(environ: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add ``QUIET_BLAS`` to ``environ`` (in place, returned) where it does not set those variables."""
    for name, value in QUIET_BLAS.items():
        environ.setdefault(name, value)
    return environ
