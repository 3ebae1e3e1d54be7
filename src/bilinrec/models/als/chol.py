"""Compiled exact (Cholesky) solvers of the ALS normal equations and of stacked SPD systems.

``cholesky_solve_rows`` (``ALS(solver="cholesky")``) handles one row at a time, reading its cells
straight from the CSR arrays (as the CG kernel of :mod:`.cg` does): the lower triangle of its
normal matrix is accumulated four cells at a time (rank-4 updates: more arithmetic than loads
and stores), then factorised in place by the left-looking (Crout) Cholesky, two columns by four
rows at a time (eight dot products sharing six operand streams), and solved by two triangular
solves. Nothing per row is gathered, padded or kept beyond one k x k buffer per thread, and
there is no Python call per row or batch: at ALS sizes (k ~ 100) this beats a batched GEMM
followed by a loop of LAPACK ``posv`` calls, whose blocking pays off only for large matrices
(see ``docs/benchmarks-performance.md``)."""

from __future__ import annotations

import numba
import numpy as np

from .threads import kernel_threads, kernel_workers

#: Interleaved parts per thread (as in :mod:`.cg`).
_PARTS_PER_THREAD = 8
#: Fast-math without ``nnan``/``ninf``: the positive-definiteness check must see NaNs.
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}


@numba.njit(cache=True, fastmath=_FAST, nogil=True, inline="always")
def _factor_solve(L, z):  # pragma: no cover - compiled
    # In place: the lower triangle of L becomes its Cholesky factor and z the solution of L L^T x = z;
    # False if L is not positive definite. Loops run from 0 over slices (no index wraparound), so
    # they vectorise.
    k = L.shape[0]
    j = 0
    while j < k:  # columns j and j + 1 together: their dot products share the loads of L[i, :j]
        lj = L[j, :j]
        s = L[j, j]
        for t in range(j):
            s -= lj[t] * lj[t]
        if not s > 0:
            return False
        d = np.sqrt(s)
        L[j, j] = d
        if j + 1 == k:
            break
        lk = L[j + 1, :j]
        s = L[j + 1, j]
        for t in range(j):
            s -= lk[t] * lj[t]
        e = s / d
        L[j + 1, j] = e
        s = L[j + 1, j + 1] - e * e
        for t in range(j):
            s -= lk[t] * lk[t]
        if not s > 0:
            return False
        d1 = np.sqrt(s)
        L[j + 1, j + 1] = d1
        i = j + 2
        while i + 4 <= k:  # L[i:i+4, j:j+2]
            l0, l1, l2, l3 = L[i, :j], L[i + 1, :j], L[i + 2, :j], L[i + 3, :j]
            s0, s1, s2, s3 = L[i, j], L[i + 1, j], L[i + 2, j], L[i + 3, j]
            r0, r1, r2, r3 = L[i, j + 1], L[i + 1, j + 1], L[i + 2, j + 1], L[i + 3, j + 1]
            for t in range(j):
                v, x = lj[t], lk[t]
                s0 -= l0[t] * v
                s1 -= l1[t] * v
                s2 -= l2[t] * v
                s3 -= l3[t] * v
                r0 -= l0[t] * x
                r1 -= l1[t] * x
                r2 -= l2[t] * x
                r3 -= l3[t] * x
            s0, s1, s2, s3 = s0 / d, s1 / d, s2 / d, s3 / d
            L[i, j], L[i + 1, j], L[i + 2, j], L[i + 3, j] = s0, s1, s2, s3
            L[i, j + 1], L[i + 1, j + 1] = (r0 - s0 * e) / d1, (r1 - s1 * e) / d1
            L[i + 2, j + 1], L[i + 3, j + 1] = (r2 - s2 * e) / d1, (r3 - s3 * e) / d1
            i += 4
        while i < k:
            li = L[i, :j]
            s0, r0 = L[i, j], L[i, j + 1]
            for t in range(j):
                s0 -= li[t] * lj[t]
                r0 -= li[t] * lk[t]
            s0 /= d
            L[i, j], L[i, j + 1] = s0, (r0 - s0 * e) / d1
            i += 1
        j += 2
    for i in range(k):  # L y = z, by rows of L
        li, zi = L[i, :i], z[:i]
        s = z[i]
        for t in range(i):
            s -= li[t] * zi[t]
        z[i] = s / L[i, i]
    for i in range(k - 1, -1, -1):  # L^T x = y, by columns of L^T (rows of L)
        c = z[i] / L[i, i]
        z[i] = c
        li, zi = L[i, :i], z[:i]
        for t in range(i):
            zi[t] -= li[t] * c
    return True


@numba.njit(cache=True, fastmath=_FAST, nogil=True)
def _solve_stack(A, b, x):  # pragma: no cover - compiled
    # x[r] solves A[r] x[r] = b[r] (lower triangles); returns the first r that is not positive
    # definite, or -1.
    k = A.shape[1]
    L = np.zeros((k, k), A.dtype)
    z = np.empty(k, A.dtype)
    for r in range(A.shape[0]):
        for i in range(k):
            src, dst = A[r, i, :i + 1], L[i, :i + 1]
            for t in range(i + 1):
                dst[t] = src[t]
        z[:] = b[r]
        if not _factor_solve(L, z):
            return r
        x[r, :] = z
    return -1


