"""The per-user step of AMHT-LRS: (w_i, b_i) by alternating least squares and hard thresholding."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import cg

from . import compiled
from .data import LRSData, sparse_features
from .fused_user_step import user_step_kernel
from .statistics import SumAggregator, moment_statistics, normal_equation_statistics
from .user_parameters import UserParameters


def _refit_on_support(data: LRSData, XU: np.ndarray, z: np.ndarray, heads: UserParameters, ridge: float):
    """Joint least squares of every user's (w_i, b_i restricted to its support); updates
    ``heads`` in place and returns the per-sample residual."""
    r = XU.shape[1]
    F = np.concatenate([XU, sparse_features(data, heads)], axis=1)
    p = F.shape[1]
    G = data.segment_gram(F)
    rhs = data.segment_sum(F, row_weights=z)
    scale = np.trace(G, axis1=1, axis2=2) / max(p, 1)
    G[:, np.arange(p), np.arange(p)] += (ridge * scale + 1e-12)[:, None]
    # an inactive slot has a zero feature column; a unit diagonal pins its coefficient to 0
    G[:, np.arange(r, p), np.arange(r, p)] += ~heads.active
    coef = np.linalg.solve(G, rhs[..., None])[..., 0]
    heads.W = coef[:, :r]
    heads.V = coef[:, r:] * heads.active
    return z - np.einsum("np,np->n", F, coef[data.row_user])


def _select_support(candidate: np.ndarray, sparsity: int, threshold: float | None):
    """Top-``sparsity`` magnitudes per row; with ``threshold`` also drop entries below it."""
    mag = np.abs(candidate)
    if sparsity < candidate.shape[1]:
        S = np.argpartition(-mag, sparsity - 1, axis=1)[:, :sparsity]
    else:
        S = np.broadcast_to(np.arange(candidate.shape[1]), candidate.shape).copy()
    S.sort(axis=1)
    kept = np.take_along_axis(mag, S, axis=1)
    active = kept > 0 if threshold is None else kept > threshold
    return S, active


def user_step_sizes(data: LRSData, step: str, step_scale: float) -> np.ndarray:
    counts = np.maximum(data.counts, 1).astype(np.float64)
    if step == "inverse_count":
        return step_scale / counts
    sq_norm = np.ones(data.n_users)
    for users, rows in data.iter_batches(data.dim):
        sq_norm[users] = np.linalg.norm(data.X[rows], ord=2, axis=(1, 2)) ** 2
    return step_scale / np.maximum(sq_norm, 1e-12)


def _subspace_pursuit_candidate(data, XU, z, heads: UserParameters, grad: np.ndarray, ridge: float):
    """Refit of (w_i, b_i) on the current support merged with the ``k`` largest off-support
    gradient entries, as a dense (t, d) candidate for the top-``k`` selection."""
    k = heads.S.shape[1]
    on_support = np.zeros(grad.shape, dtype=bool)
    np.put_along_axis(on_support, heads.S, heads.active, axis=1)
    score = np.where(on_support, -1.0, np.abs(grad))  # active entries can never be added again
    added = np.argpartition(-score, k - 1, axis=1)[:, :k]
    merged = UserParameters(heads.W.copy(), np.concatenate([heads.S, added], axis=1), None,
                    np.concatenate([heads.active, np.ones_like(heads.active)], axis=1))
    _refit_on_support(data, XU, z, merged, ridge)
    candidate = np.zeros(grad.shape)
    np.put_along_axis(candidate, added, merged.V[:, k:], axis=1)
    # active support values last: an added index never repeats an active one
    current = np.take_along_axis(candidate, heads.S, axis=1)
    np.put_along_axis(candidate, heads.S, np.where(heads.active, merged.V[:, :k], current), axis=1)
    return candidate


def fit_user_parameters(
    data: LRSData,
    U: np.ndarray,
    sparsity: int,
    heads: UserParameters | None = None,
    *,
    offset: np.ndarray | None = None,
    inner_iters: int = 10,
    step: str = "inverse_count",
    step_scale: float = 1.0,
    threshold: float | None = None,
    pursuit: str = "subspace",
    ridge: float = 1e-10,
    normal_rhs: bool = False,
) -> tuple:
    """Fit every user's head ``w_i`` and ``k``-sparse ``b_i`` given the shared ``U``.

    Hard-thresholding pursuit per user, batched over users: gradient step on the residual
    (step ``step_scale / m_i`` or ``step_scale / ||X_i||_2^2``), keep the ``sparsity`` largest
    magnitudes (and, with ``threshold``, only those above it), refit ``(w_i, b_i)`` jointly by
    least squares on the support (``pursuit="htp"``). ``pursuit="subspace"`` (subspace pursuit,
    the default) instead refits on the union of the support and the ``k`` largest off-support gradient
    entries and keeps the ``k`` largest refitted values (users with fewer than ``r + 2k``
    samples, for whom that refit is underdetermined, keep the HTP step). Starts from ``heads``
    (warm start) when given. ``offset`` (N,) is a known per-sample prediction subtracted from ``y`` first.
    Returns the heads, the per-sample residual, and the number of inner iterations run; with
    ``normal_rhs=True`` also a fourth item: ``(rhs, start)``, the U step's right-hand side
    ``sum_i X_i^T (y_i - X_i b_i) w_i^T`` and CG's start residual ``sum_i X_i^T residual_i w_i^T``
    at ``U`` (each (d, r)), summed while each user's rows are in cache so that the U step needs no
    pass over ``X`` for them; ``None`` where that is not done (the NumPy path, or with ``offset``).
    """
    if compiled.ENABLED:  # same results, one Numba kernel per user (fused_user_step.py)
        fitted = _fit_user_parameters_fused(
            data, U, sparsity, heads, offset=offset, inner_iters=inner_iters, step=step,
            step_scale=step_scale, threshold=threshold, pursuit=pursuit, ridge=ridge,
            normal_rhs=normal_rhs and offset is None)
        return fitted if normal_rhs else fitted[:3]
    t, r = data.n_users, U.shape[1]
    z = data.y if offset is None else data.y - offset
    XU = data.X @ U
    if heads is None:
        heads = UserParameters.empty(t, r, sparsity)
    residual = _refit_on_support(data, XU, z, heads, ridge)
    if sparsity == 0:
        return (heads, residual, 0, None) if normal_rhs else (heads, residual, 0)
    eta = user_step_sizes(data, step, step_scale)
    # An iteration changes a user only through its own state, so a user whose support did
    # not change has reached its fixed point: later iterations only revisit changed users.
    pending = np.arange(t)
    iterations = 0
    for iterations in range(1, inner_iters + 1):
        if len(pending) == t:
            part, rows, part_heads = data, slice(None), heads
        else:
            part, rows = data.subset_users(pending)
            part_heads = heads.take(pending)
        part_XU, part_z = XU[rows], z[rows]
        grad = part.segment_sum(part.X, row_weights=residual[rows])
        candidate = part_heads.dense_sparse_part(data.dim) + eta[pending, None] * grad
        if pursuit == "subspace":
            # the merged refit has r + 2k unknowns; users with fewer samples keep the HTP step
            enough = part.counts >= r + 2 * sparsity
            candidate[enough] = _subspace_pursuit_candidate(
                part, part_XU, part_z, part_heads, grad, ridge)[enough]
        S, active = _select_support(candidate, sparsity, threshold)
        changed = np.any(S != part_heads.S, axis=1) | np.any(active != part_heads.active, axis=1)
        if not changed.any():
            break
        part_heads.S, part_heads.active = S, active
        residual[rows] = _refit_on_support(part, part_XU, part_z, part_heads, ridge)
        if part_heads is not heads:
            heads.put(pending, part_heads)
        pending = pending[changed]
    return (heads, residual, iterations, None) if normal_rhs else (heads, residual, iterations)


def _fit_user_parameters_fused(data, U, sparsity, heads=None, *, offset=None, inner_iters=10,
                              step="inverse_count", step_scale=1.0, threshold=None,
                              pursuit="subspace", ridge=1e-10, normal_rhs=False):
    """:func:`fit_user_parameters` (same arguments, results up to rounding, always four items) by
    :func:`.fused_user_step.user_step_kernel`; no copy of ``X`` is made."""

    t, r = data.n_users, U.shape[1]
    z = data.y if offset is None else data.y - offset
    z = np.ascontiguousarray(z, dtype=np.float64)
    Ut = np.ascontiguousarray(U.T, dtype=np.float64)
    if heads is None:
        heads = UserParameters.empty(t, r, sparsity)
    # fresh arrays: callers may keep references to the previous round's heads
    W = np.zeros((t, r))
    S = np.ascontiguousarray(heads.S, dtype=np.int64).copy()
    V = np.ascontiguousarray(heads.V, dtype=np.float64).copy()
    active = np.ascontiguousarray(heads.active, dtype=np.bool_).copy()
    eta = user_step_sizes(data, step, step_scale) if sparsity else np.zeros(t)
    residual = np.empty(data.n_samples)
    first_unchanged = np.zeros(t, dtype=np.int64)
    X = data.X if data.X.flags.c_contiguous else np.ascontiguousarray(data.X)
    # per-chunk partial sums, added in chunk order: the same result on any number of threads
    n_chunks = max(1, -(-t // compiled.CHUNK_USERS)) if normal_rhs else 0
    rhs_partials = np.zeros((n_chunks, r, data.dim))
    start_partials = np.zeros((n_chunks, r, data.dim))
    compiled.run_chunked(user_step_kernel, t, X, z, Ut, np.ascontiguousarray(data.indptr, dtype=np.int64), W, S, V,
                         active, np.ascontiguousarray(eta, dtype=np.float64), int(inner_iters),
                         threshold is not None, float(threshold) if threshold is not None else 0.0,
                         pursuit == "subspace", float(ridge), residual, first_unchanged, compiled.CHUNK_USERS,
                         rhs_partials, start_partials)
    heads.W, heads.S, heads.V, heads.active = W, S, V, active
    iterations = int(min(inner_iters, first_unchanged.max())) if (sparsity and t) else 0
    products = (rhs_partials.sum(axis=0).T, start_partials.sum(axis=0).T) if normal_rhs else None
    return heads, residual, iterations, products



def solve_shared_factor(
    data: LRSData,
    heads: UserParameters,
    aggregator,
    U_start: np.ndarray,
    user_weights: np.ndarray | None = None,
    cg_tol: float = 1e-10,
    cg_maxiter: int = 200,
    residual: np.ndarray | None = None,
    products: tuple | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``U`` over all users given the heads, then QR-orthonormalised.

    ``residual`` (optional): the per-user step's residual at ``U_start`` and these heads; with the
    sum aggregator and CG it gives CG's first residual ``b - A vec(U_start)`` in the rhs pass
    (one product over ``X`` less). ``products`` (optional): the right-hand side and that first
    residual as summed by the per-user step (``fit_user_parameters(..., normal_rhs=True)``), for
    these heads and ``U_start``; then, without ``user_weights``, the U step makes no pass over
    ``X`` for them. Returns the orthonormal ``U`` and the heads ``W`` with the triangular factor
    absorbed.
    """
    d, r = data.dim, heads.W.shape[1]
    # z = y - <x, b> is formed inside the statistics' passes over X (no pass and no (N,) array of its own)
    stats = normal_equation_statistics(data, heads.W, None, user_weights, heads=heads, residual=residual,
                                       products=products)
    A, b = aggregator.aggregate_normal_equations(stats)
    if isinstance(A, np.ndarray):
        A = A + (1e-12 * np.trace(A) / A.shape[0] + 1e-300) * np.eye(A.shape[0])
        vec_u = scipy.linalg.solve(A, b, assume_a="sym")
    else:
        x0 = U_start.ravel(order="F")
        start = stats.start_residual if isinstance(aggregator, SumAggregator) else None
        if start is not None and b.any():
            # CG on A u = b from x0 is CG on A (u - x0) = b - A x0 from 0, stopped at the same
            # residual norm (cg_tol ||b||); scipy's CG skips the first product when started at 0
            step, _ = cg(A, start, M=stats.preconditioner(), rtol=0.0, atol=cg_tol * np.linalg.norm(b),
                         maxiter=cg_maxiter)
            vec_u = x0 + step
        else:
            vec_u, _ = cg(A, b, x0=x0, M=stats.preconditioner(), rtol=cg_tol, maxiter=cg_maxiter)
    Q, R = np.linalg.qr(vec_u.reshape(d, r, order="F"))
    signs = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * signs, heads.W @ (R * signs[:, None]).T


