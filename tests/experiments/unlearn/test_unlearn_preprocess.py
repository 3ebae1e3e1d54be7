"""Binarisation, BM25 confidences and the synthetic low-rank matrix."""

import numpy as np
import pytest
import scipy.sparse as sp

from bilinrec.experiments.unlearn.preprocess import (
    binarize_ratings,
    bm25_weight,
    confidence_matrix,
    synthetic_low_rank_binary,
)


def _random_binary(rng, shape=(40, 30), density=0.2):
    mat = sp.random(*shape, density=density, random_state=rng, format="csr")
    mat.data[:] = 1.0
    return mat


def test_binarize_drops_low_ratings_and_keeps_shape():
    data = binarize_ratings(
        user=[0, 0, 1, 2], item=[0, 1, 1, 3], rating=[5, 2, 3, 1], timestamp=[10, 11, 0, 13], n_users=4, n_items=5
    )
    assert data.shape == (4, 5)
    assert data.binary.toarray().tolist() == [
        [1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert data.timestamps[0, 0] == 10 and data.timestamps[1, 1] == 0
    assert data.timestamps.nnz == data.binary.nnz  # a zero timestamp is still a stored entry


def test_binarize_rejects_duplicates_and_bad_shapes():
    with pytest.raises(ValueError, match="duplicate"):
        binarize_ratings(user=[0, 0], item=[1, 1], rating=[4, 5])
    with pytest.raises(ValueError, match="equal length"):
        binarize_ratings(user=[0, 1], item=[1], rating=[4, 5])


def test_bm25_matches_hand_formula():
    X = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]))
    K1, B = 100.0, 0.9
    W = bm25_weight(X, K1=K1, B=B).toarray()
    n = 3.0
    df = np.array([2, 3, 1])
    idf = np.log(n) - np.log1p(df)
    lengths = np.array([2.0, 1.0, 3.0])
    norm = (1 - B) + B * lengths / lengths.mean()
    expected = X.toarray() * (K1 + 1) / (K1 * norm[:, None] + 1.0) * idf[None, :]
    np.testing.assert_allclose(W, expected, rtol=1e-12)


def test_bm25_equals_implicit():
    import implicit.nearest_neighbours as nn
    rng = np.random.default_rng(0)
    X = _random_binary(rng, (60, 45), 0.15)
    ours = bm25_weight(X, K1=100, B=0.9).toarray()
    theirs = nn.bm25_weight(X, K1=100, B=0.9).toarray()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_confidence_schemes():
    rng = np.random.default_rng(1)
    X = _random_binary(rng)
    items = confidence_matrix(X, "bm25", scale=5, K1=100, B=0.9, bm25_rows="items")
    np.testing.assert_allclose(items.toarray(), 5 * bm25_weight(X.T, 100, 0.9).T.toarray(), rtol=1e-12)
    users = confidence_matrix(X, "bm25", scale=5, K1=100, B=0.9, bm25_rows="users")
    np.testing.assert_allclose(users.toarray(), 5 * bm25_weight(X, 100, 0.9).toarray(), rtol=1e-12)
    for conf in (items, users):
        assert conf.nnz == X.nnz and conf.data.min() > 0
    linear = confidence_matrix(X, "linear", alpha=40)
    assert set(np.unique(linear.data)) == {41.0}
    with pytest.raises(ValueError, match="scheme"):
        confidence_matrix(X, "tfidf")
    with pytest.raises(ValueError, match="bm25_rows"):
        confidence_matrix(X, bm25_rows="columns")


def test_synthetic_is_exactly_low_rank_threshold():
    rng = np.random.default_rng(2)
    data = synthetic_low_rank_binary(80, 60, rank=3, density=0.1, rng=rng)
    assert data.shape == (80, 60)
    assert abs(data.n_positives / (80 * 60) - 0.1) < 0.01
    # regenerate the planted scores: positives are exactly the cells above the threshold
    rng = np.random.default_rng(2)
    U, V = rng.standard_normal((80, 3)), rng.standard_normal((60, 3))
    scores = U @ V.T
    assert np.linalg.matrix_rank(scores) == 3
    pos = data.binary.toarray() > 0
    assert scores[pos].min() > scores[~pos].max()
    with pytest.raises(ValueError, match="density"):
        synthetic_low_rank_binary(10, 10, 2, 1.5, rng)
