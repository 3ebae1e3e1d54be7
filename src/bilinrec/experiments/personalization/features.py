"""Item features for personalization: explicit ALS fitted on the background users only.

The background model supplies, for every item, a d-dimensional embedding (the features
``x`` of the per-user linear models) and a bias; the targets ``y`` are ratings minus the
background global mean and item bias. Evaluation users never enter this fit.

Feature sets (config ``personalization.feature_sets``): ``embedding`` (the ALS item factors),
``genres`` (binary item genres, e.g. the 19 of MovieLens 100K: a sparse deviation on a genre
coordinate means "this user likes genre g more than the shared model says"), and
``genres+embedding``. Every column is divided by its root mean square over the background
ratings; the targets are always the background ALS residuals ``r - mu - b_i``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from bilinrec.experiments.personalization.protocol import UserSplit
from bilinrec.io import load_npz, save_npz
from bilinrec.models.als import ALS


@dataclass(frozen=True)
class ItemFeatures:
    """Fitted background model: item embeddings and biases, and how it was regularized.

    ``coordinate_scale`` is the root mean square of every embedding coordinate over the
    background ratings; features are divided by it so that ``E[x x^T]`` has a unit diagonal
    (the a-priori model of the DP clip bounds, and comparable ridge penalties per coordinate).
    It is computed from background users only.
    """

    item_factors: np.ndarray
    item_bias: np.ndarray
    global_mean: float
    regularization: float
    scale_regularization: bool
    coordinate_scale: np.ndarray
    feature_set: str = "embedding"
    genres: np.ndarray | None = None
    genre_scale: np.ndarray | None = None

    def __post_init__(self):
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature set must be one of {FEATURE_SETS}, got {self.feature_set!r}")
        if "genres" in self.feature_set and (self.genres is None or self.genre_scale is None):
            raise ValueError(f"feature set {self.feature_set!r} needs item genres (see with_genres)")

    @property
    def dim(self) -> int:
        return sum(b.shape[1] for b in self._blocks())

    def _blocks(self) -> list[np.ndarray]:
        blocks = []
        if "genres" in self.feature_set:
            blocks.append(self.genres)
        if "embedding" in self.feature_set:
            blocks.append(self.item_factors)
        return blocks

    def _scales(self) -> list[np.ndarray]:
        scales = []
        if "genres" in self.feature_set:
            scales.append(self.genre_scale)
        if "embedding" in self.feature_set:
            scales.append(self.coordinate_scale)
        return scales

    def design(self, items: np.ndarray, intercept: bool = True) -> np.ndarray:
        """Scaled feature rows ``x`` of ``items`` (genres first, then embedding), with a trailing 1 if ``intercept``."""
        items = np.asarray(items)
        X = np.column_stack([b[items].astype(np.float64) / s for b, s in zip(self._blocks(), self._scales())])
        return np.column_stack([X, np.ones(len(X))]) if intercept else X

    def design_scale(self, intercept: bool = True) -> np.ndarray:
        """Per-column factors that turn :meth:`design` rows back into raw features (ALS factors, 0/1 genres)."""
        scale = np.concatenate(self._scales())
        return np.concatenate([scale, [1.0]]) if intercept else scale

    def embedding_only(self) -> "ItemFeatures":
        """The same background model with the ALS embedding as features (what the fold-in uses)."""
        return replace(self, feature_set="embedding")

    def offset(self, items: np.ndarray) -> np.ndarray:
        """The background prediction ``mu + b_i`` subtracted from ratings to get targets."""
        return self.global_mean + self.item_bias[np.asarray(items)].astype(np.float64)


#: The feature sets of the per-user linear models.
FEATURE_SETS = ("embedding", "genres", "genres+embedding")


def with_genres(features: ItemFeatures, genres: np.ndarray | None, background_items: np.ndarray,
                feature_set: str) -> ItemFeatures:
    """``features`` using ``feature_set``; genre columns scaled by their RMS over the background ratings' items."""
    if "genres" not in feature_set:
        return replace(features, feature_set=feature_set)
    if genres is None:
        raise ValueError(f"feature set {feature_set!r} needs item genres, but the dataset has none")
    genres = np.asarray(genres, dtype=np.float64)
    if genres.shape[0] != features.item_factors.shape[0]:
        raise ValueError(f"genres have {genres.shape[0]} rows but the dataset has {features.item_factors.shape[0]} items")
    rms = np.sqrt(np.mean(genres[np.asarray(background_items)] ** 2, axis=0))
    keep = rms > 0  # a genre no background rating touches carries no information: dropped
    return replace(features, feature_set=feature_set, genres=genres[:, keep], genre_scale=rms[keep])


def fit_item_features(
    user: np.ndarray,
    item: np.ndarray,
    rating: np.ndarray,
    n_items: int,
    background_users: np.ndarray,
    factors: int,
    regularization: float,
    iterations: int,
    scale_regularization: bool,
    seed: int,
) -> ItemFeatures:
    """Fit explicit ALS with global mean and user/item biases on the background users' ratings."""
    background_users = np.asarray(background_users, dtype=np.int64)
    if background_users.size == 0:
        raise ValueError("background_users must not be empty")
    row_of = np.full(int(max(user.max(), background_users.max())) + 1, -1, dtype=np.int64)
    row_of[background_users] = np.arange(background_users.size)
    keep = row_of[user] >= 0
    R = sp.csr_matrix(
        (np.asarray(rating, dtype=np.float64)[keep], (row_of[user[keep]], np.asarray(item)[keep])),
        shape=(background_users.size, n_items),
    )
    model = ALS(
        factors=factors,
        regularization=regularization,
        feedback="explicit",
        use_bias=True,
        scale_regularization=scale_regularization,
        iterations=iterations,
        random_state=seed,
    )
    model.fit(R)
    item_factors = np.asarray(model.item_factors_, dtype=np.float64)
    rms = np.sqrt(np.mean(item_factors[R.indices] ** 2, axis=0))
    return ItemFeatures(
        item_factors=item_factors,
        item_bias=np.asarray(model.item_bias_, dtype=np.float64),
        global_mean=float(model.global_mean_),
        regularization=float(regularization),
        scale_regularization=bool(scale_regularization),
        coordinate_scale=np.where(rms > 0, rms, 1.0),
    )


def save_features(path: str | os.PathLike, features: ItemFeatures, split: UserSplit) -> None:
    """Write the background model and the user split it belongs to as one ``.npz``."""
    save_npz(
        path,
        item_factors=features.item_factors,
        item_bias=features.item_bias,
        global_mean=np.float64(features.global_mean),
        regularization=np.float64(features.regularization),
        scale_regularization=np.bool_(features.scale_regularization),
        coordinate_scale=features.coordinate_scale,
        **{f"split_{name}": value for name, value in split.__dict__.items()},
    )


def load_features(path: str | os.PathLike) -> tuple[ItemFeatures, UserSplit]:
    """Read what :func:`save_features` wrote."""
    arrays = load_npz(path)
    features = ItemFeatures(
        item_factors=arrays["item_factors"],
        item_bias=arrays["item_bias"],
        global_mean=float(arrays["global_mean"]),
        regularization=float(arrays["regularization"]),
        scale_regularization=bool(arrays["scale_regularization"]),
        coordinate_scale=arrays["coordinate_scale"],
    )
    split = UserSplit(**{name: arrays[f"split_{name}"] for name in UserSplit.__dataclass_fields__})
    return features, split