def residual_weights(data: LRSData, residual: np.ndarray, cutoff: float) -> np.ndarray:
    """Robustness weights of the U step: users whose mean squared residual exceeds ``cutoff``
    times the median over users get weight ``cutoff * median / their value`` (else 1), so
    users whose support is still wrong cannot drag ``U`` toward their error."""
    mse = data.segment_sum(residual**2) / np.maximum(data.counts, 1)
    scale = np.median(mse[data.counts > 0])
    return np.minimum(1.0, cutoff * scale / np.maximum(mse, 1e-300))


def keep_better_fit(data: LRSData, first: tuple, second: tuple) -> tuple:
    """Per user, the one of two ``(heads, residual, iterations)`` fits with the smaller
    residual sum of squares."""
    heads_a, res_a, it_a = first
    heads_b, res_b, it_b = second
    take_b = data.segment_sum(res_b**2) < data.segment_sum(res_a**2)
    merged = UserParameters(*(np.where(take_b.reshape((-1,) + (1,) * (a.ndim - 1)), b, a)
                      for a, b in ((heads_a.W, heads_b.W), (heads_a.S, heads_b.S),
                                   (heads_a.V, heads_b.V), (heads_a.active, heads_b.active))))
    return merged, np.where(take_b[data.row_user], res_b, res_a), max(it_a, it_b)


def initial_subspace(data: LRSData, rank: int, aggregator) -> np.ndarray:
    """Method of moments: top-``rank`` eigenvectors of the aggregated ``sum y^2 x x^T``."""
    M = aggregator.aggregate_moment(moment_statistics(data))
    _, vecs = np.linalg.eigh((M + M.T) / 2)
    return vecs[:, ::-1][:, :rank].copy()


