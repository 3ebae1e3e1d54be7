"""The per-user step of AMHT-LRS as one Numba kernel: each user fitted in one pass over its rows.

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

import numpy as np
from numba import njit

from ..fastmath import FASTMATH


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


@njit(cache=True, fastmath=FASTMATH)
def _add_normal_rhs(X, lo, m, residual, XUt, w, xr_ready, xz, xr, out, out_res):
    """Adds one user's terms of the U step's right-hand side, ``w_i (X_i^T z_i)^T`` into ``out``,
    and of CG's start residual, ``w_i (X_i^T residual_i)^T`` into ``out_res`` (both (r, d): the
    transposes), while the user's rows are in cache: ``z_i = residual_i + X_i U w_i`` (``XUt`` is
    ``(X_i U)^T``). ``xr`` already holds ``X_i^T residual_i`` when ``xr_ready``."""
    d = X.shape[1]
    r = w.shape[0]
    for q in range(d):
        xz[q] = 0.0
    if not xr_ready:
        for q in range(d):
            xr[q] = 0.0
    for j in range(m):
        rj = residual[lo + j]
        zj = rj
        for a in range(r):
            zj += XUt[a, j] * w[a]
        if xr_ready:
            for q in range(d):
                xz[q] += X[lo + j, q] * zj
        else:
            for q in range(d):
                x = X[lo + j, q]
                xz[q] += x * zj
                xr[q] += x * rj
    for a in range(r):
        wa = w[a]
        for q in range(d):
            out[a, q] += wa * xz[q]
            out_res[a, q] += wa * xr[q]


@njit(nogil=True, cache=True, fastmath=FASTMATH)
def user_step_kernel(X, z, Ut, indptr, W, S, V, active, eta, inner_iters, use_threshold, threshold,
                     subspace, ridge, residual, first_unchanged, chunk, rhs_partials, start_partials,
                     user_lo, user_hi):
    """Per-user hard-thresholding pursuit, in place on ``W, S, V, active, residual``.

    ``first_unchanged[i]`` is the iteration at which user ``i``'s support stopped changing
    (``inner_iters`` if it never did; 0 when ``k == 0``). When ``rhs_partials`` is not empty, the
    users' terms of the U step's right-hand side and of CG's start residual at ``U`` (see
    :func:`_add_normal_rhs`; (r, d) each) are summed into ``rhs_partials[user_lo // chunk]`` and
    ``start_partials[user_lo // chunk]``: the U step then needs no pass over ``X`` of its own.
    """
    d = X.shape[1]
    r = Ut.shape[0]
    k = S.shape[1]
    with_rhs = rhs_partials.shape[0] > 0
    if with_rhs:
        out = rhs_partials[user_lo // chunk]
        out_res = start_partials[user_lo // chunk]
        for a in range(r):
            for q in range(d):
                out[a, q] = 0.0
                out_res[a, q] = 0.0
    else:
        out = out_res = np.empty((0, 0))
    xz = np.empty(d)
    xr = np.empty(d)
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
                if with_rhs:
                    _add_normal_rhs(X, lo, m, residual, Ft[0], W[i], False, xz, xr, out, out_res)
                continue
            first_unchanged[i] = inner_iters
            grad_current = False  # grad = X_i^T residual_i for the final residual
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
                    grad_current = True
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
            if with_rhs:  # Ft[0][:r] holds X_i U in either system
                _add_normal_rhs(X, lo, m, residual, Ft[0], W[i], grad_current, xz, grad if grad_current else xr,
                                out, out_res)
