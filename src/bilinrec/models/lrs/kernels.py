"""Numba kernels of AMHT-LRS: the whole per-user step fused into one pass per user.

The batched NumPy per-user step (:func:`bilinrec.models.lrs.user_step.fit_user_parameters`)
spends its time moving many small temporaries (gathered features, stacked Grams, copies of the
pending users' rows) through memory. Here every user runs its hard-thresholding iterations to
its own fixed point in registers/L1: its rows of ``X`` are read in place (no copies), ``X_i U``
and its Gram are formed once per user (no (N, r) array), its
``(r + 2k)``-column Gram is formed and solved by Cholesky in a small scratch buffer (sums of
columns shared with the previous system are copied, not formed again), and users are spread
over threads. The arithmetic is the same as the NumPy path (same regularisation,
same candidate and selection rules); results agree to floating-point rounding (the order of
the sums and Cholesky instead of LU differ).

Equivalence of the iteration count: the batched loop stops at the first iteration in which no
pending user changes its support, i.e. at the largest per-user "first unchanged iteration";
users run independently, so every user's fit is the same whether batched or not.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
from numba import njit

from ..fastmath import FASTMATH

#: Use the fused kernels (set ``BILINREC_LRS_FUSED=0`` to run the batched NumPy reference path).
ENABLED = os.environ.get("BILINREC_LRS_FUSED", "1") != "0"


#: Users per work chunk handed to a thread (scratch buffers are allocated once per chunk).
_CHUNK_USERS = 2048


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
    (default ``_CHUNK_USERS``), on :func:`n_threads` threads (the kernels release the GIL and
    write disjoint outputs)."""
    chunk = chunk or _CHUNK_USERS
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


@njit(cache=True, fastmath=FASTMATH)
def _user_projection(X, Ut, z, lo, m, Ft, GU, rhsU):
    """One user's ``X_i U`` into ``Ft[:r, :m]`` (transposed), with its Gram in the lower triangle of
    ``GU[:r, :r]`` and ``(X_i U)^T z_i`` in ``rhsU[:r]``: fixed while the user's support changes, so
    every refit of the user reuses them."""
    r, d = Ut.shape
    for j in range(0, m - 1, 2):  # two rows per pass: two independent sums share the loads of U
        for a in range(r):
            acc0 = 0.0
            acc1 = 0.0
            for q in range(d):
                u = Ut[a, q]
                acc0 += X[lo + j, q] * u
                acc1 += X[lo + j + 1, q] * u
            Ft[a, j] = acc0
            Ft[a, j + 1] = acc1
    if m % 2:
        for a in range(r):
            acc = 0.0
            for q in range(d):
                acc += X[lo + m - 1, q] * Ut[a, q]
            Ft[a, m - 1] = acc
    for a in range(r):
        for b in range(a + 1):
            acc = 0.0
            for j in range(m):
                acc += Ft[a, j] * Ft[b, j]
            GU[a, b] = acc
        acc = 0.0
        for j in range(m):
            acc += Ft[a, j] * z[lo + j]
        rhsU[a] = acc


@njit(cache=True, fastmath=FASTMATH)
def _system(X, z, lo, m, S, act, src, p_extra, r, Ft_src, Gr_src, b_src, Ft, Gr, b):
    """Normal equations of one user on ``[X_i U, X_i[:, S] * act]`` before the ridge: columns
    (transposed) in ``Ft[:r + p_extra]``, Gram in ``Gr`` and right-hand side in ``b``, whose
    ``X_i U`` parts (``Ft[:r]``, ``Gr[:r, :r]``, ``b[:r]``) already hold :func:`_user_projection`.
    An active slot ``s`` with ``src[s] >= 0`` is column ``r + src[s]`` of the system in ``Ft_src,
    Gr_src, b_src``: its features and its sums with other such columns are copied (the same sums),
    only the rest is gathered from ``X`` and summed. Inactive slots are zero columns."""
    p = r + p_extra
    for s in range(p_extra):
        a = r + s
        if not act[s]:
            for j in range(m):
                Ft[a, j] = 0.0
        elif src[s] >= 0:
            for j in range(m):
                Ft[a, j] = Ft_src[r + src[s], j]
        else:
            for j in range(m):
                Ft[a, j] = X[lo + j, S[s]]
    for a in range(r, p):
        sa = a - r
        for c in range(a + 1):
            if not act[sa] or (c >= r and not act[c - r]):
                acc = 0.0
            elif src[sa] >= 0 and (c < r or src[c - r] >= 0):
                acc = Gr_src[r + src[sa], c if c < r else r + src[c - r]]
            else:
                acc = 0.0
                for j in range(m):
                    acc += Ft[a, j] * Ft[c, j]
            Gr[a, c] = acc
            Gr[c, a] = acc
        if not act[sa]:
            b[a] = 0.0
        elif src[sa] >= 0:
            b[a] = b_src[r + src[sa]]
        else:
            acc = 0.0
            for j in range(m):
                acc += Ft[a, j] * z[lo + j]
            b[a] = acc


