"""ALS-NCG: nonlinear conjugate gradients preconditioned by ALS sweeps, with exact searches.

Winlaw, Hynes, Caterini and De Sterck (arXiv 1508.03110) accelerate ALS for matrix factorisation
by using the ALS sweep as the nonlinear preconditioner of conjugate gradients. With ``x`` the
state (users' then items' parameters) and ``P(x)`` one ALS sweep from ``x`` followed by gauge
balancing (:mod:`.balance`), their iteration steps along ``p_k = (P(x_k) - x_k) + beta_k p_{k-1}``
with ``beta_k`` from a conjugacy formula (Polak-Ribiere) and a line search for the step length.
Here ``beta`` and the step length are chosen together, exactly: the new point is the lowest point
of the plane::

    x_{k+1} = x_k + a (P(x_k) - x_k) + b s_{k-1},    s_{k-1} = x_k - x_{k-1} (the last step)

which holds every point the conjugate-gradient step could reach (``beta = b / (a alpha_{k-1})``),
so no gradient is needed. After a restart (the first iteration, a rejected step) there is no last
step and the search is along ``P(x_k) - x_k`` alone.

The searches are exact: the prediction ``(x_u + a dx_u + b ex_u) . (y_i + a dy_i + b ey_i)`` is
quadratic in ``(a, b)``, so the objective is a polynomial of degree 4 over any plane (15
coefficients, :func:`plane_coefficients`) or line (5, :func:`line_coefficients`), each one pass
over the stored cells plus Gram products of the factors. The line's minimiser over ``a >= 0`` is
found from the roots of its derivative (:func:`quartic_argmin`), the plane's by BFGS from the
preconditioned step ``(1, 0)`` and from the lowest grid minima (:func:`plane_argmin`).

The safeguard: the new point's objective (evaluated, not taken from the polynomial) must not
exceed the objective of ``P(x)``, the point plain (balanced) ALS would have reached; otherwise the
step is replaced by ``P(x)`` and the memory cleared. So every iteration does at least as well as a
balanced ALS sweep, the objective never rises, and the fixed points are ALS's (at a fixed point
``P(x) = x``).

Measured on ml-100k at 100 factors and lambda = 0.01 (``benchmarks/bench_converge.py``,
``docs/benchmarks.md``): retraining reaches 1e-6 of the converged objective in 74-131 sweep
equivalents from six random starts (an iteration costs ~1.35), against 84-152 with the
Polak-Ribiere direction and a line search, and 115-307 for balanced Anderson from five of them
(from the sixth it stops at another fixed point). Balancing is what makes it work: with the plain
sweep as preconditioner the Polak-Ribiere iteration took 398 iterations where it took 110.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from scipy.optimize import minimize

from ..fastmath import FASTMATH
from .cells import Cells
from .threads import kernel_workers


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



#: The monomials ``a^i b^j`` (i + j <= 4) of the objective over a plane ``x + a d_1 + b d_2``, by degree.
PLANE_EXPONENTS = np.array([(n - j, j) for n in range(5) for j in range(n + 1)])
#: A prediction over the plane is quadratic: its monomials ``1, a, b, a^2, ab, b^2``.
_QUADRATIC = PLANE_EXPONENTS[:6]
#: Where the product of two quadratic monomials lands among ``PLANE_EXPONENTS``.
_PRODUCT = np.array([[int(np.flatnonzero((PLANE_EXPONENTS == p + q).all(axis=1))[0]) for q in _QUADRATIC]
                     for p in _QUADRATIC])


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=FASTMATH)
def _cell_plane_coefficients(indptr, indices, conf, target, shift, X, Y, dX1, dY1, dX2, dY2, base, product,
                             out):  # pragma: no cover - compiled
    # out[u] = the coefficients (PLANE_EXPONENTS) of row u's cell terms sum_n conf_n e_n(a, b)^2 - base s_n(a, b)^2,
    # s_n = the prediction over the plane (quadratic in a, b), e_n = target_n - shift - s_n
    k = X.shape[1]
    for u in numba.prange(X.shape[0]):
        acc = np.zeros(out.shape[1])
        s = np.empty(6)
        for n in range(indptr[u], indptr[u + 1]):
            i = indices[n]
            a = b1 = b2 = c11 = c12 = c22 = 0.0
            for f in range(k):
                a += X[u, f] * Y[i, f]
                b1 += X[u, f] * dY1[i, f] + dX1[u, f] * Y[i, f]
                b2 += X[u, f] * dY2[i, f] + dX2[u, f] * Y[i, f]
                c11 += dX1[u, f] * dY1[i, f]
                c12 += dX1[u, f] * dY2[i, f] + dX2[u, f] * dY1[i, f]
                c22 += dX2[u, f] * dY2[i, f]
            s[0], s[1], s[2], s[3], s[4], s[5] = a, b1, b2, c11, c12, c22
            w = conf[n]
            e0 = target[n] - shift - a
            for p in range(6):
                ep = e0 if p == 0 else -s[p]
                for q in range(6):
                    eq = e0 if q == 0 else -s[q]
                    acc[product[p, q]] += w * ep * eq - base * s[p] * s[q]
        for j in range(out.shape[1]):
            out[u, j] = acc[j]


def plane_coefficients(cells: Cells, state: np.ndarray, first: np.ndarray, second: np.ndarray, n_users: int, k: int,
                       reg_u: np.ndarray, reg_i: np.ndarray, mean: float = 0.0, use_bias: bool = False,
                       workers: int = 1) -> np.ndarray:
    """The coefficients of the objective over the plane ``state + a first + b second``:
    ``f(a, b) = sum_m c_m a^i_m b^j_m`` with ``(i_m, j_m) = PLANE_EXPONENTS[m]`` (arguments as
    :func:`line_coefficients`). One pass over the stored cells and the Gram products of the
    stacked ``[x, first, second]`` factors."""
    sides = [_predictors(v, n_users, k, use_bias, direction) for v, direction in
             ((state, False), (first, True), (second, True))]
    (X, Y), (dX1, dY1), (dX2, dY2) = sides
    indptr, indices, conf, target = cells.csr(0)
    rows = np.empty((n_users, len(PLANE_EXPONENTS)))
    with kernel_workers(workers):
        _cell_plane_coefficients(indptr, indices, conf, target, float(mean), X, Y, dX1, dY1, dX2, dY2,
                                 float(cells.base), _PRODUCT, rows)
    coefficients = rows.sum(axis=0)
    linear = PLANE_EXPONENTS[:3]  # the monomials 1, a, b of the three parts [x, first, second]
    if cells.base:  # base |X(a, b) Y(a, b)^T|_F^2 over every cell, from the Gram products of the parts
        width = X.shape[1]
        users = np.hstack([X, dX1, dX2])
        items = np.hstack([Y, dY1, dY2])
        gram_u = (users.T @ users).reshape(3, width, 3, width).transpose(0, 2, 1, 3)
        gram_i = (items.T @ items).reshape(3, width, 3, width).transpose(0, 2, 1, 3)
        # |sum_pq m_p m_q A_p B_q^T|^2 = sum_{p q p' q'} m_p m_q m_p' m_q' <A_p^T A_p', B_q^T B_q'>
        inner = np.einsum("acij,bdij->abcd", gram_u, gram_i)
        for (p, q, r, t), value in np.ndenumerate(inner):
            exponent = linear[p] + linear[q] + linear[r] + linear[t]
            coefficients[_index(exponent)] += cells.base * value
    reg = np.concatenate([reg_u, reg_i])
    parts = (state, first, second)
    for p in range(3):
        for q in range(3):
            coefficients[_index(linear[p] + linear[q])] += reg @ np.einsum("nk,nk->n", parts[p], parts[q])
    return coefficients


def _index(exponent: np.ndarray) -> int:
    """The position of the monomial ``a^i b^j`` (``exponent = (i, j)``) in ``PLANE_EXPONENTS``."""
    return int((exponent.sum() * (exponent.sum() + 1)) // 2 + exponent[1])


def plane_value(coefficients: np.ndarray, a: float, b: float) -> float:
    """``f(a, b)`` from :func:`plane_coefficients`."""
    return float(coefficients @ (a ** PLANE_EXPONENTS[:, 0] * b ** PLANE_EXPONENTS[:, 1]))


#: The grid over which :func:`plane_argmin` looks for the basins of a plane polynomial.
PLANE_GRID = np.linspace(-10.0, 10.0, 201)


@functools.cache
def _grid_monomials() -> np.ndarray:
    """Every plane monomial at every point of ``PLANE_GRID`` x ``PLANE_GRID`` (15 x 201 x 201)."""
    A, B = np.meshgrid(PLANE_GRID, PLANE_GRID, indexing="ij")
    return np.stack([A ** i * B ** j for i, j in PLANE_EXPONENTS])


def plane_argmin(coefficients: np.ndarray, starts: int = 8) -> tuple[float, float]:
    """The lowest minimiser of ``f(a, b)`` found by BFGS from ``(1, 0)`` (the preconditioned step
    alone, so the result is never worse than it) and from the ``starts`` lowest local minima of
    ``f`` on ``PLANE_GRID`` (spacing 0.1 over [-10, 10]^2: the basins of a quartic's minima there).
    The objective is bounded below and, with ``lambda > 0``, grows at least quadratically, so
    every run ends."""
    E = PLANE_EXPONENTS

    def value(z):
        return plane_value(coefficients, z[0], z[1])

    def slope(z):
        a, b = z
        da = np.where(E[:, 0] > 0, E[:, 0] * a ** np.maximum(E[:, 0] - 1, 0) * b ** E[:, 1], 0.0)
        db = np.where(E[:, 1] > 0, E[:, 1] * a ** E[:, 0] * b ** np.maximum(E[:, 1] - 1, 0), 0.0)
        return np.array([coefficients @ da, coefficients @ db])

    grid = np.tensordot(coefficients, _grid_monomials(), axes=1)
    inner = grid[1:-1, 1:-1]
    lowest = np.ones(inner.shape, bool)
    for da in (-1, 0, 1):
        for db in (-1, 0, 1):
            if da or db:
                lowest &= inner <= grid[1 + da:grid.shape[0] - 1 + da, 1 + db:grid.shape[1] - 1 + db]
    rows, cols = np.nonzero(lowest)
    order = np.argsort(inner[rows, cols], kind="stable")[:starts]
    candidates = [(1.0, 0.0)] + [(PLANE_GRID[r + 1], PLANE_GRID[c + 1]) for r, c in zip(rows[order], cols[order])]
    best = (value((1.0, 0.0)), (1.0, 0.0))
    for start in candidates:
        result = minimize(value, np.array(start), jac=slope, method="BFGS", options={"gtol": 1e-12, "maxiter": 500})
        if np.all(np.isfinite(result.x)) and result.fun < best[0]:
            best = (float(result.fun), (float(result.x[0]), float(result.x[1])))
    return best[1]


class NCG:
    """The memory of ALS-NCG: the last step taken (None after a restart)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.step = None
