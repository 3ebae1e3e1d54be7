"""The DP global model: one ``theta`` for every user, fit on noisy, per-user clipped sufficient
statistics (privacy model and release modes: :mod:`.release`)."""

from __future__ import annotations

import math

import numpy as np

from ..base import Estimator
from .accounting import (
    PrivacyBudget,
    _check_accountant,
    _check_sampling_rate,
    calibrate_noise_multiplier,
    training_epsilon,
)
from .data import LRSData, prepare_data
from .mechanism import ClipBounds, clip_weights, noise_spectral_norm, poisson_sample, symmetric_gaussian_noise
from .release import NON_PRIVATE, RELEASE_LABELS, check_privacy, check_release_mode, noise_generator


def clipped_global_statistics(
    data: LRSData, clip: ClipBounds, user_weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """``sum_i c_i X_i^T X_i`` and ``sum_i c_i' X_i^T y_i`` with every user's terms scaled to
    norms within ``clip.global_gram`` / ``clip.global_rhs`` (and times ``user_weights``, e.g. a
    Poisson sample), before noise; also the fraction of users clipped per statistic."""
    weights = np.ones(data.n_users) if user_weights is None else np.asarray(user_weights, dtype=np.float64)
    d = data.dim
    gram = np.zeros((d, d))
    n_clipped = 0
    for users, rows in data.iter_batches(d):
        Xu = data.X[rows]
        S = np.matmul(np.ascontiguousarray(Xu.transpose(0, 2, 1)), Xu)
        norms = np.sqrt(np.einsum("nij,nij->n", S, S))
        n_clipped += int(np.sum(norms > clip.global_gram))
        gram += np.einsum("b,bij->ij", clip_weights(norms, clip.global_gram) * weights[users], S)
    xy = data.segment_sum(data.X, row_weights=data.y)
    xy_norms = np.linalg.norm(xy, axis=1)
    rhs = (clip_weights(xy_norms, clip.global_rhs) * weights) @ xy
    clipped = {"gram": n_clipped / data.n_users, "rhs": float(np.mean(xy_norms > clip.global_rhs))}
    return gram, rhs, clipped


class DPGlobalModel(Estimator):
    """One linear model ``y = <x, theta>`` shared by all users, fit by ridge regression on the
    noisy, per-user clipped sufficient statistics ``sum_i X_i^T X_i`` and ``sum_i X_i^T y_i``
    (one release of two statistics). ``privacy=None`` or ``epsilon=inf`` gives the exact
    non-private least-squares fit (plus ``alpha`` ridge).

    ``mode="private"`` (default): noise from OS entropy, no clipped fraction kept;
    ``mode="simulation"`` with ``noise_seed``: reproducible noise (not a private release) and
    ``clipped_fraction_`` (see :mod:`.release`). ``random_state`` is unused (kept for a
    common interface); it never seeds the noise."""

    def __init__(
        self,
        privacy: PrivacyBudget | None = None,
        clip: ClipBounds | None = None,
        alpha: float = 0.0,
        ridge_factor: float = 1.0,
        sampling_rate: float = 1.0,
        accountant: str = "pld",
        random_state: int | None = None,
        *,
        mode: str = "private",
        noise_seed: int | None = None,
    ) -> None:
        self.privacy = privacy
        self.clip = clip
        self.alpha = alpha
        self.ridge_factor = ridge_factor
        self.sampling_rate = sampling_rate
        self.accountant = accountant
        self.random_state = random_state
        self.mode = mode
        self.noise_seed = noise_seed

    def release_schedule(self) -> list[int]:
        """Statistics per release: one release of the two sufficient statistics."""
        return [2]

    def fit(self, X, y, users, n_users: int | None = None) -> "DPGlobalModel":
        privacy = check_privacy(self.privacy, self.clip)
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        _check_accountant(self.accountant)
        check_release_mode(self.mode, self.noise_seed)
        data = prepare_data(X, y, users, n_users=n_users)
        privacy.check_users(data.n_users)
        clip = self.clip if privacy.is_private else ClipBounds.unbounded()
        sigma = calibrate_noise_multiplier(privacy, self.release_schedule(), self.sampling_rate, self.accountant)
        rng = noise_generator(self.mode, self.noise_seed)
        sampling_rate = _check_sampling_rate(self.sampling_rate) if privacy.is_private else 1.0
        sample = poisson_sample(rng, data.n_users, sampling_rate)
        gram, rhs, clipped = clipped_global_statistics(data, clip, sample)
        self.__dict__.pop("clipped_fraction_", None)  # nothing of a previous fit survives a refit
        self.release_ = RELEASE_LABELS[self.mode] if privacy.is_private else NON_PRIVATE
        if self.mode == "simulation" or not privacy.is_private:
            self.clipped_fraction_ = clipped  # an unnoised statistic of all users: never in a private release
        d = data.dim
        ridge = self.alpha
        if sigma > 0:
            std_gram = sigma * clip.global_gram
            gram = gram + symmetric_gaussian_noise(rng, d, std_gram)
            rhs = rhs + rng.normal(0.0, sigma * clip.global_rhs, size=d)
            ridge += self.ridge_factor * noise_spectral_norm(d, std_gram)
        self.coef_ = np.linalg.lstsq(gram + ridge * np.eye(d), rhs, rcond=None)[0]
        self.noise_multiplier_ = sigma
        self.delta_ = privacy.delta if privacy.is_private else 0.0
        self.epsilon_ = (
            training_epsilon(sigma, self.release_schedule(), self.sampling_rate, privacy.delta, self.accountant)
            if privacy.is_private
            else math.inf
        )
        return self

    def predict(self, X, users=None) -> np.ndarray:
        """Predictions ``X theta`` (``users`` is accepted for a common interface and ignored)."""
        self._check_fitted("coef_", "predict")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"X must have shape (n, {self.coef_.shape[0]}), got {X.shape}")
        return X @ self.coef_