@njit(cache=True, fastmath=FASTMATH)
def _solve(Gr, b, p, r, act, ridge, G, coef):
    """Ridge least squares from the normal equations ``Gr, b`` of :func:`_system` (``p`` columns,
    slots ``act`` after the first ``r``): relative ridge on the diagonal, unit diagonal for the
    inactive slots, Cholesky in ``G``; the solution in ``coef[:p]``."""
    trace = 0.0
    for a in range(p):
        for c in range(a + 1):
            G[a, c] = Gr[a, c]
        trace += Gr[a, a]
        coef[a] = b[a]
    shift = ridge * (trace / p) + 1e-12
    for a in range(p):
        G[a, a] += shift
    for s in range(p - r):
        if not act[s]:
            G[r + s, r + s] += 1.0
    # Cholesky G = L L^T in the lower triangle, then two triangular solves in coef
    for j in range(p):
        acc = G[j, j]
        for q in range(j):
            acc -= G[j, q] * G[j, q]
        if acc <= 0.0:
            acc = 1e-300
        dj = np.sqrt(acc)
        G[j, j] = dj
        for i in range(j + 1, p):
            acc = G[i, j]
            for q in range(j):
                acc -= G[i, q] * G[j, q]
            G[i, j] = acc / dj
    for i in range(p):
        acc = coef[i]
        for q in range(i):
            acc -= G[i, q] * coef[q]
        coef[i] = acc / G[i, i]
    for i in range(p - 1, -1, -1):
        acc = coef[i]
        for q in range(i + 1, p):
            acc -= G[q, i] * coef[q]
        coef[i] = acc / G[i, i]


@njit(cache=True)
def _sources(S_new, act_new, k, S_src, act_src, n_src, src):
    """``src[s]``: a slot of ``S_src[:n_src]`` (active in ``act_src``) holding ``S_new[s]``, for the
    ``k`` active new slots (``-1`` if none: the column is gathered from ``X``)."""
    for s in range(k):
        src[s] = -1
        if act_new[s]:
            for u in range(n_src):
                if act_src[u] and S_src[u] == S_new[s]:
                    src[s] = u
                    break


@njit(cache=True, fastmath=FASTMATH)
def _residual(z, lo, m, Ft, coef, p, residual):
    for j in range(m):
        acc = 0.0
        for a in range(p):
            acc += Ft[a, j] * coef[a]
        residual[lo + j] = z[lo + j] - acc


@njit(cache=True)
def _sort_small(out, k):
    """Sort ``out[:k]`` ascending in place by insertion (``k`` is small; ``ndarray.sort`` allocates
    a work list per call)."""
    for s in range(1, k):
        v = out[s]
        pos = s
        while pos > 0 and out[pos - 1] > v:
            out[pos] = out[pos - 1]
            pos -= 1
        out[pos] = v


@njit(cache=True, fastmath=FASTMATH)
def _top_k(values, k, out, taken):
    """Indices of the ``k`` largest ``values`` (ties: lowest index first), sorted ascending.

    One pass keeping the best ``k`` so far in ``out`` (mostly a single comparison per entry);
    values with a NaN take ``k`` scans (the NaN-order of the original selection)."""
    n = values.shape[0]
    if k == 0:
        return
    filled = 0
    for i in range(n):
        v = values[i]
        if v != v:
            filled = -1
            break
        if filled == k and not v > values[out[k - 1]]:
            continue
        pos = filled if filled < k else k - 1
        while pos > 0 and v > values[out[pos - 1]]:  # ties keep the earlier (lower) index first
            out[pos] = out[pos - 1]
            pos -= 1
        out[pos] = i
        if filled < k:
            filled += 1
    if filled == k:
        _sort_small(out, k)
        return
    for i in range(n):
        taken[i] = False
    for s in range(k):
        best = -1
        best_val = 0.0
        for i in range(n):
            if not taken[i] and (best < 0 or values[i] > best_val):
                best = i
                best_val = values[i]
        taken[best] = True
        out[s] = best
    _sort_small(out, k)


