"""Evaluation metrics: AUC, MSE/accuracy on cells, and top-k overlap between models."""

from __future__ import annotations

import numpy as np


def _labels_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError("labels and scores must be 1-D arrays of equal length")
    if labels.size == 0:
        raise ValueError("labels is empty")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    return labels.astype(bool) if labels.dtype != bool else labels, scores


def auc(labels, scores) -> float:
    """Area under the ROC curve: the Mann-Whitney U with ties counted one half.

    U = sum over positives of (negatives scored lower + half the negatives scored equal), counted
    by binary search in the sorted negative scores: the same integer-and-half sum as with average
    ranks (so the same value), without importing ``scipy.stats`` (~1 s per workflow job) and ~5x
    faster than ranking (it runs after every ALS sweep)."""
    labels, scores = _labels_scores(labels, scores)
    positives, negatives = scores[labels], np.sort(scores[~labels])
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("labels must contain both classes for AUC")
    below = np.searchsorted(negatives, positives, side="left")
    tied = np.searchsorted(negatives, positives, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (positives.size * negatives.size))


def mse(labels, scores) -> float:
    """Mean squared error of ``scores`` against 0/1 ``labels``."""
    labels, scores = _labels_scores(labels, scores)
    return float(np.mean((scores - labels) ** 2))


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Share of cells where ``score > threshold`` agrees with the 0/1 label."""
    labels, scores = _labels_scores(labels, scores)
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
