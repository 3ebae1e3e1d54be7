"""Recovery and prediction metrics of the linear low-rank + sparse experiments."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["normalized_error", "subspace_distance", "support_precision_recall", "mse"]


def _dense(B) -> np.ndarray:
    return B.toarray() if sp.issparse(B) else np.asarray(B, dtype=np.float64)


def normalized_error(theta_hat, theta) -> float:
    """``||Theta_hat - Theta*||_F / ||Theta*||_F`` over all users' parameter vectors."""
    theta_hat, theta = np.asarray(theta_hat, dtype=np.float64), np.asarray(theta, dtype=np.float64)
    if theta_hat.shape != theta.shape:
        raise ValueError(f"theta_hat has shape {theta_hat.shape}, theta has {theta.shape}")
    norm = np.linalg.norm(theta)
    if norm == 0:
        raise ValueError("theta is all zero; the normalised error is undefined")
    return float(np.linalg.norm(theta_hat - theta) / norm)


def subspace_distance(U_hat, U) -> float:
    """``||(I - U_hat U_hat^T) U*||_2`` for orthonormal ``U_hat`` (d, r') and ``U*`` (d, r)."""
    U_hat, U = np.asarray(U_hat, dtype=np.float64), np.asarray(U, dtype=np.float64)
    if U_hat.shape[0] != U.shape[0]:
        raise ValueError(f"U_hat has {U_hat.shape[0]} rows, U has {U.shape[0]}")
    return float(np.linalg.norm(U - U_hat @ (U_hat.T @ U), 2))


def support_precision_recall(B_hat, B) -> tuple[float, float]:
    """Precision and recall of the non-zero pattern of ``B_hat`` against ``B`` (both t x d),
    pooled over users. Precision is 1 when nothing is predicted, recall 1 when ``B`` is 0."""
    pred, true = _dense(B_hat) != 0, _dense(B) != 0
    if pred.shape != true.shape:
        raise ValueError(f"B_hat has shape {pred.shape}, B has {true.shape}")
    hits = np.count_nonzero(pred & true)
    n_pred, n_true = np.count_nonzero(pred), np.count_nonzero(true)
    return (hits / n_pred if n_pred else 1.0), (hits / n_true if n_true else 1.0)


def mse(y_hat, y) -> float:
    """Mean squared error."""
    y_hat, y = np.asarray(y_hat, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat has shape {y_hat.shape}, y has {y.shape}")
    return float(np.mean((y_hat - y) ** 2))
