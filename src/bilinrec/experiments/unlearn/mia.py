"""Membership-inference audit: can an attacker who sees model scores spot deleted data?

Members are the deleted positives (trained on by the original model, forgotten by an
unlearned one); non-members are cells the model never trained on as positives (held-out
positives, or unobserved cells). An attack AUC near 0.5 means the scores reveal nothing.
"""

from __future__ import annotations

import numpy as np

from bilinrec.experiments.unlearn.metrics import auc


def balanced_indices(
    n_members: int, n_nonmembers: int, rng: np.random.Generator, max_per_class: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-size random subsets of members and non-members (at most ``max_per_class`` each)."""
    if n_members < 1 or n_nonmembers < 1:
        raise ValueError("need at least one member and one non-member")
    n = min(n_members, n_nonmembers, max_per_class or np.inf)
    n = int(n)
    return (
        np.sort(rng.choice(n_members, size=n, replace=False)),
        np.sort(rng.choice(n_nonmembers, size=n, replace=False)),
    )


def threshold_attack_auc(member_scores, nonmember_scores) -> float:
    """AUC of the attack "member if score > t" over all thresholds ``t``."""
    member_scores = np.asarray(member_scores, dtype=np.float64)
    nonmember_scores = np.asarray(nonmember_scores, dtype=np.float64)
    labels = np.r_[np.ones(member_scores.size), np.zeros(nonmember_scores.size)]
    return auc(labels, np.r_[member_scores, nonmember_scores])


def logistic_attack_auc(
    member_features, nonmember_features, seed: int, n_splits: int = 5
) -> float:
    """Cross-validated AUC of a logistic-regression attack on the given features.

    Features (rows = cells) are standardised inside each fold; the AUC is computed on the
    out-of-fold probabilities, so it measures what the attack learns, not what it memorises.
    """
    member_features = np.atleast_2d(np.asarray(member_features, dtype=np.float64))
    nonmember_features = np.atleast_2d(np.asarray(nonmember_features, dtype=np.float64))
    if member_features.shape[1] != nonmember_features.shape[1]:
        raise ValueError("member and non-member features must have the same columns")
    X = np.vstack([member_features, nonmember_features])
    y = np.r_[np.ones(len(member_features)), np.zeros(len(nonmember_features))]
    if min(len(member_features), len(nonmember_features)) < n_splits:
        raise ValueError(f"need at least n_splits={n_splits} cells per class")
    # imported here: scikit-learn takes ~0.5 s to import, and most workflow jobs that import
    # this package (through bilinrec.experiments.unlearn.experiment) never run an attack
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, X, y, cv=folds, method="predict_proba")[:, 1]
    return auc(y, proba)


def attack_features(scores, users, items, user_activity, item_popularity) -> np.ndarray:
    """Attack features per cell: score, log(1 + user activity), log(1 + item popularity)."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    return np.column_stack(
        [
            np.asarray(scores, dtype=np.float64),
            np.log1p(np.asarray(user_activity, dtype=np.float64)[users]),
            np.log1p(np.asarray(item_popularity, dtype=np.float64)[items]),
        ]
    )
