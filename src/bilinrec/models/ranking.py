"""Rank statistics shared by the models and the experiments: the tie-aware AUC.

Here (not in :mod:`bilinrec.experiments`) so that the models' own audits
(:mod:`bilinrec.models.als.audit`) use the same AUC as the experiments without importing them.
"""

from __future__ import annotations

import numpy as np


def labels_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` as booleans and ``scores`` as float64, checked: 1-D, equal length, non-empty, finite."""
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
    labels, scores = labels_scores(labels, scores)
    positives, negatives = scores[labels], np.sort(scores[~labels])
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("labels must contain both classes for AUC")
    below = np.searchsorted(negatives, positives, side="left")
    tied = np.searchsorted(negatives, positives, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (positives.size * negatives.size))
