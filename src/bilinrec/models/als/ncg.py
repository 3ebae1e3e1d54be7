"""ALS-NCG: nonlinear conjugate gradients preconditioned by ALS sweeps, with an exact line search.

Winlaw, Hynes, Caterini and De Sterck (arXiv 1508.03110) accelerate ALS for matrix factorisation
by using the ALS sweep as the nonlinear preconditioner of conjugate gradients. With ``x`` the
state (users' then items' parameters), ``P(x)`` one ALS sweep from ``x`` followed by gauge
balancing (:mod:`.balance`), ``gbar = x - P(x)`` (the preconditioned gradient) and ``g`` the
gradient of the objective at ``x``, the search direction is::

    p_k = -gbar_k + beta_k p_{k-1},   beta_k = max(0, gbar_k . (g_k - g_{k-1}) / gbar_{k-1} . g_{k-1})

(Polak-Ribiere+; with an exact line search it equals Hestenes-Stiefel) and ``p_k = -gbar_k``
when that is not a descent direction or the memory was cleared. ``x_{k+1} = x_k + alpha p_k``.

The line search is exact: the objective is a polynomial of degree 4 in ``alpha`` along any line
(the prediction ``(x_u + alpha dx_u) . (y_i + alpha dy_i)`` is quadratic in ``alpha``), whose five
coefficients cost one pass over the stored cells and a few ``k x k`` Gram products
(:func:`line_coefficients`); ``alpha`` is its global minimiser over ``alpha >= 0``.

The safeguard: the new point's objective (evaluated, not taken from the polynomial) must not
exceed the objective of ``P(x)``, the point plain (balanced) ALS would have reached; otherwise the
step is replaced by ``P(x)`` and the conjugacy memory cleared. So every iteration does at least
as well as a balanced ALS sweep, the objective never rises, and the fixed points are ALS's (at a
fixed point ``gbar = 0`` and ``g = 0``).

Measured on ml-100k at 100 factors and lambda = 0.01 (``benchmarks/bench_converge.py``,
``docs/benchmarks.md``): retraining reaches 1e-6 of the converged objective in 83-151 sweep
equivalents from six random starts (an iteration costs ~1.33), balanced Anderson in 115-307 from
five of them (from the sixth it stops at another fixed point). Balancing is what makes it work: with the plain sweep as preconditioner it took 398
iterations where it takes 110.
"""

from __future__ import annotations

import numba
import numpy as np

from ..fastmath import FASTMATH
from .cells import Cells
from .threads import kernel_workers


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _cell_gradient(indptr, indices, conf, target, own, other, base, out):  # pragma: no cover - compiled
    # out[r] = sum over the cells n of row r of w_n other[j], w_n = (conf_n - base) own[r].other[j] - conf_n target_n
    k = own.shape[1]
    for r in numba.prange(own.shape[0]):
        for f in range(k):
            out[r, f] = 0.0
        for n in range(indptr[r], indptr[r + 1]):
            j = indices[n]
            dot = 0.0
            for f in range(k):
                dot += own[r, f] * other[j, f]
            w = (conf[n] - base) * dot - conf[n] * target[n]
            for f in range(k):
                out[r, f] += w * other[j, f]


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _cell_coefficients(indptr, indices, conf, target, shift, X, Y, dX, dY, base, out):  # pragma: no cover - compiled
    # out[u] = the coefficients (alpha^0 .. alpha^4) of row u's cell terms
    # sum_n conf_n (target_n - shift - s_n(alpha))^2 - base s_n(alpha)^2, s_n(alpha) = a + b alpha + c alpha^2
    k = X.shape[1]
    for u in numba.prange(X.shape[0]):
        c0 = c1 = c2 = c3 = c4 = 0.0
        for n in range(indptr[u], indptr[u + 1]):
            i = indices[n]
            a = 0.0
            b = 0.0
            c = 0.0
            for f in range(k):
                a += X[u, f] * Y[i, f]
                b += X[u, f] * dY[i, f] + dX[u, f] * Y[i, f]
                c += dX[u, f] * dY[i, f]
            w = conf[n]
            e = target[n] - shift - a
            c0 += w * e * e - base * a * a
            c1 -= 2.0 * (w * e + base * a) * b
            c2 += w * (b * b - 2.0 * e * c) - base * (b * b + 2.0 * a * c)
            c3 += 2.0 * (w - base) * b * c
            c4 += (w - base) * c * c
        out[u, 0] = c0
        out[u, 1] = c1
        out[u, 2] = c2
        out[u, 3] = c3
        out[u, 4] = c4


def _predictors(state: np.ndarray, n_users: int, k: int, use_bias: bool, direction: bool) -> tuple[np.ndarray, ...]:
    """Users' and items' rows whose dot products are the predictions (less the global mean): the
    factors, extended to ``[x_u, b_u, 1]`` and ``[y_i, 1, b_i]`` with biases (a direction's
    constant column is 0)."""
    users, items = state[:n_users], state[n_users:]
    if not use_bias:
        return np.ascontiguousarray(users), np.ascontiguousarray(items)
    constant = 0.0 if direction else 1.0
    return (np.column_stack([users[:, :k], users[:, k], np.full(n_users, constant)]),
            np.column_stack([items[:, :k], np.full(len(items), constant), items[:, k]]))


