"""Numba kernels over the per-user segments of the stacked samples: segment sums and the shared
statistics streamed over users (bounded memory: no per-user Gram cache, no copy of ``X``).

Each kernel has a NumPy equivalent (:mod:`.data`, :mod:`.statistics`) that runs with
``BILINREC_LRS_FUSED=0`` (:data:`.compiled.ENABLED`); results agree to rounding, and
:func:`segment_sums` bitwise.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..fastmath import FASTMATH
from . import compiled


@njit(cache=True)
def _segment_sums_kernel(values, indptr, out):
    for i in range(out.shape[0]):
        acc = 0.0
        for j in range(indptr[i], indptr[i + 1]):
            acc += values[j]
        out[i] = acc


def segment_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per-segment sums of float64 ``values`` over ``[indptr[i], indptr[i+1])``, each added in row
    order from 0.0 (no fastmath): bitwise ``np.bincount(row_segment, weights=values)``, without
    the (N,) array of row segments."""
    out = np.empty(len(indptr) - 1)
    _segment_sums_kernel(values, np.ascontiguousarray(indptr, dtype=np.int64), out)
    return out


#: Users per block of the streamed per-user Gram matrices (block of (n, d, d) floats).
_GRAM_BLOCK_ELEMENTS = 8_000_000
#: Rows per block of the streamed moment (a block of ``Z`` stays in cache: about 40% less CPU
#: time than 65,536-row blocks at d = 100).
_ROW_BLOCK = 1_024


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _packed_grams_kernel(X, indptr, first, out, user_lo, user_hi):
    """``out[i - first]`` = upper triangle (row-major, packed) of ``X_i^T X_i`` for users
    ``[user_lo, user_hi)``: rank-one updates over the user's rows, each row read once."""
    d = X.shape[1]
    for i in range(user_lo, user_hi):
        o = out[i - first]
        for q in range(o.shape[0]):
            o[q] = 0.0
        j = indptr[i]
        end = indptr[i + 1]
        # four rows per sweep over the packed accumulator (a quarter of its loads and stores)
        while j + 4 <= end:
            pos = 0
            for a in range(d):
                x0, x1, x2, x3 = X[j, a], X[j + 1, a], X[j + 2, a], X[j + 3, a]
                for b in range(a, d):
                    o[pos + b - a] += x0 * X[j, b] + x1 * X[j + 1, b] + x2 * X[j + 2, b] + x3 * X[j + 3, b]
                pos += d - a
            j += 4
        while j < end:
            pos = 0
            for a in range(d):
                xa = X[j, a]
                for b in range(a, d):
                    o[pos + b - a] += xa * X[j, b]
                pos += d - a
            j += 1


