"""``synthetic-ml``: a MovieLens-style ratings matrix with a planted low-rank + user-sparse truth.

Generation (all draws from one seeded generator, so a seed fixes the output exactly):

* user activity: every user rates ``min_ratings_per_user`` items plus a share of the remaining
  budget proportional to a Lomax/Pareto-II(``user_activity_exponent``) weight (a power-law long
  tail), capped at ``max_user_fraction * n_items``; the total is exactly ``n_ratings``;
* item popularity: Zipf weights ``rank**-item_popularity_exponent`` over a random item order;
  each user draws distinct items with these weights (Gumbel top-k sampling without replacement);
* scores: ``mean_rating + a_u . v_i + s_ui`` with rank-``rank`` Gaussian factors scaled so the
  low-rank part has standard deviation ``signal_std``, and per user a ``sparse_per_user``-sparse
  deviation ``s_u`` on items the user rated (random sign, magnitude uniform in
  [sparse_magnitude/2, 3 sparse_magnitude/2]); a rating is the score plus Gaussian ``noise``,
  rounded and clipped to 1..5 stars.

The planted parts are returned as :class:`GroundTruth` so both papers' methods can be scored
against the truth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

#: ML-100k's rating window (Sep 1997 - Apr 1998), used for synthetic timestamps.
_T0, _T1 = 874_724_710, 893_286_638


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the generator (config ``data.synthetic_ml``)."""

    n_users: int = 1000
    n_items: int = 1700
    n_ratings: int = 100_000
    rank: int = 8
    sparse_per_user: int = 5
    user_activity_exponent: float = 3.0
    item_popularity_exponent: float = 1.0
    min_ratings_per_user: int = 20
    max_user_fraction: float = 0.5
    noise: float = 0.3
    mean_rating: float = 3.5
    signal_std: float = 0.9
    sparse_magnitude: float = 1.5

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "SyntheticConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"data.synthetic_ml: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**values).validated()

    @property
    def max_ratings_per_user(self) -> int:
        return int(self.max_user_fraction * self.n_items)

    def validated(self) -> "SyntheticConfig":
        checks = {
            "n_users": self.n_users >= 1,
            "n_items": self.n_items >= 1,
            "rank": self.rank >= 1,
            "min_ratings_per_user": 1 <= self.min_ratings_per_user <= self.n_items,
            "max_user_fraction": 0 < self.max_user_fraction <= 1
            and self.min_ratings_per_user <= self.max_ratings_per_user,
            "n_ratings": self.n_users * self.min_ratings_per_user
            <= self.n_ratings
            <= self.n_users * self.max_ratings_per_user,
            "sparse_per_user": 0 <= self.sparse_per_user <= self.min_ratings_per_user,
            "user_activity_exponent": self.user_activity_exponent > 0,
            "item_popularity_exponent": self.item_popularity_exponent >= 0,
            "noise": self.noise >= 0,
            "signal_std": self.signal_std >= 0,
            "sparse_magnitude": self.sparse_magnitude >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                f"data.synthetic_ml.{bad[0]}: invalid value {getattr(self, bad[0])!r} for {asdict(self)} "
                "(need n_users*min_ratings_per_user <= n_ratings <= n_users*max_ratings_per_user, "
                "sparse_per_user <= min_ratings_per_user <= max_ratings_per_user)"
            )
        return self


