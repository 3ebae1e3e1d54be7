"""Compiled conjugate-gradient solver of the ALS normal equations (``ALS(solver="cg")``).

Row ``u`` runs ``steps`` CG steps, warm-started at its current factors, on

    (base * Y^T Y + sum_i (c_ui - base) y_i y_i^T + reg_u I) x_u = sum_i c_ui (p_ui - shift_i) y_i

reading its cells straight from the CSR arrays, rows in parallel (Numba ``prange``). This is
the layout of ``implicit``'s CG solver (Takacs et al. 2011): the rows ``y_i`` a row touches stay in
cache, where a batched NumPy version has to gather them into a padded array at every step.
Each row is solved independently, so results do not depend on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

from ..fastmath import FASTMATH
from .threads import kernel_workers

#: Interleaved parts per thread (see ``_solve_rows``).
_PARTS_PER_THREAD = 8


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _apply(v, out, start, stop, indices, weight, other, gram, lam, zero):
    """``out = (gram + lam I + sum_n weight_n y_n y_n^T) v`` over the row's cells ``start:stop``."""
    k = v.shape[0]
    for f in range(k):
        acc = lam * v[f]
        for g in range(k):
            acc += gram[f, g] * v[g]
        out[f] = acc
    for n in range(start, stop):
        w = weight[n]
        if w != 0:
            i = indices[n]
            s = zero
            for f in range(k):
                s += other[i, f] * v[f]
            s *= w
            for f in range(k):
                out[f] += s * other[i, f]


@numba.njit(cache=True, fastmath=FASTMATH, inline="always")
def _dot(a, b, zero):
    s = zero
    for f in range(a.shape[0]):
        s += a[f] * b[f]
    return s


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def _solve_rows(out, rows, indptr, indices, conf, target, other, gram, reg, base, shift, steps, zero, n_parts, init,
                use_init):
    # ``zero`` (of the factors' dtype) types every accumulator: float32 factors, float32 arithmetic.
    # Part ``c`` takes rows c, c + n_parts, ...: interleaving balances skewed row costs (popular
    # items have many cells) across threads, and each part allocates its work vectors once.
    k = other.shape[1]
    weight = conf - base
    for c in numba.prange(n_parts):
        x, r, p, Ap = np.empty(k, other.dtype), np.empty(k, other.dtype), np.empty(k, other.dtype), \
            np.empty(k, other.dtype)
        for j in range(c, rows.shape[0], n_parts):
            u = rows[j]
            start, stop = indptr[u], indptr[u + 1]
            lam = reg[u]
            x[:] = out[u]
            has_target = False
            if use_init:  # the caller knows the residual A x - b of the row: no pass over its cells
                for f in range(k):
                    r[f] = -init[j, f]
                for n in range(start, stop):
                    if conf[n] * (target[n] - shift[indices[n]]) != 0:
                        has_target = True
                        break
                start = stop  # nothing left to accumulate below
            else:  # residual r = b - A x in one pass over the row's cells (as implicit does)
                for f in range(k):
                    acc = lam * x[f]
                    for g in range(k):
                        acc += gram[f, g] * x[g]
                    r[f] = -acc
            for n in range(start, stop):
                i = indices[n]
                cn = conf[n] * (target[n] - shift[i])
                has_target |= cn != 0
                s = zero
                for f in range(k):
                    s += other[i, f] * x[f]
                coef = cn - weight[n] * s
                for f in range(k):
                    r[f] += coef * other[i, f]
            if not has_target:  # e.g. no positive cell: b = 0 and the exact solution is 0
                out[u, :] = zero
                continue
            start, stop = indptr[u], indptr[u + 1]
            p[:] = r
            rs = _dot(r, r, zero)
            for _ in range(steps):
                if rs <= 1e-20:
                    break
                _apply(p, Ap, start, stop, indices, weight, other, gram, lam, zero)
                alpha = rs / _dot(p, Ap, zero)
                for f in range(k):
                    x[f] += alpha * p[f]
                    r[f] -= alpha * Ap[f]
                rs_new = _dot(r, r, zero)
                beta = rs_new / rs
                for f in range(k):
                    p[f] = r[f] + beta * p[f]
                rs = rs_new
            out[u, :] = x


def cg_solve_rows(
    out: np.ndarray,
    rows: np.ndarray,
    csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    other: np.ndarray,
    base: float,
    reg: np.ndarray,
    steps: int,
    target_shift: np.ndarray | None = None,
    workers: int = 1,
    gram: np.ndarray | None = None,
    residuals: np.ndarray | None = None,
) -> None:
    """Update ``out[rows]`` in place by ``steps`` CG steps each; ``csr`` = (indptr, indices, conf,
    target) of the rows' cells, ``other`` the fixed factors (C-contiguous, same dtype as ``out``);
    ``gram``: ``base * other^T other`` when the caller keeps it (else computed, one GEMM);
    ``residuals``: the rows' current residuals ``A x - b`` (one per entry of ``rows``) when the
    caller keeps them (else computed, one pass over the cells)."""
    indptr, indices, conf, target = csr
    dtype = other.dtype
    gram = np.ascontiguousarray(base * (other.T @ other) if gram is None else gram, dtype=dtype)
    shift = np.zeros(other.shape[0], dtype) if target_shift is None else np.asarray(target_shift, dtype)
    rows = np.asarray(rows, np.int64)
    with kernel_workers(workers) as threads:
        _solve_rows(out, rows, indptr, indices, conf.astype(dtype), target.astype(dtype),
                    np.ascontiguousarray(other), gram, reg.astype(dtype), dtype.type(base), shift, int(steps),
                    dtype.type(0), max(1, min(rows.size, threads * _PARTS_PER_THREAD)),
                    np.zeros((0, other.shape[1]), dtype) if residuals is None else
                    np.ascontiguousarray(residuals, dtype), residuals is not None)