@njit(cache=True, fastmath=FASTMATH)
def _top_k_of(mag, idx, n, k, out, taken):
    """:func:`_top_k` of ``mag`` over ``d`` entries that are zero outside the ``n`` distinct indices
    ``idx``: looks only at those (the subspace candidate has ``2 k`` non-zeros, not ``d``) when
    ``k`` of them are positive, so that no zero can be chosen; else the full scan. Same result."""
    positive = 0
    for s in range(n):
        if mag[idx[s]] > 0.0:
            positive += 1
    if positive < k:
        _top_k(mag, k, out, taken)
        return
    for s in range(n):
        taken[s] = False
    for s in range(k):
        best = -1
        for u in range(n):
            if not taken[u] and (best < 0 or mag[idx[u]] > mag[idx[best]]
                                 or (mag[idx[u]] == mag[idx[best]] and idx[u] < idx[best])):
                best = u
        taken[best] = True
        out[s] = idx[best]
    _sort_small(out, k)


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def user_step_kernel(X, z, Ut, indptr, W, S, V, active, eta, inner_iters, use_threshold, threshold,
                     subspace, ridge, residual, first_unchanged, user_lo, user_hi):
    """Per-user hard-thresholding pursuit, in place on ``W, S, V, active, residual``.

    ``first_unchanged[i]`` is the iteration at which user ``i``'s support stopped changing
    (``inner_iters`` if it never did; 0 when ``k == 0``).
    """
    d = X.shape[1]
    r = Ut.shape[0]
    k = S.shape[1]
    max_m = 0
    for i in range(user_lo, user_hi):
        max_m = max(max_m, indptr[i + 1] - indptr[i])
    if True:  # one chunk of users [user_lo, user_hi); threads run chunks (nogil)
        p_max = r + 2 * k
        # two systems (features, Gram, rhs): the current support's and a merged or new one built
        # from it, so that a refit copies the sums of the columns it shares with the other
        Ft = np.empty((2, p_max, max(max_m, 1)))
        Gr = np.empty((2, p_max, p_max))
        rhs = np.empty((2, p_max))
        G = np.empty((p_max, p_max))
        coef = np.empty(p_max)
        grad = np.empty(d)
        cand = np.empty(d)
        mag = np.empty(d)
        taken = np.empty(d, dtype=np.bool_)
        S_m = np.empty(2 * k, dtype=S.dtype)
        act_m = np.empty(2 * k, dtype=np.bool_)
        idx = np.empty(2 * k, dtype=S.dtype)
        src = np.empty(2 * k, dtype=np.int64)
        added = np.empty(max(k, 1), dtype=S.dtype)
        S_new = np.empty(max(d, 1), dtype=S.dtype)
        act_new = np.empty(max(k, 1), dtype=np.bool_)
        for i in range(user_lo, user_hi):
            lo = indptr[i]
            m = indptr[i + 1] - lo
            cur = 0  # the system of the current support
            _user_projection(X, Ut, z, lo, m, Ft[0], Gr[0], rhs[0])
            for a in range(r):
                for j in range(m):
                    Ft[1, a, j] = Ft[0, a, j]
                for c in range(a + 1):
                    Gr[1, a, c] = Gr[0, a, c]
                rhs[1, a] = rhs[0, a]
            for s in range(k):
                src[s] = -1
            _system(X, z, lo, m, S[i], active[i], src, k, r, Ft[1], Gr[1], rhs[1], Ft[0], Gr[0], rhs[0])
            _solve(Gr[0], rhs[0], r + k, r, active[i], ridge, G, coef)
            _residual(z, lo, m, Ft[0], coef, r + k, residual)
            for a in range(r):
                W[i, a] = coef[a]
            for s in range(k):
                V[i, s] = coef[r + s] if active[i, s] else 0.0
            if k == 0:
                first_unchanged[i] = 0
                continue
            first_unchanged[i] = inner_iters
            for it in range(1, inner_iters + 1):
                for q in range(d):
                    grad[q] = 0.0
                for j in range(m):
                    rj = residual[lo + j]
                    for q in range(d):
                        grad[q] += X[lo + j, q] * rj
                merged = subspace and m >= r + 2 * k
                if merged:
                    # refit on the support merged with the k largest off-support gradient entries
                    for q in range(d):
                        mag[q] = abs(grad[q])
                    for s in range(k):
                        if active[i, s]:
                            mag[S[i, s]] = -1.0
                    _top_k(mag, k, added, taken)
                    for s in range(k):
                        S_m[s] = S[i, s]
                        act_m[s] = active[i, s]
                        src[s] = s
                        S_m[k + s] = added[s]
                        act_m[k + s] = True
                        src[k + s] = -1
                    _system(X, z, lo, m, S_m, act_m, src, 2 * k, r, Ft[cur], Gr[cur], rhs[cur],
                            Ft[1 - cur], Gr[1 - cur], rhs[1 - cur])
                    _solve(Gr[1 - cur], rhs[1 - cur], r + 2 * k, r, act_m, ridge, G, coef)
                    for q in range(d):
                        cand[q] = 0.0
                    for s in range(k):
                        cand[added[s]] = coef[r + k + s]
                    for s in range(k):
                        if active[i, s]:
                            cand[S[i, s]] = coef[r + s]
                else:
                    # dense sparse part (put_along_axis: the last of repeated slots wins) + step
                    for q in range(d):
                        cand[q] = 0.0
                    for s in range(k):
                        cand[S[i, s]] = V[i, s] if active[i, s] else 0.0
                    for q in range(d):
                        cand[q] += eta[i] * grad[q]
                for q in range(d):
                    mag[q] = abs(cand[q])
                if 2 * k <= d and merged:
                    # the candidate is zero outside the active support and the added indices (distinct)
                    n_idx = 0
                    for s in range(k):
                        if active[i, s]:
                            idx[n_idx] = S[i, s]
                            n_idx += 1
                    for s in range(k):
                        idx[n_idx] = added[s]
                        n_idx += 1
                    _top_k_of(mag, idx, n_idx, k, S_new, taken)
                elif k < d:
                    _top_k(mag, k, S_new, taken)
                else:
                    for q in range(d):
                        S_new[q] = q
                changed = False
                for s in range(k):
                    kept = mag[S_new[s]]
                    act_new[s] = kept > threshold if use_threshold else kept > 0.0
                    if S_new[s] != S[i, s] or act_new[s] != active[i, s]:
                        changed = True
                if not changed:
                    first_unchanged[i] = it
                    break
                # the new system from the merged one (subspace) or from the current one (HTP)
                old = 1 - cur if merged else cur
                if merged:
                    _sources(S_new, act_new, k, S_m, act_m, 2 * k, src)
                else:
                    _sources(S_new, act_new, k, S[i], active[i], k, src)
                cur = 1 - old
                for s in range(k):
                    S[i, s] = S_new[s]
                    active[i, s] = act_new[s]
                _system(X, z, lo, m, S[i], active[i], src, k, r, Ft[old], Gr[old], rhs[old],
                        Ft[cur], Gr[cur], rhs[cur])
                _solve(Gr[cur], rhs[cur], r + k, r, active[i], ridge, G, coef)
                _residual(z, lo, m, Ft[cur], coef, r + k, residual)
                for a in range(r):
                    W[i, a] = coef[a]
                for s in range(k):
                    V[i, s] = coef[r + s] if active[i, s] else 0.0


