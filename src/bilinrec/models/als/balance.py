"""Gauge balancing: the exact minimum of the regulariser over the factorisations of ``X Y^T``.

The loss part of the ALS objective depends on the factors only through ``X Y^T`` (and the
biases), so it is unchanged by ``X -> X A``, ``Y -> Y A^-T`` for any invertible ``A``; only the
regulariser ``|W_u^1/2 X|^2 + |W_i^1/2 Y|^2`` (``W`` the per-row weights) changes. At small
regularisation ALS moves along this near-flat direction very slowly. Its minimum over ``A`` has
a closed form (the balanced factorisation): with ``P = X^T W_u X = R_x^T R_x``, ``Q = Y^T W_i Y
= R_y^T R_y`` (Cholesky) and ``R_x R_y^T = U_s S V_s^T`` (SVD)::

    A = R_x^-1 U_s S^1/2 Q_r,     A^-T = R_y^-1 V_s S^1/2 Q_r,     regulariser -> 2 tr S

(``2 tr S`` is twice the weighted nuclear norm, a lower bound over all factorisations). The
orthogonal ``Q_r`` leaves the balance intact; it is chosen as the rotation that moves the factors
least (orthogonal Procrustes), so balancing is the identity at a balanced point. Every stationary
point of the objective is balanced (``X^T W_u X = Y^T W_i Y`` follows from the two gradient
conditions), so balancing after each sweep keeps the fixed points of ALS and never raises the
objective. Cost: a few ``(users + items) k^2`` products, a small fraction of a sweep.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular


def balance(X: np.ndarray, Y: np.ndarray, weights_x: np.ndarray, weights_y: np.ndarray) -> bool:
    """Replace the factors ``X``, ``Y`` (in place) by the factorisation of ``X Y^T`` with the
    least regulariser ``weights_x . |x_u|^2 + weights_y . |y_i|^2``; False (nothing changed) when
    a weighted Gram matrix is singular or rounding would not lower the regulariser."""
    X64, Y64 = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    gram_x, gram_y = X64.T @ X64, Y64.T @ Y64
    P, Q = _weighted_gram(X64, gram_x, weights_x), _weighted_gram(Y64, gram_y, weights_y)
    try:
        R_x, R_y = np.linalg.cholesky(P).T, np.linalg.cholesky(Q).T
    except np.linalg.LinAlgError:
        return False
    U_s, s, V_st = np.linalg.svd(R_x @ R_y.T)
    if not 2 * s.sum() < np.trace(P) + np.trace(Q):
        return False
    root = np.sqrt(s)
    A = solve_triangular(R_x, U_s * root)
    B = solve_triangular(R_y, V_st.T * root)
    # Procrustes: the rotation Q_r maximising tr(Q_r^T [(X A)^T X + (Y B)^T Y])
    a, _, bt = np.linalg.svd(A.T @ gram_x + B.T @ gram_y)
    rotation = a @ bt
    X[:] = X64 @ (A @ rotation)
    Y[:] = Y64 @ (B @ rotation)
    return True


def _weighted_gram(F: np.ndarray, gram: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``F^T diag(weights) F`` (from the plain Gram matrix when the weights are all equal)."""
    if np.all(weights == weights[0]):
        return weights[0] * gram
    return F.T @ (weights[:, None] * F)
