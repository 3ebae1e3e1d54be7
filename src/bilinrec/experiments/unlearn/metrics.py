"""Evaluation metrics: AUC (:func:`bilinrec.models.ranking.auc`), MSE/accuracy on cells, and top-k
overlap between models."""

from __future__ import annotations

import numpy as np

from bilinrec.models.ranking import auc, labels_scores

__all__ = ["accuracy", "auc", "jaccard", "mse"]


def mse(labels, scores) -> float:
    """Mean squared error of ``scores`` against 0/1 ``labels``."""
    labels, scores = labels_scores(labels, scores)
    return float(np.mean((scores - labels) ** 2))


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Share of cells where ``score > threshold`` agrees with the 0/1 label."""
    labels, scores = labels_scores(labels, scores)
    return float(np.mean((scores > threshold) == labels))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of the Jaccard index of the index sets ``a[r]`` and ``b[r]``.

    Rows must hold distinct indices (as returned by :func:`top_k`).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or a.shape[0] != b.shape[0] or b.ndim != 2:
        raise ValueError("a and b must be 2-D with the same number of rows")
    width = int(max(a.max(initial=0), b.max(initial=0))) + 1
    rows = np.arange(a.shape[0], dtype=np.int64)[:, None]
    in_b = np.zeros((a.shape[0], width), dtype=bool)  # row r marks b[r]: O(rows x (width + k)), no sort
    in_b[rows, b] = True
    shared = in_b[rows, a].sum(axis=1)
    union = a.shape[1] + b.shape[1] - shared
    return float(np.mean(shared / union))
