"""The Gaussian mechanism of DP-AMHT-LRS: clipping bounds, Poisson sampling, symmetric noise, the private aggregator."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import segment_kernels
from .accounting import _check_sampling_rate
from .data import LRSData
from .statistics import MomentStatistics, NormalEquationStatistics


# --------------------------------------------------------------------------------------
# Clipping bounds
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipBounds:
    """Per-user norm bounds of every released statistic.

    ``moment``: Frobenius norm of ``C_i = sum_j y^2 x x^T``; ``gram``: Frobenius norm of
    ``A_i = (w w^T) kron X_i^T X_i``; ``rhs``: Euclidean norm of ``b_i = w kron X_i^T z_i``;
    ``global_gram`` / ``global_rhs``: ``X_i^T X_i`` and ``X_i^T y_i`` of the DP global model.
    ``inf`` disables clipping of that statistic (only allowed without privacy).
    """

    moment: float
    gram: float
    rhs: float
    global_gram: float
    global_rhs: float

    def __post_init__(self) -> None:
        for name in ("moment", "gram", "rhs", "global_gram", "global_rhs"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.floating, np.integer)) and value > 0):
                raise ValueError(f"clip bound {name!r} must be a positive number, got {value!r}")

    @classmethod
    def unbounded(cls) -> "ClipBounds":
        return cls(math.inf, math.inf, math.inf, math.inf, math.inf)

    def scaled(self, factor: float) -> "ClipBounds":
        return ClipBounds(*(factor * getattr(self, n) for n in self.__dataclass_fields__))


def default_clip_bounds(
    n_features: int, samples_per_user: int, response_scale: float, multiplier: float = 1.0
) -> ClipBounds:
    """Clip bounds from public quantities only: ``multiplier`` times the root-mean-square norm
    of each per-user statistic for a user of the a-priori data model.

    The a-priori model: standardised Gaussian features (``x ~ N(0, I_d)``), ``m`` samples per
    user (a public cap), a linear response ``y = <x, theta>`` with ``|theta| = s`` where
    ``s = response_scale`` is the root-mean-square of ``y`` known a priori (like a rating
    scale), and heads ``|w_i| = s`` (``U`` is orthonormal, so ``|w_i| <= |theta_i|``). Then,
    exactly, ``E|X^T X|_F^2 = m d (d + m + 1)``, ``E|X^T y|^2 = s^2 m (d + m + 1)`` and
    ``E|sum_j y_j^2 x_j x_j^T|_F^2 = s^4 (m (3 d^2 + 30 d + 72) + m (m - 1) (d + 8))``.
    Users whose scale exceeds ``s`` are clipped; no private data is looked at.
    """
    d, m, s = int(n_features), int(samples_per_user), float(response_scale)
    if d < 1 or m < 1:
        raise ValueError(f"n_features and samples_per_user must be >= 1, got {d} and {m}")
    if not s > 0:
        raise ValueError(f"response_scale must be > 0, got {response_scale}")
    if not multiplier > 0:
        raise ValueError(f"multiplier must be > 0, got {multiplier}")
    gram = math.sqrt(m * d * (d + m + 1))
    rhs = s * math.sqrt(m * (d + m + 1))
    return ClipBounds(
        moment=s**2 * math.sqrt(m * (3 * d * d + 30 * d + 72) + m * (m - 1) * (d + 8)),
        gram=s**2 * gram,
        rhs=s * rhs,
        global_gram=gram,
        global_rhs=rhs,
    ).scaled(multiplier)


def clip_weights(norms: np.ndarray, bound: float) -> np.ndarray:
    """Per-user scale factors ``min(1, bound / norm)`` that bring every contribution within ``bound``."""
    norms = np.asarray(norms, dtype=np.float64)
    if math.isinf(bound):
        return np.ones_like(norms)
    with np.errstate(divide="ignore", over="ignore"):  # a zero contribution gets weight 1
        return np.minimum(1.0, bound / np.maximum(norms, np.finfo(float).tiny))


def segment_gram_norms(data: LRSData, F: np.ndarray) -> np.ndarray:
    """Frobenius norms of the per-user Gram matrices ``F_i^T F_i`` of the rows of ``F``.

    Uses ``|F_i^T F_i|_F = |F_i F_i^T|_F`` (same non-zero eigenvalues) on the smaller side.
    """
    norms = np.zeros(data.n_users)
    p = F.shape[1]
    for users, rows in data.iter_batches(p):
        Fu = F[rows]
        if rows.shape[1] < p:
            G = np.matmul(Fu, np.ascontiguousarray(Fu.transpose(0, 2, 1)))
        else:
            G = np.matmul(np.ascontiguousarray(Fu.transpose(0, 2, 1)), Fu)
        norms[users] = np.sqrt(np.einsum("nij,nij->n", G, G))
    return norms


def poisson_sample(rng: np.random.Generator, n_users: int, sampling_rate: float) -> np.ndarray:
    """0/1 inclusion weights of a Poisson sample of users (all ones, no draw, for rate 1)."""
    if sampling_rate == 1.0:
        return np.ones(n_users)
    return (rng.random(n_users) < sampling_rate).astype(np.float64)


def symmetric_gaussian_noise(rng: np.random.Generator, n: int, std: float) -> np.ndarray:
    """``(G + G^T) / 2`` with i.i.d. ``N(0, std^2)`` entries of ``G``: a Gaussian mechanism of
    multiplier ``std / C`` for symmetric statistics of Frobenius sensitivity ``C``."""
    G = rng.normal(0.0, std, size=(n, n))
    return (G + G.T) / 2.0


def noise_spectral_norm(n: int, std: float) -> float:
    """Approximate spectral norm ``sqrt(2 n) std`` of :func:`symmetric_gaussian_noise` (Wigner)."""
    return math.sqrt(2.0 * n) * std


# --------------------------------------------------------------------------------------
# The private aggregator (the hook of bilinrec.models.lrs.statistics)
# --------------------------------------------------------------------------------------
class GaussianAggregator:
    """Clip every user's contribution, sum, add Gaussian noise: the released statistics.

    ``noise_multiplier`` is the ratio of noise standard deviation to clip bound of every
    statistic; ``ridge_factor`` adds ``ridge_factor * ||noise of A||_2`` (its expected spectral
    norm, a public number) to the diagonal of the noisy ``A`` so that the U-step stays well
    posed. Records per release the fraction of clipped users in ``clipped_fraction_``.
    """

    def __init__(
        self,
        noise_multiplier: float,
        clip: ClipBounds,
        rng: np.random.Generator,
        sampling_rate: float = 1.0,
        ridge_factor: float = 1.0,
    ) -> None:
        if not noise_multiplier >= 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier}")
        if not ridge_factor >= 0:
            raise ValueError(f"ridge_factor must be >= 0, got {ridge_factor}")
        self.noise_multiplier = float(noise_multiplier)
        self.clip = clip
        self.rng = rng
        self.sampling_rate = _check_sampling_rate(sampling_rate)
        self.ridge_factor = float(ridge_factor)
        self.clipped_fraction_: list[dict[str, float]] = []
        self._gram_norm_cache: tuple[LRSData, np.ndarray] | None = None

    def _sample(self, n_users: int) -> np.ndarray:
        return poisson_sample(self.rng, n_users, self.sampling_rate)

    def clipped_moment(self, stats: MomentStatistics) -> np.ndarray:
        """``sum_i c_i C_i`` over the sampled users, every ``C_i`` clipped: the moment before noise."""
        norms = stats.per_user_norms()  # streamed, from the smaller side (m < d): no copy of X
        weights = clip_weights(norms, self.clip.moment) * self._sample(stats.n_users)
        self.clipped_fraction_.append({"moment": float(np.mean(norms > self.clip.moment))})
        return stats.total(weights)

    def noise_moment(self, M: np.ndarray) -> np.ndarray:
        """The released moment: ``M`` plus symmetric noise of std ``noise_multiplier * clip.moment``."""
        if self.noise_multiplier > 0:
            M = M + symmetric_gaussian_noise(self.rng, M.shape[0], self.noise_multiplier * self.clip.moment)
        return M

    def aggregate_moment(self, stats: MomentStatistics) -> np.ndarray:
        return self.noise_moment(self.clipped_moment(stats))

    def _feature_gram_norms(self, data: LRSData) -> np.ndarray:
        """``|X_i^T X_i|_F`` per user; fixed for a data set, so computed once and reused."""
        if self._gram_norm_cache is None or self._gram_norm_cache[0] is not data:
            # = segment_gram_norms(data, data.X)
            self._gram_norm_cache = (data, segment_kernels.segment_gram_norms_scaled(data))
        return self._gram_norm_cache[1]

    def clipped_normal_equations(self, stats: NormalEquationStatistics) -> tuple[np.ndarray, np.ndarray]:
        """``(sum_i c_i A_i, sum_i c_i' b_i)`` over the sampled users, each term clipped: before noise."""
        # the norms of NormalEquationStatistics.per_user_norms, with the Gram part cached
        w_sq = np.einsum("ir,ir->i", stats.W, stats.W)
        gram_norms = w_sq * self._feature_gram_norms(stats.data)
        rhs_norms = np.sqrt(w_sq) * stats.xz_norms
        if stats.user_weights is not None:  # the estimator's own per-user weights scale A_i, b_i
            gram_norms = gram_norms * np.abs(stats.user_weights)
            rhs_norms = rhs_norms * np.abs(stats.user_weights)
        sample = self._sample(stats.n_users)
        A = stats.gram(clip_weights(gram_norms, self.clip.gram) * sample)
        b = stats.rhs(clip_weights(rhs_norms, self.clip.rhs) * sample)
        self.clipped_fraction_.append(
            {
                "gram": float(np.mean(gram_norms > self.clip.gram)),
                "rhs": float(np.mean(rhs_norms > self.clip.rhs)),
            }
        )
        return A, b

    def noise_normal_equations(self, A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The released ``(A, b)``: symmetric noise of std ``noise_multiplier * clip.gram`` on ``A``
        plus the public ridge on its diagonal, noise of std ``noise_multiplier * clip.rhs`` on ``b``."""
        if self.noise_multiplier > 0:
            n = A.shape[0]
            std_A = self.noise_multiplier * self.clip.gram
            A = A + symmetric_gaussian_noise(self.rng, n, std_A)
            A[np.diag_indices(n)] += self.ridge_factor * noise_spectral_norm(n, std_A)
            b = b + self.rng.normal(0.0, self.noise_multiplier * self.clip.rhs, size=b.shape)
        return A, b

    def aggregate_normal_equations(self, stats: NormalEquationStatistics):
        return self.noise_normal_equations(*self.clipped_normal_equations(stats))
