"""Metrics and membership-inference attacks on hand-checkable inputs."""

import numpy as np
import pytest
import scipy.sparse as sp

from bilinrec.experiments.unlearn.metrics import accuracy, auc, jaccard, mse
from bilinrec.experiments.unlearn.mia import (
    attack_features,
    balanced_indices,
    logistic_attack_auc,
    threshold_attack_auc,
)
from bilinrec.models.als import recommend, similar, top_k


def test_auc_hand_values():
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    # one of four positive/negative pairs is misordered; a tie counts one half
    assert auc([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]) == 0.75
    assert auc([0, 1], [0.5, 0.5]) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        auc([1, 1], [0.1, 0.2])


def test_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.normal(size=500) + labels, 1)  # many ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_auc_is_exactly_the_average_rank_statistic():
    # the counting form must give the very value of Mann-Whitney with average ranks (scipy), ties included
    from scipy.stats import rankdata

    rng = np.random.default_rng(1)
    for n, decimals in ((50, 0), (2000, 1), (20000, 3)):
        labels = rng.random(n) < 0.2
        scores = np.round(rng.normal(size=n) + labels, decimals)
        n_pos = int(labels.sum())
        by_ranks = (rankdata(scores)[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
        assert auc(labels, scores) == by_ranks


def test_mse_and_accuracy():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.2, 0.4, 0.6])
    assert mse(labels, scores) == pytest.approx((0.01 + 0.04 + 0.36 + 0.36) / 4)
    assert accuracy(labels, scores) == 0.5
    with pytest.raises(ValueError, match="NaN"):
        mse(labels, np.array([0.1, np.nan, 0.2, 0.3]))


def test_top_k_exclusions_and_ties():
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    keys = np.array([[3.0, 0.0], [2.0, 2.0], [1.0, 3.0], [3.0, 0.0]])
    np.testing.assert_array_equal(top_k(queries, keys, 2), [[0, 3], [2, 1]])  # tie -> lower index
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 1, 0]]))
    np.testing.assert_array_equal(top_k(queries, keys, 2, exclude=exclude), [[3, 1], [1, 0]])
    np.testing.assert_array_equal(top_k(queries, keys, 1, batch_size=1), [[0], [2]])


def test_top_k_ties_at_the_cut_go_to_the_smaller_index():
    # argpartition alone picks arbitrary members of a tie at the k-th score: a zero query ties all
    # keys, a user with fewer than k allowed items ties the excluded ones at -inf; and a short list
    # must be the prefix of a long one
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(300, 4))
    queries = np.vstack([np.zeros(4), rng.normal(size=(5, 4))])
    for k in (1, 7, 50):
        got = top_k(queries, keys, k)
        np.testing.assert_array_equal(got[0], np.arange(k))
        for r in range(1, 6):
            np.testing.assert_array_equal(got[r], np.argsort(-(keys @ queries[r]), kind="stable")[:k])
    np.testing.assert_array_equal(top_k(queries, keys, 50)[:, :7], top_k(queries, keys, 7))
    exclude = sp.csr_matrix(np.vstack([np.zeros(300), np.r_[np.zeros(3), np.ones(297)]] + [np.zeros(300)] * 4))
    got = top_k(queries, keys, 10, exclude=exclude)
    np.testing.assert_array_equal(got[1, 3:], np.arange(3, 10))  # 3 allowed items, then excluded by index
    assert set(got[1, :3]) == {0, 1, 2}


def test_similar_excludes_self_and_uses_cosine():
    factors = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    nn = similar(factors, 1)
    np.testing.assert_array_equal(nn.ravel(), [1, 0, 3, 1])
    with pytest.raises(ValueError, match="k must be"):
        similar(factors, 4)


def test_recommend_and_jaccard():
    users = np.eye(2)
    items = np.array([[5.0, 0.0], [4.0, 1.0], [0.0, 3.0], [1.0, 2.0]])
    recs = recommend(users, items, 2, exclude=sp.csr_matrix((2, 4)))
    np.testing.assert_array_equal(recs, [[0, 1], [2, 3]])
    assert jaccard(recs, recs) == 1.0
    assert jaccard(np.array([[0, 1]]), np.array([[2, 3]])) == 0.0
    assert jaccard(np.array([[0, 1], [0, 1]]), np.array([[1, 2], [0, 1]])) == pytest.approx((1 / 3 + 1) / 2)


def test_threshold_attack_on_separable_and_identical_scores():
    assert threshold_attack_auc([2.0, 3.0, 4.0], [0.0, 1.0]) == 1.0
    rng = np.random.default_rng(0)
    same = rng.normal(size=4000)
    assert abs(threshold_attack_auc(same[:2000], same[2000:]) - 0.5) < 0.04


def test_logistic_attack_on_separable_and_identical_features():
    rng = np.random.default_rng(1)
    members = rng.normal(size=(300, 3)) + np.array([3.0, 0.0, 0.0])
    nonmembers = rng.normal(size=(300, 3))
    assert logistic_attack_auc(members, nonmembers, seed=0) > 0.97
    same = rng.normal(size=(600, 3))
    assert abs(logistic_attack_auc(same[:300], same[300:], seed=0) - 0.5) < 0.08


def test_attack_features_and_balancing():
    feats = attack_features([0.5, 0.1], [0, 1], [1, 0], user_activity=[3, 0], item_popularity=[7, 1])
    np.testing.assert_allclose(feats, [[0.5, np.log(4), np.log(2)], [0.1, 0.0, np.log(8)]])
    members, nonmembers = balanced_indices(10, 4, np.random.default_rng(0))
    assert members.size == nonmembers.size == 4 and np.unique(members).size == 4
    members, nonmembers = balanced_indices(10, 40, np.random.default_rng(0), max_per_class=3)
    assert members.size == nonmembers.size == 3