@numba.njit(parallel=True, cache=True, fastmath=_FAST)
def _solve_cells(out, rows, indptr, indices, conf, target, shift, other, gram, reg, base, n_parts,
                 bad):  # pragma: no cover - compiled
    # Row u = rows[j] solves (gram + reg_u I + sum_n (c_n - base) y_n y_n^T) x = sum_n c_n (p_n - shift_i) y_n
    # over its cells n (column i = indices[n], y_n = other[i]). Part c takes rows c, c + n_parts, ...
    # (balances skewed row costs); a row that is not positive definite is left as it is and the
    # first such index j of the part is written to bad[c].
    k = other.shape[1]
    for c in numba.prange(n_parts):
        L = np.zeros((k, k), other.dtype)
        z = np.empty(k, other.dtype)
        coef = np.empty(8, other.dtype)  # per-cell weights and targets in the factors' dtype
        for j in range(c, rows.shape[0], n_parts):
            u = rows[j]
            coef[0] = reg[u]
            for f in range(k):
                src, dst = gram[f, :f + 1], L[f, :f + 1]
                for t in range(f + 1):
                    dst[t] = src[t]
                L[f, f] += coef[0]
                z[f] = 0.0
            n, stop = indptr[u], indptr[u + 1]
            while n < stop:
                m = min(4, stop - n)  # rank-m update, m = 4 but at the row's end
                for q in range(4):
                    coef[q] = 0.0
                    coef[4 + q] = 0.0
                for q in range(m):
                    coef[q] = conf[n + q] - base
                    coef[4 + q] = conf[n + q] * (target[n + q] - shift[indices[n + q]])
                i0 = indices[n]  # cells beyond the row's end repeat its first cell with weight 0
                i1 = indices[n + 1] if m > 1 else i0
                i2 = indices[n + 2] if m > 2 else i0
                i3 = indices[n + 3] if m > 3 else i0
                y0, y1, y2, y3 = other[i0], other[i1], other[i2], other[i3]
                w0, w1, w2, w3 = coef[0], coef[1], coef[2], coef[3]
                p0, p1, p2, p3 = coef[4], coef[5], coef[6], coef[7]
                for f in range(k):
                    a0, a1, a2, a3 = w0 * y0[f], w1 * y1[f], w2 * y2[f], w3 * y3[f]
                    lf = L[f, :f + 1]
                    for t in range(f + 1):
                        lf[t] += a0 * y0[t] + a1 * y1[t] + a2 * y2[t] + a3 * y3[t]
                    z[f] += p0 * y0[f] + p1 * y1[f] + p2 * y2[f] + p3 * y3[f]
                n += m
            if _factor_solve(L, z):
                out[u, :] = z
            elif bad[c] < 0:
                bad[c] = j


def cholesky_solve_rows(
    out: np.ndarray,
    rows: np.ndarray,
    csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    other: np.ndarray,
    base: float,
    reg: np.ndarray,
    target_shift: np.ndarray | None = None,
    workers: int = 1,
) -> None:
    """Update ``out[rows]`` in place by solving each row's normal equations exactly.

    Row ``u`` solves ``(base * Y^T Y + sum_i (c_ui - base) y_i y_i^T + reg_u I) x_u = sum_i c_ui (p_ui - shift_i) y_i``
    over its stored cells ``i`` (``csr`` = (indptr, indices, conf, target)) with ``Y = other``
    (C-contiguous, same dtype as ``out``; arithmetic in that dtype). ``target_shift[i]``
    (optional) is subtracted from the targets of column ``i``. Rows run in ``workers`` threads;
    each row is solved independently, so results do not depend on their number.
    """
    indptr, indices, conf, target = csr
    dtype = other.dtype
    other = np.ascontiguousarray(other)
    gram = np.ascontiguousarray(base * (other.T @ other), dtype=dtype)
    shift = np.zeros(other.shape[0]) if target_shift is None else np.asarray(target_shift, np.float64)
    rows = np.asarray(rows, np.int64)
    n_parts = max(1, min(rows.size, kernel_threads(workers) * _PARTS_PER_THREAD))
    bad = np.full(n_parts, -1, np.int64)
    with kernel_workers(workers):
        _solve_cells(out, rows, indptr, indices, conf, target, shift, other, gram, reg.astype(dtype),
                     float(base), n_parts, bad)
    if (bad >= 0).any():
        raise np.linalg.LinAlgError(
            f"the normal matrix of row {rows[bad[bad >= 0].min()]} is not positive definite; "
            "increase regularization"
        )


def spd_solve(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """Solutions ``x[r]`` of ``A[r] x[r] = b[r]`` (lower triangles are read, ``A`` is not written)
    and the index of the first system that is not positive definite (-1: none)."""
    x = np.empty(b.shape, A.dtype)
    bad = _solve_stack(np.ascontiguousarray(A), np.ascontiguousarray(b, A.dtype), x)
    return x, int(bad)
