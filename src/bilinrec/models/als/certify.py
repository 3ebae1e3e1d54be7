"""The certified local forget of ALS: re-solve the rows of the deleted cells, then rows largest
residual first until every row residual (:mod:`.residuals`) is within the caller's tolerance.

**Certified forget** (:func:`certified_forget`): the per-row residual vectors of the original
model are known (computed once, see ``ALS.max_row_residual``). Deleting cells changes the
equations of their users and items only: the deleted cells' terms are taken out of those
residuals (``O(k)`` a cell). Every user and then every item of a deleted cell is re-solved
exactly on the reduced data, whatever its residual (a user with no cells left becomes exactly
zero, as after retraining); then, largest first, the rows over the caller's absolute tolerance
are re-solved, one side per round, and every residual is kept exact: re-solving rows ``S``
changes the cell terms of the rows' own cells (applied, ``O(cells of S * k)``) and the other
side's Gramian by ``dG = X'_S^T X'_S - X_S^T X_S``, which moves every other-side residual by
``base * y_i dG``. That term is kept pending (:class:`SideResiduals`: ``r_i = R_i + y_i D``),
and rows are screened by the rigorous bound ``|R_i| + |y_i| |D|_2``; only rows whose bound
exceeds a level are computed exactly, so no row is left unchecked and the final maximum is exact.

**Cost.** Removing a user moves the Gramian term of every item; with a tight tolerance that pushes
the most popular items over it, and building their normal matrices from their cells is a large
part of the data. So the residual state also caches the cell Grams ``S_r`` of the rows with the
most cells (:class:`RowGrams`, kept exact: entries whose other-side rows changed are dropped,
deleted cells subtracted), and the re-solved items' cell terms reach the users in one compiled
pass over the data's CSR rows, with no gather or sort.
"""

from __future__ import annotations

import time
from typing import Any

import numba
import numpy as np

from ..fastmath import FASTMATH
from .reduced_cells import LocalRows
from .residuals import SideResiduals, block_cell_terms, block_cell_terms_pair, norms, row_regularization
from .row_grams import RowGrams, cell_grams
from .threads import kernel_threads, kernel_workers


@numba.njit(cache=True)
def _by_destination(indices, n_out):  # pragma: no cover - compiled
    # a stable counting sort of the cells by destination row: (order, starts), cells of row j at
    # order[starts[j]:starts[j + 1]], in cell order
    starts = np.zeros(n_out + 1, dtype=np.int64)
    for n in range(indices.size):
        starts[indices[n] + 1] += 1
    for j in range(n_out):
        starts[j + 1] += starts[j]
    fill = starts[:-1].copy()
    order = np.empty(indices.size, dtype=np.int64)
    for n in range(indices.size):
        j = indices[n]
        order[fill[j]] = n
        fill[j] += 1
    return order, starts


@numba.njit(cache=True, inline="always", fastmath=FASTMATH)
def _cell_change(acc, dest_row, c, p, base, new_row, old_row):  # pragma: no cover - compiled
    # acc += w_new new_row - w_old old_row, w = (c - base) dest_row . row - c p: the change of a
    # destination row's residual when the source row of one of its cells moves from old to new
    k = acc.size
    d_old = 0.0
    d_new = 0.0
    for f in range(k):
        d_old += dest_row[f] * old_row[f]
        d_new += dest_row[f] * new_row[f]
    w_old = (c - base) * d_old - c * p
    w_new = (c - base) * d_new - c * p
    for f in range(k):
        acc[f] += w_new * new_row[f] - w_old * old_row[f]


@numba.njit(cache=True, inline="always")
def _add_row(out, rn, hit, j, acc):  # pragma: no cover - compiled
    total = 0.0
    for f in range(acc.size):
        out[j, f] += acc[f]
        total += out[j, f] * out[j, f]
    rn[j] = np.sqrt(total)
    hit[j] = True


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def _scatter_kernel(out, rn, hit, dest, order, starts, cell_row, conf, target, base, new, old,
                    n_parts):  # pragma: no cover - compiled
    # part c owns the destination rows c, c + n_parts, ... (interleaved: popularity is often skewed
    # by row id): each row is read and written once, its terms summed in cell order (whatever
    # n_parts is); the source rows (new, old) stay in cache
    n_out = starts.size - 1
    for c in numba.prange(n_parts):
        acc = np.empty(out.shape[1])
        for j in range(c, n_out, n_parts):
            if starts[j] == starts[j + 1]:
                continue
            acc[:] = 0.0
            for m in range(starts[j], starts[j + 1]):
                n = order[m]
                r = cell_row[n]
                _cell_change(acc, dest[j], conf[n], target[n], base, new[r], old[r])
            _add_row(out, rn, hit, j, acc)


