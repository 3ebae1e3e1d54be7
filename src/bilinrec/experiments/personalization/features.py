"""Item features for personalization: explicit ALS fitted on the background users only.

The background model supplies, for every item, a d-dimensional embedding (the features
``x`` of the per-user linear models) and a bias; the targets ``y`` are ratings minus the
background global mean and item bias. Evaluation users never enter this fit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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

    @property
    def dim(self) -> int:
        return self.item_factors.shape[1]

    def design(self, items: np.ndarray, intercept: bool = True) -> np.ndarray:
        """Scaled feature rows ``x`` of ``items``, with a trailing constant 1 if ``intercept``."""
        X = self.item_factors[np.asarray(items)].astype(np.float64) / self.coordinate_scale
        return np.column_stack([X, np.ones(len(X))]) if intercept else X

    def design_scale(self, intercept: bool = True) -> np.ndarray:
        """Per-column factors that turn :meth:`design` rows back into raw ALS factors."""
        return np.concatenate([self.coordinate_scale, [1.0]]) if intercept else self.coordinate_scale.copy()

    def offset(self, items: np.ndarray) -> np.ndarray:
        """The background prediction ``mu + b_i`` subtracted from ratings to get targets."""
        return self.global_mean + self.item_bias[np.asarray(items)].astype(np.float64)


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
