"""Compiled scores of (user, item) pairs and the stored cells' terms of the ALS objective.

Both read the factors where they are (float32 or float64, no gathered copies) and accumulate in
float64, one pair or one row per loop iteration. Each iteration's sum is independent of the
others, and the per-row terms are added up afterwards in a fixed order, so the results do not
depend on the thread count. The objective is evaluated after every sweep (the stopping rule), so
this replaced a gather-then-``einsum`` that cost as much as the sweep itself."""

from __future__ import annotations

import numba
import numpy as np

from ..fastmath import FASTMATH


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _pair_scores(X, Y, users, items, out):  # pragma: no cover - compiled
    k = X.shape[1]
    for n in numba.prange(users.shape[0]):
        x, y = X[users[n]], Y[items[n]]
        s = 0.0
        for f in range(k):
            s += np.float64(x[f]) * np.float64(y[f])
        out[n] = s


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _row_terms(indptr, indices, conf, target, X, Y, shift_u, shift_i, base, out):  # pragma: no cover - compiled
    # out[u] = sum over the cells n of row u of conf_n (target_n - s_n)^2 - base s_n^2, with
    # s_n = x_u . y_i + shift_u[u] + shift_i[i] (the biases, or zeros)
    k = X.shape[1]
    for u in numba.prange(X.shape[0]):
        x = X[u]
        acc = 0.0
        for n in range(indptr[u], indptr[u + 1]):
            i = indices[n]
            y = Y[i]
            s = 0.0
            for f in range(k):
                s += np.float64(x[f]) * np.float64(y[f])
            s += shift_u[u] + shift_i[i]
            r = np.float64(target[n]) - s
            acc += np.float64(conf[n]) * r * r - base * s * s
        out[u] = acc


def pair_scores(X: np.ndarray, Y: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Float64 ``X[users[n]] . Y[items[n]]`` for every n (ids are not checked)."""
    out = np.empty(users.shape[0], np.float64)
    _pair_scores(np.ascontiguousarray(X), np.ascontiguousarray(Y), np.asarray(users, np.int64),
                 np.asarray(items, np.int64), out)
    return out


def cell_terms(csr: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], X: np.ndarray, Y: np.ndarray,
               base: float, shift_u: np.ndarray | None = None, shift_i: np.ndarray | None = None) -> float:
    """``sum_n conf_n (target_n - s_n)^2 - base s_n^2`` over the stored cells ``csr`` = (indptr,
    indices, conf, target) by row of ``X``, with ``s_n = x_u . y_i (+ shift_u[u] + shift_i[i])``."""
    indptr, indices, conf, target = csr
    shift_u = np.zeros(X.shape[0]) if shift_u is None else np.asarray(shift_u, np.float64)
    shift_i = np.zeros(Y.shape[0]) if shift_i is None else np.asarray(shift_i, np.float64)
    out = np.empty(X.shape[0], np.float64)
    _row_terms(indptr, indices, conf, target, np.ascontiguousarray(X), np.ascontiguousarray(Y), shift_u, shift_i,
               float(base), out)
    return float(np.sum(out))