@numba.njit(cache=True, parallel=True, fastmath=FASTMATH)
def _csr_scatter_kernel(out, rn, hit, dest, indptr, indices, data, a, b, explicit, base, slot, new, old, deleted,
                        n_cols, n_parts):  # pragma: no cover - compiled
    # every stored cell of X (CSR, destination rows) whose column has a slot (a re-solved row) and
    # is not deleted: one pass over the column indices, no gather and no sort (rows split as in
    # _scatter_kernel)
    n_out = indptr.size - 1
    for c in numba.prange(n_parts):
        acc = np.empty(out.shape[1])
        for j in range(c, n_out, n_parts):
            any_cell = False
            at = np.searchsorted(deleted, j * n_cols)
            for n in range(indptr[j], indptr[j + 1]):
                s = slot[indices[n]]
                if s < 0:
                    continue
                key = j * n_cols + indices[n]
                while at < deleted.size and deleted[at] < key:
                    at += 1
                if at < deleted.size and deleted[at] == key:
                    continue
                if not any_cell:
                    acc[:] = 0.0
                    any_cell = True
                v = a + b * data[n]
                if explicit:
                    _cell_change(acc, dest[j], 1.0, v, base, new[s], old[s])
                else:
                    _cell_change(acc, dest[j], v, 1.0, base, new[s], old[s])
            if any_cell:
                _add_row(out, rn, hit, j, acc)


def _scatter(opposite: SideResiduals, indptr, indices, conf, target, base: float, new, old,
             workers: int) -> np.ndarray:
    """Move the residuals of the other side's rows by the cell terms of re-solved rows (block rows
    ``old`` -> ``new``, their cells in CSR ``indptr, indices`` with ``conf, target``; coefficients
    ``w = (c - base) x.y - c p`` from the destination's factor row): cells sorted by destination
    once, then every destination row accumulated, written and re-measured once, rows split over
    ``workers`` threads. Returns the mask of rows written."""
    parts = kernel_threads(workers)
    hit = np.zeros(opposite.rn.size, dtype=bool)
    order, starts = _by_destination(indices.astype(np.int64, copy=False), opposite.rn.size)
    cell_row = np.repeat(np.arange(indptr.size - 1, dtype=np.int64), np.diff(indptr))
    with kernel_workers(parts):
        _scatter_kernel(opposite.R, opposite.rn, hit, opposite.F, order, starts, cell_row, conf, target, float(base),
                        np.ascontiguousarray(new, np.float64), np.ascontiguousarray(old, np.float64), parts * 8)
    return hit


def _scatter_csr(opposite: SideResiduals, local: LocalRows, rows: np.ndarray, base: float, new, old,
                 workers: int) -> np.ndarray:
    """:func:`_scatter` of re-solved items ``rows`` to the users, read from the data's CSR rows
    in one pass (no gather, no sort): for the popular items a forget re-solves, whose cells are a
    large part of the data. Returns the mask of users written."""
    X = local.X
    parts = kernel_threads(workers)
    hit = np.zeros(opposite.rn.size, dtype=bool)
    slot = np.full(X.shape[1], -1, dtype=np.int64)
    slot[rows] = np.arange(rows.size)
    with kernel_workers(parts):
        _csr_scatter_kernel(opposite.R, opposite.rn, hit, opposite.F, X.indptr, X.indices, X.data,
                            float(local.affine[0]), float(local.affine[1]), local.explicit, float(base), slot,
                            np.ascontiguousarray(new, np.float64), np.ascontiguousarray(old, np.float64),
                            local.deleted, np.int64(X.shape[1]), parts * 8)
    return hit


#: A row re-solved for the tolerance moves until its residual is this fraction of it (or as low as it goes).
RELAX = 0.9


