"""The synthetic-ml generator: deterministic per seed, with its documented statistics."""

from __future__ import annotations

import numpy as np
import pytest

from bilinrec.data import SyntheticConfig, generate

SMALL = SyntheticConfig(n_users=300, n_items=400, n_ratings=20_000, rank=4, sparse_per_user=3,
                        min_ratings_per_user=10)


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = generate(SMALL, 7), generate(SMALL, 7), generate(SMALL, 8)
    for field in ("user", "item", "rating", "timestamp"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.truth.user_factors, b.truth.user_factors)
    assert not np.array_equal(a.item, c.item)


def test_counts_scale_and_distinct_pairs():
    d = generate(SMALL, 1)
    assert len(d.rating) == SMALL.n_ratings
    assert set(np.unique(d.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    per_user = np.bincount(d.user, minlength=SMALL.n_users)
    assert per_user.min() >= SMALL.min_ratings_per_user
    assert per_user.max() <= SMALL.max_ratings_per_user
    assert len(np.unique(d.user * SMALL.n_items + d.item)) == len(d.rating)
    assert d.item.max() + 1 == len(d.item_ids) == d.truth.item_factors.shape[0] == len(np.unique(d.item))


def test_power_law_activity_and_popularity():
    d = generate(SyntheticConfig(), 3)
    per_user = np.bincount(d.user)
    per_item = np.sort(np.bincount(d.item))[::-1]
    # ML-100k: median user 65, 95% quantile 311, max 737; the generator's default is close.
    assert 40 <= np.median(per_user) <= 90
    assert np.quantile(per_user, 0.95) / np.median(per_user) > 3
    # Zipf(1) popularity: the top 10% of items carry far more than 10% of the ratings.
    assert per_item[: len(per_item) // 10].sum() / per_item.sum() > 0.3
    heavier = generate(SyntheticConfig(item_popularity_exponent=1.5), 3)
    heavy_items = np.sort(np.bincount(heavier.item))[::-1]
    assert heavy_items[:170].sum() / heavy_items.sum() > per_item[:170].sum() / per_item.sum()


def test_planted_low_rank_plus_sparse_truth_explains_the_ratings():
    d = generate(SMALL, 2)
    t = d.truth
    assert t.user_factors.shape == (SMALL.n_users, SMALL.rank) and t.item_factors.shape[1] == SMALL.rank
    assert np.linalg.matrix_rank(t.user_factors @ t.item_factors.T) == SMALL.rank
    # exactly sparse_per_user deviations per user, all on items the user rated
    np.testing.assert_array_equal(np.bincount(t.sparse_user, minlength=SMALL.n_users), SMALL.sparse_per_user)
    rated = set(zip(d.user.tolist(), d.item.tolist()))
    assert all((u, i) in rated for u, i in zip(t.sparse_user.tolist(), t.sparse_item.tolist()))
    assert np.all(np.abs(t.sparse_value) >= 0.5 * SMALL.sparse_magnitude)
    score = t.score(d.user, d.item)
    low_rank_only = t.mean + np.einsum("nr,nr->n", t.user_factors[d.user], t.item_factors[d.item])
    assert np.count_nonzero(score != low_rank_only) == len(t.sparse_value)
    inside = (score > 1.5) & (score < 4.5)  # away from the clipped ends, rounding error is at most 0.5 + noise
    assert np.abs(d.rating[inside] - score[inside]).mean() < 0.5
    assert np.corrcoef(score, d.rating)[0, 1] > 0.8


def test_noise_free_ratings_are_rounded_scores():
    d = generate(SyntheticConfig(**{**SMALL.__dict__, "noise": 0.0}), 4)
    np.testing.assert_array_equal(d.rating, np.clip(np.rint(d.truth.score(d.user, d.item)), 1, 5))


@pytest.mark.parametrize(
    "override, key",
    [({"n_ratings": 100}, "n_ratings"), ({"sparse_per_user": 50}, "sparse_per_user"),
     ({"max_user_fraction": 0.0}, "max_user_fraction"), ({"noise": -1.0}, "noise")],
)
def test_invalid_config_names_the_key(override, key):
    with pytest.raises(ValueError, match=f"data.synthetic_ml.{key}"):
        SyntheticConfig.from_mapping({**SMALL.__dict__, **override})


def test_unknown_config_key():
    with pytest.raises(ValueError, match="unknown keys \\['n_user'\\]"):
        SyntheticConfig.from_mapping({"n_user": 3})
