"""The positive control of claim A5: ``synthetic-ml-sparse``, synthetic-ml with sparse structure a method can find.

synthetic-ml plants each user's sparse deviations on items that user rated once, so no method
can recover them from other ratings. Here the planted model is Paper A's own, in the coordinates
of interpretable item features (genres) that every user meets many times:

* users, items, activity and popularity: exactly synthetic-ml's generator (power-law activity,
  Zipf popularity), with its own low-rank and sparse parts switched off;
* item genres: every item belongs to 1..``genres_per_item`` of ``n_genres`` genres (Zipf-weighted);
* user parameters ``theta_u = U w_u + b_u`` over genres: a shared rank-``rank`` basis ``U`` and a
  ``sparsity``-sparse deviation ``b_u`` on genres the user rated at least ``min_genre_count``
  times (random sign, magnitude uniform in [sparse_magnitude/2, 3 sparse_magnitude/2]);
* rating = round(mean + item bias + g_i . theta_u + noise), clipped to 1..5, where the low-rank
  part is scaled to standard deviation ``signal_std`` over the ratings.

With genre features AMHT-LRS's model is the truth, so it must beat its k = 0 version (AltMin)
once the ratings per user identify the deviations: if the protocol cannot show that, it cannot
show a real win on MovieLens either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from bilinrec.data.synthetic import SyntheticConfig, generate
from bilinrec.io import save_npz


@dataclass(frozen=True)
class ControlConfig:
    """Config ``personalization.positive_control`` (besides ``enabled``)."""

    n_users: int = 600
    n_items: int = 800
    n_ratings: int = 40_000
    min_ratings_per_user: int = 30
    n_genres: int = 19
    genres_per_item: int = 3
    rank: int = 2
    sparsity: int = 2
    min_genre_count: int = 3
    signal_std: float = 0.5
    sparse_magnitude: float = 1.0
    item_bias_std: float = 0.3
    noise: float = 0.5
    mean_rating: float = 3.5

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> "ControlConfig":
        values = {k: v for k, v in dict(values or {}).items() if k != "enabled"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"personalization.positive_control: unknown keys {unknown}; known: {sorted(known)}")
        cfg = cls(**values)
        if not (1 <= cfg.sparsity <= cfg.n_genres and 1 <= cfg.rank <= cfg.n_genres
                and 1 <= cfg.genres_per_item <= cfg.n_genres and cfg.min_genre_count >= 2):
            raise ValueError(f"personalization.positive_control: need 1 <= rank, sparsity, genres_per_item <= n_genres "
                             f"and min_genre_count >= 2, got {cfg}")
        return cfg


@dataclass(frozen=True)
class ControlData:
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    item_genres: np.ndarray
    basis: np.ndarray
    user_weights: np.ndarray
    sparse: np.ndarray  # (n_users, n_genres), the planted b_u


def generate_control(cfg: ControlConfig, seed: int) -> ControlData:
    """Draw the positive-control dataset; the same ``cfg`` and ``seed`` give identical arrays."""
    base = generate(SyntheticConfig(n_users=cfg.n_users, n_items=cfg.n_items, n_ratings=cfg.n_ratings,
                                    min_ratings_per_user=cfg.min_ratings_per_user, rank=1, sparse_per_user=0,
                                    signal_std=0.0), seed)
    rng = np.random.default_rng([seed, 1])
    user, item = base.user, base.item
    n_items = int(item.max()) + 1
    popularity = 1.0 / np.arange(1, cfg.n_genres + 1) ** 0.7
    popularity = popularity[rng.permutation(cfg.n_genres)]
    genres = np.zeros((n_items, cfg.n_genres))
    for i in range(n_items):
        k = rng.integers(1, cfg.genres_per_item + 1)
        genres[i, rng.choice(cfg.n_genres, size=k, replace=False, p=popularity / popularity.sum())] = 1.0

    n_users = int(user.max()) + 1
    basis = np.linalg.qr(rng.normal(size=(cfg.n_genres, cfg.rank)))[0]
    weights = rng.normal(size=(n_users, cfg.rank))
    low_rank = np.einsum("ng,ng->n", genres[item], (weights @ basis.T)[user])
    scale = cfg.signal_std / max(low_rank.std(), 1e-12)
    weights *= scale
    low_rank *= scale

    # sparse deviations on genres the user meets at least min_genre_count times
    counts = np.zeros((n_users, cfg.n_genres))
    np.add.at(counts, user, genres[item])
    sparse = np.zeros((n_users, cfg.n_genres))
    for u in range(n_users):
        often = np.flatnonzero(counts[u] >= cfg.min_genre_count)
        chosen = rng.choice(often, size=min(cfg.sparsity, often.size), replace=False)
        sparse[u, chosen] = (rng.choice([-1.0, 1.0], size=chosen.size)
                             * cfg.sparse_magnitude * rng.uniform(0.5, 1.5, size=chosen.size))
    item_bias = rng.normal(0.0, cfg.item_bias_std, size=n_items)
    score = cfg.mean_rating + item_bias[item] + low_rank + np.einsum("ng,ng->n", genres[item], sparse[user])
    rating = np.clip(np.rint(score + rng.normal(0.0, cfg.noise, size=score.size)), 1, 5)
    return ControlData(user, item, rating, genres, basis, weights, sparse)


def write_control(path: str | os.PathLike, cfg: Mapping[str, Any], seed: int) -> None:
    """Write the control as a prepared ``ratings.npz`` (with ``item_genres`` and the planted ``gt_*`` parts)."""
    data = generate_control(ControlConfig.from_mapping(cfg), seed)
    order = np.lexsort((data.item, data.user))
    save_npz(path, user=data.user[order], item=data.item[order], rating=data.rating[order],
             timestamp=np.zeros(data.user.size, dtype=np.int64),
             user_ids=np.arange(1, data.sparse.shape[0] + 1), item_ids=np.arange(1, data.item_genres.shape[0] + 1),
             item_genres=data.item_genres, gt_basis=data.basis, gt_user_weights=data.user_weights,
             gt_sparse=data.sparse)