def _relaxation(r0: np.ndarray, delta: np.ndarray, target: float) -> np.ndarray:
    """Per row, the least ``t`` in [0, 1] with ``|r0 + t delta| <= target``; where none exists,
    the ``t`` in [0, 1] minimising ``|r0 + t delta|``."""
    a = np.einsum("nk,nk->n", delta, delta)
    b = np.einsum("nk,nk->n", r0, delta)
    c = np.einsum("nk,nk->n", r0, r0) - target**2
    safe = np.where(a > 0, a, 1.0)
    disc = b * b - a * c
    root = (-b - np.sqrt(np.maximum(disc, 0.0))) / safe
    best = np.clip(-b / safe, 0.0, 1.0)
    reach = (a > 0) & (disc >= 0) & (root <= 1.0)
    return np.where(reach, np.clip(root, 0.0, 1.0), np.where(a > 0, best, 1.0))


def _solve_rows(own: np.ndarray, rows: np.ndarray, r_old: np.ndarray, A: np.ndarray,
                target_norm: float | None, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact re-solve of ``own[rows]`` with normal matrices ``A``: the step to the solution is
    ``-A^-1 r_old`` (the residual ``r_old = A old - b`` is kept, so ``b`` is not rebuilt). With a
    ``target_norm`` the row moves along it only as far as brings its residual ``r_old + t A step``
    to it (:func:`_relaxation`); with ``None`` it takes the whole step (the row's exact solve).
    Rows flagged ``empty`` (no cells left: ``b = 0``) are set to exactly zero, their exact
    solution, with residual zero. The new residual is ``r_old + A (stored - old)`` (the row as
    stored, rounded to ``own``'s dtype). Returns ``(old, new, r_new, step)`` (float64)."""
    from .chol import solve_spd_rows  # compiles on first use (cached on disk)

    old = own[rows].astype(np.float64)
    delta = solve_spd_rows(A, -r_old, rows)
    if target_norm is None:
        step = np.ones(rows.size)
    else:
        step = _relaxation(r_old, np.matmul(A, delta[:, :, None])[:, :, 0], target_norm)
    own[rows] = old + step[:, None] * delta
    own[rows[empty]] = 0
    new = own[rows].astype(np.float64)
    r_new = r_old + np.matmul(A, (new - old)[:, :, None])[:, :, 0]
    r_new[empty] = 0.0
    return old, new, r_new, step


#: Re-solved items reach the users by one pass over all stored cells when their own cells are
#: more than this share of them (else their cells are gathered and sorted by user).
CSR_PASS_SHARE = 1 / 8


def certified_forget(sides_state: tuple[SideResiduals, SideResiduals], grams: list[np.ndarray], local: LocalRows,
                     pairs: np.ndarray, *, tolerance: float, base: float, regularization: float, scaled: bool,
                     max_iterations: int, batch_rows: int | None, chunk_bytes: int, workers: int,
                     cg_steps: int | None = None, row_grams: RowGrams | None = None,
                     removed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Re-solve every row of a deleted cell exactly, then rows largest residual first until
    every row residual is ``<= tolerance``.

    **By construction**, whatever the tolerance: first every user of a deleted cell is solved
    exactly on the reduced data (a user with no cells left becomes exactly zero, what retraining
    gives it), then every item of a deleted cell -- two rounds that always run, with the whole
    step, by Cholesky. Only then do rounds over the tolerance begin.

    ``sides_state`` holds the users' and the items' factors (the model's arrays) and residual
    vectors of the original model on the original data (:class:`SideResiduals`); ``grams`` the
    float64 Gramians ``base X^T X`` and ``base Y^T Y``; ``row_grams`` the cell Grams of the rows
    with the most cells (:class:`RowGrams`). All are updated in place; on return they
    are the new factors, their residuals on the reduced data (exact up to the pending Gramian
    term each side records), Gramians and cell Grams. A round re-solves, on one side,
    the rows over ``tolerance`` (at most ``batch_rows``, largest first; with rows over it on both
    sides, the sides alternate as in ALS, users first); at most ``max_iterations`` rounds after
    the two forced ones. A re-solve is exact (Cholesky; the normal matrix from the cached cell Gram,
    else by GEMM on the row's gathered cells, ``O(cells k^2)``) or, with ``cg_steps``, that many
    warm-started CG steps (``O(cells k)`` a step; the residual shrinks but is not 0, so rows may
    return in later rounds); the row then moves only as
    far towards the re-solved value as brings its residual to ``RELAX * tolerance``. Rows over the
    tolerance are found exactly: every row whose rigorous upper bound exceeds it is computed exactly
    (:meth:`SideResiduals.over`). Returns the loop's statistics, with ``gap``, the exact largest
    residual of every row at the end.

    The residuals given are on the reduced data plus the cells ``removed`` = ``(pairs, conf,
    target)`` (then only those cells' terms are taken out of their rows' residuals, ``O(k)`` a
    cell) or, when ``removed`` is None, on data whose difference from the reduced one lies in
    the rows of ``pairs`` (their residuals are recomputed from their cells).
    """
    U, V = sides_state[0].F, sides_state[1].F
    sides = ((U, V, sides_state[0]), (V, U, sides_state[1]))
    k = U.shape[1]
    touched: list[set[int]] = [set(), set()]
    rounds: list[dict[str, Any]] = []
    exact_rows = 0
    t0 = time.perf_counter()

    def block_residuals(axis: int, x: np.ndarray, wy: np.ndarray, indptr: np.ndarray) -> np.ndarray:
        """Residuals of side ``axis``'s block rows ``x`` from their cell terms ``wy``."""
        R = row_regularization(regularization, scaled, np.diff(indptr).astype(np.float64))[:, None] * x + wy
        if base:
            R += x @ grams[1 - axis]
        return R

    def local_residuals(axis: int, rows: np.ndarray) -> np.ndarray:
        own, other, _ = sides[axis]
        indptr, indices, conf, target = local.get(axis, rows)
        x = own[rows].astype(np.float64)
        wy = block_cell_terms(x, indptr, indices, conf, target, other, base, workers)
        return block_residuals(axis, x, wy, indptr)

    def exact_resolve(axis: int, over: np.ndarray, r_old: np.ndarray, full: bool) -> tuple[np.ndarray, ...]:
        """Exact re-solve of ``over`` in blocks of bounded memory: normal matrices from the cached
        cell Grams where valid, else by GEMM on the gathered cells (refilling the cache)."""
        own, other, _ = sides[axis]
        counts = local.counts(axis, over)
        reg = row_regularization(regularization, scaled, counts)
        out = [np.empty((over.size, k)) for _ in range(3)] + [np.empty(over.size)]
        size = max(1, chunk_bytes // (16 * k * k))
        for lo in range(0, over.size, size):
            part = slice(lo, lo + size)
            rows = over[part]
            S = np.empty((rows.size, k, k))
            have = np.zeros(rows.size, dtype=bool)
            if row_grams is not None:
                have, cached = row_grams.lookup(axis, rows)
                S[have] = cached
            if not have.all():
                need = rows[~have]
                indptr, indices, conf, _ = local.get(axis, need)
                S[~have] = cell_grams(indptr, indices, conf - base, other, chunk_bytes, workers)
                if row_grams is not None:
                    row_grams.store(axis, need, S[~have])
            S += grams[1 - axis]
            S[:, np.arange(k), np.arange(k)] += reg[part][:, None]
            solved = _solve_rows(own, rows, r_old[part], S, None if full else RELAX * tolerance, counts[part] == 0)
            for target, value in zip(out, solved):
                target[part] = value
        return tuple(out)

    if removed is None:  # the disturbed rows' residuals from their cells on the reduced data
        for axis, ids in ((0, np.unique(pairs[:, 0])), (1, np.unique(pairs[:, 1]))):
            sides[axis][2].set(ids, local_residuals(axis, ids))
            if row_grams is not None:
                row_grams.invalidate(axis, ids)
    elif len(removed[0]):  # or by taking the removed cells' terms out (a residual is a sum over cells)
        cells, c, p = removed
        x, y = U[cells[:, 0]].astype(np.float64), V[cells[:, 1]].astype(np.float64)
        w = (c - base) * np.einsum("nk,nk->n", x, y) - c * p
        for axis, partner in ((0, y), (1, x)):
            ids, inv = np.unique(cells[:, axis], return_inverse=True)
            delta = np.zeros((ids.size, partner.shape[1]))
            np.add.at(delta, inv, w[:, None] * partner)
            R = sides[axis][2].exact(ids) - delta
            if scaled:  # the regularization follows the row's count
                after = local.counts(axis, ids)
                before = after + np.bincount(inv, minlength=ids.size)
                change = regularization * (np.maximum(after, 1.0) - np.maximum(before, 1.0))
                R += change[:, None] * sides[axis][0][ids].astype(np.float64)
            sides[axis][2].set(ids, R)
            if row_grams is not None:
                row_grams.subtract(axis, cells[:, axis], partner, c - base)
    setup = time.perf_counter() - t0

    def resolve(axis: int, over: np.ndarray, top: float, forced: bool) -> None:
        """One round: re-solve ``over`` on side ``axis`` (``forced``: exactly, the whole step)."""
        own, other, state = sides[axis]
        t1 = time.perf_counter()
        r_old = state.exact(over)
        if cg_steps and not forced:
            from .cg import cg_solve_rows  # compiles on first use (cached on disk)

            indptr, indices, conf, target = local.get(axis, over)
            reg = row_regularization(regularization, scaled, np.diff(indptr).astype(np.float64))
            old = own[over].astype(np.float64)
            solved = np.ascontiguousarray(own[over])
            cg_solve_rows(solved, np.arange(over.size), (indptr, indices, conf, target), np.ascontiguousarray(other),
                          base, reg, cg_steps, None, workers, gram=grams[1 - axis], residuals=r_old)
            # relax: move each row only as far along old -> solved as brings its residual to RELAX * tolerance
            # (the residual and the cell terms are affine in the row), so rows barely over it barely move
            solved = solved.astype(np.float64)
            wy_old, wy_s = block_cell_terms_pair(old, solved, indptr, indices, conf, target, other, base, workers)
            step = _relaxation(r_old, block_residuals(axis, solved, wy_s, indptr) - r_old, RELAX * tolerance)
            own[over] = old + step[:, None] * (solved - old)
            new = own[over].astype(np.float64)
            if own.dtype == np.float64:  # new is old + step (solved - old) exactly as stored: all affine in it
                wy_new = wy_old + step[:, None] * (wy_s - wy_old)
            else:  # the stored row is rounded: its terms are recomputed
                wy_new = block_cell_terms(new, indptr, indices, conf, target, other, base, workers)
            r_new = block_residuals(axis, new, wy_new, indptr)
        else:
            old, new, r_new, step = exact_resolve(axis, over, r_old, forced)
        # the other side: the cell terms of the solved rows' cells (those rows re-measured, their
        # cached cell Grams invalidated), and the Gramian change, which moves every row: recorded as
        # pending (see SideResiduals)
        opposite = sides[1 - axis][2]
        cells = int(local.counts(axis, over).sum())
        if axis == 1 and cells > CSR_PASS_SHARE * local.X.nnz:  # items to users: one pass over the CSR rows
            hit = _scatter_csr(opposite, local, over, base, new, old, workers)
        else:
            indptr, indices, conf, target = local.get(axis, over)
            hit = _scatter(opposite, indptr, indices, conf, target, base, new, old, workers)
        if row_grams is not None:
            row_grams.invalidate(1 - axis, np.flatnonzero(hit))
        if base:
            change = base * (new.T @ new - old.T @ old)
            opposite.add_gram(change)
            grams[axis] += change
        state.set(over, r_new)
        touched[axis].update(over.tolist())
        rounds.append({"side": "users" if axis == 0 else "items", "rows": int(over.size), "forced": forced,
                       "mean_step": float(step.mean()),
                       "cells": cells, "max_before": top, "seconds": time.perf_counter() - t1})

    for axis in (0, 1):  # by construction: every row of a deleted cell, solved exactly, users first
        rows = np.unique(pairs[:, axis]).astype(np.int64)
        if rows.size:
            resolve(axis, rows, float(norms(sides[axis][2].exact(rows)).max()), forced=True)
    forced_rounds = len(rounds)
    last = 1  # the first round with rows over the tolerance on both sides re-solves users
    while len(rounds) - forced_rounds < max_iterations:
        found = [state.over(tolerance) for _, _, state in sides]
        exact_rows += sum(f[0].size for f in found)
        over_tolerance = [f[0].size > 0 for f in found]
        if not any(over_tolerance):
            break
        axis = 0 if not over_tolerance[1] else 1 if not over_tolerance[0] else 1 - last  # both: alternate, as ALS
        last = axis
        over, n = found[axis]
        resolve(axis, over[np.argsort(-n, kind="stable")][:batch_rows], float(n.max()), forced=False)
    tops = [state.max() for _, _, state in sides]
    exact_rows += sum(t[1] for t in tops)
    return {"rounds": rounds, "setup_seconds": setup, "users_touched": len(touched[0]),
            "items_touched": len(touched[1]), "rows_touched": len(touched[0]) + len(touched[1]),
            "gap": max(t[0] for t in tops), "rows_measured_exactly": exact_rows,
            "touched_users": np.array(sorted(touched[0]), dtype=np.int64),
            "touched_items": np.array(sorted(touched[1]), dtype=np.int64)}
