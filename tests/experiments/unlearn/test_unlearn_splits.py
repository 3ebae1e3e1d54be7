"""Held-out split and deletion strategies select the right cells in the right amounts."""

import numpy as np
import pytest
import scipy.sparse as sp

from bilinrec.experiments.unlearn.splits import (
    STRATEGIES,
    CellSet,
    holdout_split,
    remove_cells,
    select_deletions,
)


def _skewed_binary(seed=0, n_users=200, n_items=150):
    """Users with very different activity and items with very different popularity."""
    rng = np.random.default_rng(seed)
    activity = rng.pareto(1.5, n_users) + 0.05
    popularity = rng.pareto(1.2, n_items) + 0.05
    prob = np.clip(np.outer(activity, popularity) / 8.0, 0, 0.9)
    dense = (rng.random((n_users, n_items)) < prob).astype(float)
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] = 1.0  # every user active
    return sp.csr_matrix(dense)


def _pairs(cells: CellSet, shape):
    return set(cells.flat(shape).tolist())


def test_holdout_covers_all_cells_uniformly_and_zeroes_positives():
    binary = _skewed_binary()
    held = holdout_split(binary, 0.05, np.random.default_rng(3))
    n_cells = binary.shape[0] * binary.shape[1]
    assert len(held.cells) == round(0.05 * n_cells)
    flat = held.cells.flat(binary.shape)
    assert np.unique(flat).size == flat.size  # without replacement
    truth = binary.toarray()[held.cells.users, held.cells.items]
    np.testing.assert_array_equal(held.labels, truth)
    # both classes are held out, in about the proportion of the whole matrix
    density = binary.nnz / n_cells
    assert 0 < held.labels.sum() < held.labels.size
    assert abs(held.labels.mean() - density) < 4 * np.sqrt(density / held.labels.size)
    # training keeps every positive except the held-out ones
    train = held.train.toarray()
    assert train[held.cells.users, held.cells.items].sum() == 0
    assert held.train.nnz == binary.nnz - held.labels.sum()
    assert (train <= binary.toarray()).all()


def test_holdout_is_reproducible_and_validates():
    binary = _skewed_binary()
    a = holdout_split(binary, 0.01, np.random.default_rng(5))
    b = holdout_split(binary, 0.01, np.random.default_rng(5))
    np.testing.assert_array_equal(a.cells.flat(binary.shape), b.cells.flat(binary.shape))
    with pytest.raises(ValueError, match="fraction"):
        holdout_split(binary, 0.0, np.random.default_rng(0))


def test_remove_cells_ignores_unstored_cells():
    mat = sp.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0]]))
    out = remove_cells(mat, CellSet(users=np.array([0, 1]), items=np.array([1, 1])))
    assert out.toarray().tolist() == [[1.0, 0.0], [2.0, 0.0]]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deletions_are_training_positives(strategy):
    train = _skewed_binary(1)
    cells = select_deletions(train, strategy, 0.1, np.random.default_rng(0))
    assert len(cells) > 0
    assert (train.toarray()[cells.users, cells.items] == 1).all()
    assert len(_pairs(cells, train.shape)) == len(cells)


def test_uniform_and_history_delete_the_fraction_of_all_positives():
    train = _skewed_binary(2)
    for strategy in ("uniform", "user_history"):
        for fraction in (0.01, 0.05, 0.2):
            cells = select_deletions(train, strategy, fraction, np.random.default_rng(1))
            assert len(cells) == round(fraction * train.nnz)


def test_user_quantile_strategies_stay_in_their_group():
    train = _skewed_binary(3)
    counts = np.asarray(train.sum(axis=1)).ravel()
    order = np.lexsort((np.arange(counts.size), counts))
    n_group = round(0.1 * counts.size)
    top, bottom = set(order[-n_group:]), set(order[:n_group])
    top_cells = select_deletions(train, "user_top", 0.2, np.random.default_rng(0))
    bottom_cells = select_deletions(train, "user_bottom", 0.2, np.random.default_rng(0))
    assert set(top_cells.users.tolist()) <= top
    assert set(bottom_cells.users.tolist()) <= bottom
    assert len(top_cells) == round(0.2 * counts[list(top)].sum())
    assert len(bottom_cells) == round(0.2 * counts[list(bottom)].sum())


def test_item_quantile_strategies_stay_in_their_group():
    train = _skewed_binary(4)
    counts = np.asarray(train.sum(axis=0)).ravel()
    active = np.flatnonzero(counts > 0)
    ranked = active[np.lexsort((active, counts[active]))]
    n_group = round(0.1 * active.size)
    top_cells = select_deletions(train, "item_top", 0.1, np.random.default_rng(0))
    bottom_cells = select_deletions(train, "item_bottom", 0.5, np.random.default_rng(0))
    assert set(top_cells.items.tolist()) <= set(ranked[-n_group:])
    assert set(bottom_cells.items.tolist()) <= set(ranked[:n_group])
    assert counts[top_cells.items].min() > np.median(counts[active])


def test_user_history_forgets_the_most_recent_part_of_few_users():
    rng = np.random.default_rng(6)
    train = _skewed_binary(5)
    stamps = train.copy()
    stamps.data = rng.permutation(stamps.nnz).astype(float)  # distinct timestamps
    cells = select_deletions(train, "user_history", 0.05, np.random.default_rng(2), history_share=0.5, timestamps=stamps)
    users = np.unique(cells.users)
    assert users.size < train.shape[0] / 2  # only some users forget
    dense_t = stamps.toarray()
    deleted = np.zeros(train.shape, bool)
    deleted[cells.users, cells.items] = True
    for user in users:
        kept_t = dense_t[user][(train[user].toarray().ravel() > 0) & ~deleted[user]]
        if kept_t.size:
            assert dense_t[user][deleted[user]].min() > kept_t.max()  # newest ones are gone


def test_select_deletions_validates_arguments():
    train = _skewed_binary()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="strategy"):
        select_deletions(train, "random", 0.1, rng)
    with pytest.raises(ValueError, match="fraction"):
        select_deletions(train, "uniform", 1.5, rng)
    with pytest.raises(ValueError, match="quantile"):
        select_deletions(train, "user_top", 0.1, rng, quantile=0)
    with pytest.raises(ValueError, match="deletes nothing"):
        select_deletions(train, "uniform", 1e-9, rng)