def fit_user_parameters_fused(data, U, sparsity, heads=None, *, offset=None, inner_iters=10,
                              step="inverse_count", step_scale=1.0, threshold=None,
                              pursuit="subspace", ridge=1e-10):
    """Drop-in for :func:`bilinrec.models.lrs.user_step.fit_user_parameters` (same arguments and
    results up to rounding) running :func:`user_step_kernel`; no copy of ``X`` is made."""
    from .user_step import (  # here: user_step imports this module
        _Heads,
        _user_step_sizes,
    )

    t, r = data.n_users, U.shape[1]
    z = data.y if offset is None else data.y - offset
    z = np.ascontiguousarray(z, dtype=np.float64)
    Ut = np.ascontiguousarray(U.T, dtype=np.float64)
    if heads is None:
        heads = _Heads.empty(t, r, sparsity)
    # fresh arrays: callers may keep references to the previous round's heads
    W = np.zeros((t, r))
    S = np.ascontiguousarray(heads.S, dtype=np.int64).copy()
    V = np.ascontiguousarray(heads.V, dtype=np.float64).copy()
    active = np.ascontiguousarray(heads.active, dtype=np.bool_).copy()
    eta = _user_step_sizes(data, step, step_scale) if sparsity else np.zeros(t)
    residual = np.empty(data.n_samples)
    first_unchanged = np.zeros(t, dtype=np.int64)
    X = data.X if data.X.flags.c_contiguous else np.ascontiguousarray(data.X)
    run_chunked(user_step_kernel, t, X, z, Ut, np.ascontiguousarray(data.indptr, dtype=np.int64), W, S, V, active,
                     np.ascontiguousarray(eta, dtype=np.float64), int(inner_iters),
                     threshold is not None, float(threshold) if threshold is not None else 0.0,
                     pursuit == "subspace", float(ridge), residual, first_unchanged)
    heads.W, heads.S, heads.V, heads.active = W, S, V, active
    iterations = int(min(inner_iters, first_unchanged.max())) if (sparsity and t) else 0
    return heads, residual, iterations


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