def line_coefficients(cells: Cells, state: np.ndarray, direction: np.ndarray, n_users: int, k: int,
                      reg_u: np.ndarray, reg_i: np.ndarray, mean: float = 0.0, use_bias: bool = False,
                      workers: int = 1) -> np.ndarray:
    """The coefficients ``c_0 .. c_4`` of the objective along ``state + alpha direction``:
    ``f(alpha) = sum_j c_j alpha^j`` (states as :meth:`.sweeps.SweepEngine._state`; ``mean``: the
    global mean with ``use_bias``)."""
    X, Y = _predictors(state, n_users, k, use_bias, False)
    dX, dY = _predictors(direction, n_users, k, use_bias, True)
    indptr, indices, conf, target = cells.csr(0)
    rows = np.empty((n_users, 5))
    with kernel_workers(workers):
        _cell_coefficients(indptr, indices, conf, target, float(mean), X, Y, dX, dY, float(cells.base), rows)
    coefficients = rows.sum(axis=0)
    if cells.base:  # base |X(alpha) Y(alpha)^T|_F^2 over every cell, from k x k Gram products
        xx, xd, dd = X.T @ X, X.T @ dX, dX.T @ dX
        yy, yd, ee = Y.T @ Y, Y.T @ dY, dY.T @ dY
        coefficients += cells.base * np.array([
            np.sum(xx * yy), 2 * (np.sum(xd * yy) + np.sum(xx * yd)),
            np.sum(dd * yy) + 2 * np.sum(xd.T * yd) + np.sum(xx * ee) + 2 * np.sum(xd * yd),
            2 * (np.sum(dd * yd) + np.sum(xd * ee)), np.sum(dd * ee)])
    reg = np.concatenate([reg_u, reg_i])
    coefficients[:3] += [reg @ np.einsum("nk,nk->n", state, state), 2 * reg @ np.einsum("nk,nk->n", state, direction),
                         reg @ np.einsum("nk,nk->n", direction, direction)]
    return coefficients


def quartic_argmin(coefficients: np.ndarray) -> float:
    """The global minimiser over ``alpha >= 0`` of ``sum_j coefficients[j] alpha^j`` (0 when no
    positive step lowers it; the objective is bounded below, so the leading coefficient is >= 0)."""
    derivative = np.arange(1, 5) * coefficients[1:]
    candidates = [0.0]
    if np.any(derivative):
        roots = np.roots(derivative[::-1][np.argmax(derivative[::-1] != 0):])
        candidates += [float(r.real) for r in roots if r.real > 0 and abs(r.imag) <= 1e-9 * max(1.0, abs(r))]
    values = [np.polyval(coefficients[::-1], a) for a in candidates]
    return candidates[int(np.argmin(values))]


def gradient(cells: Cells, state: np.ndarray, n_users: int, k: int, reg_u: np.ndarray, reg_i: np.ndarray,
             mean: float = 0.0, use_bias: bool = False, workers: int = 1) -> np.ndarray:
    """Half the gradient of the objective at ``state`` (every row's residual ``A_row x_row - b_row``
    of its normal equations, :mod:`.residuals`), in the layout of the state."""
    users, items = state[:n_users], state[n_users:]
    out = np.empty_like(state)
    for axis, own, other, reg, rows in ((0, users, items, reg_u, slice(0, n_users)),
                                        (1, items, users, reg_i, slice(n_users, None))):
        indptr, indices, conf, target = cells.csr(axis)
        against = other[:, :k]
        if use_bias:  # [x_u, b_u] against [y_i, 1], targets less the mean and the other side's bias
            target = target - mean - other[indices, k]
            against = np.column_stack([against, np.ones(len(other))])
        wy = np.empty(own.shape)
        with kernel_workers(workers):
            _cell_gradient(indptr, indices, conf, target, np.ascontiguousarray(own), np.ascontiguousarray(against),
                           float(cells.base), wy)
        if cells.base:
            wy[:, :k] += cells.base * (own[:, :k] @ (other[:, :k].T @ other[:, :k]))
        out[rows] = wy + reg[:, None] * own
    return out


class NCG:
    """The conjugacy memory of ALS-NCG: the last direction, gradient and preconditioned gradient."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._direction = self._gradient = self._preconditioned = None

    def direction(self, preconditioned: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The next search direction from ``gbar = x - P(x)`` and the gradient at ``x``, remembered."""
        p = -preconditioned
        if self._direction is not None:
            beta = np.vdot(preconditioned, grad - self._gradient) / np.vdot(self._preconditioned, self._gradient)
            if np.isfinite(beta) and beta > 0:
                candidate = p + beta * self._direction
                if np.vdot(candidate, grad) < 0:  # a descent direction; else restart from -gbar
                    p = candidate
        self._direction, self._gradient, self._preconditioned = p, grad, preconditioned
        return p