@dataclass(frozen=True)
class GroundTruth:
    """The planted model, indexed like the generated ratings (0-based users and items)."""

    mean: float
    user_factors: np.ndarray  # (n_users, rank)
    item_factors: np.ndarray  # (n_items, rank)
    sparse_user: np.ndarray  # user index of each sparse entry
    sparse_item: np.ndarray  # item index of each sparse entry
    sparse_value: np.ndarray
    noise: float

    def score(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """Noise-free score ``mean + a_u . v_i + s_ui`` of each (user, item) pair."""
        user = np.asarray(user)
        item = np.asarray(item)
        low_rank = np.einsum("nr,nr->n", self.user_factors[user], self.item_factors[item])
        n_items = self.item_factors.shape[0]
        keys = self.sparse_user.astype(np.int64) * n_items + self.sparse_item
        order = np.argsort(keys)
        query = user.astype(np.int64) * n_items + item
        pos = np.clip(np.searchsorted(keys[order], query), 0, max(len(keys) - 1, 0))
        sparse = np.zeros(len(query))
        if len(keys):
            hit = keys[order][pos] == query
            sparse[hit] = self.sparse_value[order][pos[hit]]
        return self.mean + low_rank + sparse

    def to_arrays(self, prefix: str = "gt_") -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": np.asarray(v) for k, v in asdict(self).items()}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str = "gt_") -> "GroundTruth | None":
        names = [f.name for f in fields(cls)]
        if not all(f"{prefix}{n}" in arrays for n in names):
            return None
        values = {n: arrays[f"{prefix}{n}"] for n in names}
        values["mean"] = float(values["mean"])
        values["noise"] = float(values["noise"])
        return cls(**values)


@dataclass(frozen=True)
class SyntheticRatings:
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    truth: GroundTruth
    #: Generator id (1-based, like MovieLens) of each contiguous item index.
    item_ids: np.ndarray


def _allocate(budget: int, weights: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``budget`` units over slots with probabilities ``weights``, no slot above ``cap``."""
    out = np.zeros(len(weights), dtype=np.int64)
    remaining = budget
    while remaining > 0:
        p = np.where(out < cap, weights, 0.0)
        out += rng.multinomial(remaining, p / p.sum())
        overflow = np.maximum(out - cap, 0)
        out -= overflow
        remaining = int(overflow.sum())
    return out


def _sample_items(counts: np.ndarray, log_weights: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Per user, ``counts[u]`` distinct items drawn with the given weights (Gumbel top-k), in blocks."""
    n_items = len(log_weights)
    block = max(1, (1 << 22) // n_items)
    chosen = []
    for start in range(0, len(counts), block):
        c = counts[start : start + block]
        keys = log_weights[None, :] + rng.gumbel(size=(len(c), n_items))
        order = np.argsort(-keys, axis=1)
        chosen.extend(order[k, : c[k]] for k in range(len(c)))
    return chosen


def generate(config: SyntheticConfig, seed: int) -> SyntheticRatings:
    """Draw a synthetic MovieLens-style dataset; the same ``config`` and ``seed`` give identical arrays."""
    cfg = config.validated()
    rng = np.random.default_rng(seed)

    # User activity: minimum plus a Pareto-weighted share of the remaining budget.
    activity = rng.pareto(cfg.user_activity_exponent, size=cfg.n_users)
    extra = _allocate(
        cfg.n_ratings - cfg.n_users * cfg.min_ratings_per_user,
        activity / activity.sum(),
        cfg.max_ratings_per_user - cfg.min_ratings_per_user,
        rng,
    )
    counts = cfg.min_ratings_per_user + extra

    # Item popularity: Zipf over a random order of the items.
    popularity_rank = rng.permutation(cfg.n_items) + 1
    log_weights = -cfg.item_popularity_exponent * np.log(popularity_rank)
    items_of_user = _sample_items(counts, log_weights, rng)
    user = np.repeat(np.arange(cfg.n_users, dtype=np.int64), counts)
    item = np.concatenate(items_of_user).astype(np.int64)

    # Planted low-rank part, scaled to standard deviation signal_std: var(a.v) = rank * sigma^4.
    sigma = np.sqrt(cfg.signal_std / np.sqrt(cfg.rank))
    user_factors = rng.normal(0.0, sigma, size=(cfg.n_users, cfg.rank))
    item_factors = rng.normal(0.0, sigma, size=(cfg.n_items, cfg.rank))

    # User-specific sparse deviations on items the user rated (the first sparse_per_user draws are
    # a uniform subset of the user's items after a per-user shuffle).
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    offsets = np.concatenate([rng.permutation(c)[: cfg.sparse_per_user] for c in counts])
    sparse_rows = np.repeat(starts, cfg.sparse_per_user) + offsets
    magnitude = cfg.sparse_magnitude * rng.uniform(0.5, 1.5, size=len(sparse_rows))
    sparse_value = rng.choice([-1.0, 1.0], size=len(sparse_rows)) * magnitude

    truth = GroundTruth(
        mean=cfg.mean_rating,
        user_factors=user_factors,
        item_factors=item_factors,
        sparse_user=user[sparse_rows],
        sparse_item=item[sparse_rows],
        sparse_value=sparse_value,
        noise=cfg.noise,
    )
    score = truth.score(user, item)
    rating = np.clip(np.rint(score + rng.normal(0.0, cfg.noise, size=len(score))), 1, 5)
    timestamp = rng.integers(_T0, _T1, size=len(rating), dtype=np.int64)
    item_ids = np.arange(1, cfg.n_items + 1, dtype=np.int64)
    return _drop_unrated_items(SyntheticRatings(user, item, rating.astype(np.float64), timestamp, truth, item_ids))


def _drop_unrated_items(data: SyntheticRatings) -> SyntheticRatings:
    """Re-index items to 0..n-1 over the rated ones (prepared datasets have contiguous ids)."""
    rated = np.unique(data.item)
    if len(rated) == data.truth.item_factors.shape[0]:
        return data
    new_index = np.full(data.truth.item_factors.shape[0], -1, dtype=np.int64)
    new_index[rated] = np.arange(len(rated))
    t = data.truth
    truth = GroundTruth(
        t.mean, t.user_factors, t.item_factors[rated], t.sparse_user, new_index[t.sparse_item], t.sparse_value, t.noise
    )
    return SyntheticRatings(
        data.user, new_index[data.item], data.rating, data.timestamp, truth, data.item_ids[rated]
    )