# --------------------------------------------------------------------------------------
# Streaming shared statistics (bounded memory: no per-user Gram cache, no copy of X)
# --------------------------------------------------------------------------------------
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
    threads = max(1, n_threads())
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

    acc = sum(map_static(part, len(starts)), np.zeros((len(ia), n_packed)))
    iu = np.triu_indices(d)
    blocks = np.zeros((len(ia), d, d))
    blocks[:, iu[0], iu[1]] = acc
    blocks[:, iu[1], iu[0]] = acc
    full = np.zeros((r, r, d, d))
    full[ia, ib] = blocks
    full[ib, ia] = blocks
    return full.transpose(0, 2, 1, 3).reshape(d * r, d * r)


def weighted_row_gram(X: np.ndarray, scale: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """``Z^T diag(weights) Z`` with ``Z = X * scale[:, None]`` and non-negative ``weights`` (clip
    factors, sample indicators), streamed over row blocks as ``Z_w^T Z_w`` with
    ``Z_w = X * (scale * sqrt(weights))[:, None]``: a symmetric product, which BLAS forms at half
    the cost of a general one (results differ from ``Z^T (Z * weights)`` by rounding only). Threads
    take contiguous ranges of blocks with single-threaded BLAS each (no BLAS thread
    synchronisation, which stalls badly on a shared machine); partial sums are added in a fixed order."""
    d = X.shape[1]
    starts = list(range(0, X.shape[0], _ROW_BLOCK))

    def part(lo: int, hi: int) -> np.ndarray:
        out = np.zeros((d, d))
        for start in starts[lo:hi]:
            block = slice(start, start + _ROW_BLOCK)
            # the row scale per block (the same values as for all rows at once): no (N,) temporaries
            row_scale = scale[block] if weights is None else scale[block] * np.sqrt(weights[block])
            Z = X[block] * row_scale[:, None]
            out += Z.T @ Z
        return out

    return sum(map_static(part, len(starts)), np.zeros((d, d)))


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
    run_chunked(_gram_norms_kernel, data.n_users, X, np.ascontiguousarray(data.indptr, dtype=np.int64), scale, norms)
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
    n_chunks = max(1, -(-data.n_users // _CHUNK_USERS))
    partials = np.zeros((n_chunks, data.dim, W.shape[1]))
    X = data.X if data.X.flags.c_contiguous else np.ascontiguousarray(data.X)
    W = np.ascontiguousarray(W, dtype=np.float64)
    Wc = W if coef is None else np.ascontiguousarray(W * np.asarray(coef)[:, None])
    run_chunked(_kron_matvec_kernel, data.n_users, X, np.ascontiguousarray(data.indptr, dtype=np.int64),
                np.ascontiguousarray(V, dtype=np.float64), W, Wc, _CHUNK_USERS, partials)
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
    n_chunks = max(1, -(-data.n_users // _CHUNK_USERS))
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
    run_chunked(_segment_xz_kernel, data.n_users, X, np.ascontiguousarray(data.indptr, dtype=np.int64),
                np.ascontiguousarray(z, dtype=np.float64), S, V, active, res, Wc, _CHUNK_USERS, partials,
                partials_res, norms)
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