def kron_gram(data, W: np.ndarray, coef: np.ndarray | None) -> np.ndarray:
    """Dense ``sum_i coef_i (w_i w_i^T) kron (X_i^T X_i)``, shape ``(d r, d r)``, streamed over
    blocks of users: per block the packed upper triangles of the Grams ``X_i^T X_i`` (a Numba
    kernel on all threads, ``m d (d + 1) / 2`` FMA per user) are reduced by one GEMM with the
    ``r (r + 1) / 2`` distinct products ``coef_i w_ia w_ib`` (both the ``r x r`` block
    structure and every ``d x d`` block are symmetric). Memory: one block of packed Grams
    (about ``_GRAM_BLOCK_ELEMENTS`` floats), never all users' Grams; ``X`` is read in place."""
    d, r = data.dim, W.shape[1]
    ia, ib = np.triu_indices(r)
    coef = None if coef is None else np.asarray(coef)
    n_packed = d * (d + 1) // 2
    X = data.X if data.X.flags.c_contiguous else np.ascontiguousarray(data.X)
    indptr = np.ascontiguousarray(data.indptr, dtype=np.int64)
    threads = max(1, compiled.n_threads())
    step = max(1, _GRAM_BLOCK_ELEMENTS // (n_packed * threads))
    starts = list(range(0, data.n_users, step))

    def part(lo: int, hi: int) -> np.ndarray:
        acc = np.zeros((len(ia), n_packed))
        buffer = np.empty((min(step, max(data.n_users, 1)), n_packed))
        for start in starts[lo:hi]:
            stop = min(data.n_users, start + step)
            G = buffer[: stop - start]
            _packed_grams_kernel(X, indptr, start, G, start, stop)
            # the block's rows of coef_i w_ia w_ib (the same values as for all users at once)
            pair = W[start:stop, ia] * W[start:stop, ib]
            if coef is not None:
                pair = pair * coef[start:stop, None]
            acc += pair.T @ G
        return acc

    acc = sum(compiled.map_static(part, len(starts)), np.zeros((len(ia), n_packed)))
    iu = np.triu_indices(d)
    blocks = np.zeros((len(ia), d, d))
    blocks[:, iu[0], iu[1]] = acc
    blocks[:, iu[1], iu[0]] = acc
    full = np.zeros((r, r, d, d))
    full[ia, ib] = blocks
    full[ib, ia] = blocks
    return full.transpose(0, 2, 1, 3).reshape(d * r, d * r)


def weighted_row_gram(X: np.ndarray, scale: np.ndarray, weights: np.ndarray | None,
                      block_dtype=np.float64) -> np.ndarray:
    """``Z^T diag(weights) Z`` with ``Z = X * scale[:, None]`` and non-negative ``weights`` (clip
    factors, sample indicators), streamed over row blocks as ``Z_w^T Z_w`` with
    ``Z_w = X * (scale * sqrt(weights))[:, None]``: a symmetric product, which BLAS forms at half
    the cost of a general one (results differ from ``Z^T (Z * weights)`` by rounding only). Threads
    take contiguous ranges of blocks with single-threaded BLAS each (no BLAS thread
    synchronisation, which stalls badly on a shared machine); partial sums are added in a fixed order.
    ``block_dtype=np.float32`` forms each block's product in single precision (about twice the
    rate) and adds it to the float64 sum."""
    d = X.shape[1]
    starts = list(range(0, X.shape[0], _ROW_BLOCK))

    def part(lo: int, hi: int) -> np.ndarray:
        out = np.zeros((d, d))
        Z = np.empty((_ROW_BLOCK, d), dtype=block_dtype)
        for start in starts[lo:hi]:
            block = slice(start, start + _ROW_BLOCK)
            # the row scale per block (the same values as for all rows at once): no (N,) temporaries
            row_scale = scale[block] if weights is None else scale[block] * np.sqrt(weights[block])
            Zb = Z[: len(row_scale)]
            np.multiply(X[block], row_scale[:, None], out=Zb, casting="same_kind")
            out += Zb.T @ Zb
        return out

    return sum(compiled.map_static(part, len(starts)), np.zeros((d, d)))



@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _gram_norms_kernel(X, indptr, scale, norms, user_lo, user_hi):
    """``norms[i] = |Z_i^T Z_i|_F`` with ``Z = X * scale[:, None]`` for users ``[user_lo, user_hi)``,
    from the smaller side: the row products ``s_j s_k <x_j, x_k>`` when ``m_i < d``, else the
    ``d x d`` Gram (its upper triangle)."""
    d = X.shape[1]
    G = np.empty((d, d))
    for i in range(user_lo, user_hi):
        lo = indptr[i]
        m = indptr[i + 1] - lo
        total = 0.0
        if m < d:
            for j in range(m):
                for k in range(j + 1):
                    acc = 0.0
                    for q in range(d):
                        acc += X[lo + j, q] * X[lo + k, q]
                    value = scale[lo + j] * scale[lo + k] * acc
                    total += value * value if k == j else 2.0 * value * value
        else:
            for a in range(d):
                for b in range(a, d):
                    G[a, b] = 0.0
            for j in range(lo, lo + m):
                s2 = scale[j] * scale[j]
                for a in range(d):
                    xa = s2 * X[j, a]
                    for b in range(a, d):
                        G[a, b] += xa * X[j, b]
            for a in range(d):
                total += G[a, a] * G[a, a]
                for b in range(a + 1, d):
                    total += 2.0 * G[a, b] * G[a, b]
        norms[i] = np.sqrt(total)


def segment_gram_norms_scaled(data, scale: np.ndarray | None = None) -> np.ndarray:
    """Frobenius norms of ``Z_i^T Z_i`` with ``Z = X * scale[:, None]`` (``scale=None``: ``X``),
    from the smaller side ``Z_i Z_i^T`` when ``m_i < d``; one threaded pass over ``X`` (no copies)."""
    norms = np.empty(data.n_users)
    scale = np.ones(data.n_samples) if scale is None else np.ascontiguousarray(scale, dtype=np.float64)
    X = data.X if data.X.flags.c_contiguous else np.ascontiguousarray(data.X)
    compiled.run_chunked(_gram_norms_kernel, data.n_users, X, np.ascontiguousarray(data.indptr, dtype=np.int64),
                         scale, norms)
    return norms


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _kron_matvec_kernel(X, indptr, V, W, Wc, chunk, partials, user_lo, user_hi):
    """``partials[user_lo // chunk] = sum_i q_i Wc_i^T`` with ``q_i = X_i^T (X_i (V w_i))`` for users
    ``[user_lo, user_hi)``: one read of each row, no per-user (t, d) temporaries."""
    d, r = V.shape
    out = partials[user_lo // chunk]
    p = np.empty(d)
    q = np.empty(d)
    for a in range(d):
        for b in range(r):
            out[a, b] = 0.0
    for i in range(user_lo, user_hi):
        for a in range(d):
            acc = 0.0
            for b in range(r):
                acc += V[a, b] * W[i, b]
            p[a] = acc
            q[a] = 0.0
        for j in range(indptr[i], indptr[i + 1]):
            acc = 0.0
            for a in range(d):
                acc += X[j, a] * p[a]
            for a in range(d):
                q[a] += X[j, a] * acc
        for a in range(d):
            for b in range(r):
                out[a, b] += q[a] * Wc[i, b]


def kron_matvec(data, W: np.ndarray, coef: np.ndarray | None, V: np.ndarray) -> np.ndarray:
    """``sum_i coef_i X_i^T X_i V w_i w_i^T`` (the product of the U-step matrix with ``vec(V)``,
    ``V`` of shape (d, r)) as a (d, r) matrix: per user ``q_i = X_i^T (X_i (V w_i))`` in one pass
    over ``X`` (``4 N d`` FLOP instead of ``4 N d r``), accumulated into ``q_i (coef_i w_i)^T`` per
    chunk of users; the chunks' partial sums are added in a fixed order."""
    n_chunks = max(1, -(-data.n_users // compiled.CHUNK_USERS))
    partials = np.zeros((n_chunks, data.dim, W.shape[1]))
    X = data.X if data.X.flags.c_contiguous else np.ascontiguousarray(data.X)
    W = np.ascontiguousarray(W, dtype=np.float64)
    Wc = W if coef is None else np.ascontiguousarray(W * np.asarray(coef)[:, None])
    compiled.run_chunked(_kron_matvec_kernel, data.n_users, X, np.ascontiguousarray(data.indptr, dtype=np.int64),
                         np.ascontiguousarray(V, dtype=np.float64), W, Wc, compiled.CHUNK_USERS, partials)
    return partials.sum(axis=0)


@njit(cache=True)
def _sparse_dot(X, j, S, V, active, i):
    """``<x_j, b_i>`` from the support form of ``b_i``, summed in slot order (no fastmath: the
    same value wherever it is formed)."""
    acc = 0.0
    for s in range(S.shape[1]):
        acc += X[j, S[i, s]] * (V[i, s] if active[i, s] else 0.0)
    return acc


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def _segment_xz_kernel(X, indptr, y, S, V, active, res, Wc, chunk, partials, partials_res, norms,
                       user_lo, user_hi):
    """Per user ``xz_i = X_i^T z_i`` (rows in order) with ``z_ij = y_ij - <x_ij, b_i>`` formed from
    the row as it is read (``S`` with no columns: ``z = y``), for users ``[user_lo, user_hi)``; kept
    only as its norm (``norms[i]``, when ``norms`` is not empty) or as ``partials[user_lo // chunk]
    += xz_i Wc_i^T`` (when ``partials`` is not empty): no (t, d) array, no (N,) ``z``. When
    ``partials_res`` is not empty, the same pass adds ``(X_i^T res_i) Wc_i^T`` into it."""
    d = X.shape[1]
    xz = np.empty(d)
    xr = np.empty(d)
    with_product = partials.shape[0] > 0
    with_res = partials_res.shape[0] > 0
    if with_product:
        out = partials[user_lo // chunk]
        out_res = partials_res[user_lo // chunk] if with_res else out
        for a in range(d):
            for b in range(Wc.shape[1]):
                out[a, b] = 0.0
                out_res[a, b] = 0.0
    for i in range(user_lo, user_hi):
        for a in range(d):
            xz[a] = 0.0
            xr[a] = 0.0
        for j in range(indptr[i], indptr[i + 1]):
            weight = y[j] - _sparse_dot(X, j, S, V, active, i)
            if with_res:
                rj = res[j]
                for a in range(d):
                    xz[a] += X[j, a] * weight
                    xr[a] += X[j, a] * rj
            else:
                for a in range(d):
                    xz[a] += X[j, a] * weight
        if norms.shape[0] > 0:
            acc = 0.0
            for a in range(d):
                acc += xz[a] * xz[a]
            norms[i] = np.sqrt(acc)
        if with_product:
            for a in range(d):
                for b in range(Wc.shape[1]):
                    out[a, b] += xz[a] * Wc[i, b]
            if with_res:
                for a in range(d):
                    for b in range(Wc.shape[1]):
                        out_res[a, b] += xr[a] * Wc[i, b]


def _segment_xz(data, z: np.ndarray, Wc: np.ndarray | None, heads=None, residual=None) -> tuple:
    X = data.X if data.X.flags.c_contiguous else np.ascontiguousarray(data.X)
    n_chunks = max(1, -(-data.n_users // compiled.CHUNK_USERS))
    r = 0 if Wc is None else Wc.shape[1]
    partials = np.zeros((n_chunks if Wc is not None else 0, data.dim, r))
    partials_res = np.zeros((n_chunks if Wc is not None and residual is not None else 0, data.dim, r))
    norms = np.empty(data.n_users if Wc is None else 0)
    Wc = np.zeros((0, 0)) if Wc is None else np.ascontiguousarray(Wc, dtype=np.float64)
    if heads is None:  # z given: no sparse part to subtract
        t = data.n_users
        S, V, active = np.zeros((t, 0), np.int64), np.zeros((t, 0)), np.zeros((t, 0), bool)
    else:
        S = np.ascontiguousarray(heads.S, dtype=np.int64)
        V = np.ascontiguousarray(heads.V, dtype=np.float64)
        active = np.ascontiguousarray(heads.active, dtype=np.bool_)
    res = np.zeros(0) if residual is None else np.ascontiguousarray(residual, dtype=np.float64)
    compiled.run_chunked(_segment_xz_kernel, data.n_users, X, np.ascontiguousarray(data.indptr, dtype=np.int64),
                         np.ascontiguousarray(z, dtype=np.float64), S, V, active, res, Wc, compiled.CHUNK_USERS,
                         partials, partials_res, norms)
    return norms, partials.sum(axis=0), partials_res.sum(axis=0)


def segment_xz_norms(data, z: np.ndarray, heads=None) -> np.ndarray:
    """``|X_i^T z_i|`` per user, (t,): one threaded pass over ``X``, no (t, d) array. With ``heads``,
    ``z`` is ``y`` and ``z_ij = y_ij - <x_ij, b_i>`` is formed in the pass."""
    return _segment_xz(data, z, None, heads)[0]


def segment_xz_product(data, z: np.ndarray, Wc: np.ndarray, heads=None, residual=None):
    """``sum_i (X_i^T z_i) Wc_i^T``, (d, r): one threaded pass over ``X``, per-chunk partial sums
    added in a fixed order, no (t, d) array. With ``heads``, as in :func:`segment_xz_norms`. With
    ``residual`` (N,), returns also ``sum_i (X_i^T residual_i) Wc_i^T`` from the same pass."""
    _, product, product_res = _segment_xz(data, z, Wc, heads, residual)
    return product if residual is None else (product, product_res)
