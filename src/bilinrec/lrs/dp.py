"""Differentially private AMHT-LRS and DP baselines (Paper A, private variant).

Privacy model (user-level, joint DP / "billboard" model)
--------------------------------------------------------
Neighbouring data sets differ by adding or removing *all* samples of one user. The only
quantities released are the shared statistics: the initialisation moment matrix
``M = sum_i C_i`` and, in each round, the U-step normal equations ``(A, b) = sum_i (A_i, b_i)``
(see :mod:`bilinrec.lrs.amht`); everything the server computes (``U``) is post-processing of
them. Each user's head ``w_i`` and sparse part ``b_i`` are computed from the released ``U`` and
that user's own data and are never released, so by the billboard lemma the whole output is
joint-DP with the (epsilon, delta) of the released statistics.

Mechanism: every user's contribution to each released statistic is scaled to a norm of at
most its clip bound (Frobenius norm for matrices, Euclidean for vectors), so adding or
removing a user moves each statistic by at most that bound; Gaussian noise with standard
deviation ``noise_multiplier * bound`` is added (symmetric noise ``(G + G^T) / 2`` for the
symmetric matrices ``M`` and ``A``, which is exactly a Gaussian mechanism on the vector
``(diag, sqrt(2) * upper triangle)`` whose norm is the Frobenius norm). A release of ``s``
statistics together is therefore one Gaussian mechanism with noise multiplier
``noise_multiplier / sqrt(s)`` on the stacked, bound-normalised statistics. Optionally every
release uses a fresh Poisson sample of users (rate ``q``). All releases are composed with
Google's ``dp-accounting`` (PLD accountant by default, RDP on request); for a target budget
the noise multiplier is calibrated with ``dp_accounting.calibrate_dp_mechanism`` (bracketing
and bisection), and the achieved epsilon is recomputed and reported.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..seeds import derive_seed
from .amht import AMHTLRS, LRSData, MomentStatistics, NormalEquationStatistics, UserFit, prepare_data

__all__ = [
    "ClipBounds",
    "DPAMHTLRS",
    "DPGlobalModel",
    "GaussianAggregator",
    "PrivacyBudget",
    "accounting_cache",
    "calibrate_noise_multiplier",
    "clipped_global_statistics",
    "compute_epsilon",
    "default_clip_bounds",
    "load_accounting_cache",
    "release_event",
    "segment_gram_norms",
    "training_epsilon",
    "training_event",
]

ACCOUNTANTS = ("pld", "rdp")


# --------------------------------------------------------------------------------------
# Budgets and accounting
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PrivacyBudget:
    """A target (epsilon, delta); ``epsilon = inf`` means no privacy (non-private algorithm)."""

    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        eps, delta = self.epsilon, self.delta
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
            raise TypeError(f"epsilon must be a number, got {eps!r}")
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating, np.integer)):
            raise TypeError(f"delta must be a number, got {delta!r}")
        if math.isnan(eps) or eps <= 0:
            raise ValueError(f"epsilon must be > 0 (use math.inf for no privacy), got {eps}")
        if math.isnan(delta) or not 0 < delta < 1:
            raise ValueError(f"delta must lie strictly between 0 and 1, got {delta}")
        object.__setattr__(self, "epsilon", float(eps))
        object.__setattr__(self, "delta", float(delta))

    @property
    def is_private(self) -> bool:
        return math.isfinite(self.epsilon)

    def check_users(self, n_users: int) -> None:
        """Warn when delta is not small against 1/t (delta >= 1/t allows releasing a user)."""
        if self.is_private and self.delta >= 1.0 / max(int(n_users), 1):
            warnings.warn(
                f"delta={self.delta:g} >= 1/t = {1.0 / n_users:g} for t={n_users} users: "
                "such a delta permits mechanisms that publish a whole user's data",
                UserWarning,
                stacklevel=3,
            )


def _check_accountant(accountant: str) -> str:
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {accountant!r}")
    return accountant


# dp-accounting is imported where it is used: it loads much of SciPy (about 0.7 s), which the
# many jobs that read their calibrations from the accounting cache never need.
def _fresh_accountant(accountant: str) -> "dp_accounting.PrivacyAccountant":  # noqa: F821
    from dp_accounting.pld import pld_privacy_accountant
    from dp_accounting.rdp import rdp_privacy_accountant

    if _check_accountant(accountant) == "pld":
        return pld_privacy_accountant.PLDAccountant()
    return rdp_privacy_accountant.RdpAccountant()


def _check_sampling_rate(sampling_rate: float) -> float:
    q = float(sampling_rate)
    if not 0 < q <= 1:
        raise ValueError(f"sampling_rate must lie in (0, 1], got {sampling_rate}")
    return q


def release_event(noise_multiplier: float, n_statistics: int, sampling_rate: float = 1.0):
    """The DP event of one release of ``n_statistics`` statistics, each clipped to its bound and
    noised with standard deviation ``noise_multiplier * bound``, on a Poisson sample of rate
    ``sampling_rate`` (no sampling event when it is 1)."""
    import dp_accounting

    if n_statistics < 1:
        raise ValueError(f"n_statistics must be >= 1, got {n_statistics}")
    event = dp_accounting.GaussianDpEvent(noise_multiplier / math.sqrt(n_statistics))
    q = _check_sampling_rate(sampling_rate)
    return event if q == 1.0 else dp_accounting.PoissonSampledDpEvent(q, event)


def training_event(noise_multiplier: float, releases: Sequence[int], sampling_rate: float = 1.0):
    """The composition of all releases of a training run; ``releases[k]`` is the number of
    statistics released together in release ``k`` (each Poisson-sampled when
    ``sampling_rate < 1``)."""
    import dp_accounting

    if len(releases) == 0:
        raise ValueError("releases must name at least one release")
    if _check_sampling_rate(sampling_rate) == 1.0:
        # Composing Gaussian mechanisms is exactly one Gaussian mechanism whose multiplier is
        # z / sqrt(sum_k s_k) (GDP composition); one event keeps the PLD accountant fast and
        # free of accumulated discretisation error.
        return dp_accounting.GaussianDpEvent(noise_multiplier / math.sqrt(sum(int(s) for s in releases)))
    counts: dict[int, int] = {}
    for s in releases:
        counts[int(s)] = counts.get(int(s), 0) + 1
    parts = [
        dp_accounting.SelfComposedDpEvent(release_event(noise_multiplier, s, sampling_rate), n)
        for s, n in sorted(counts.items())
    ]
    return parts[0] if len(parts) == 1 else dp_accounting.ComposedDpEvent(parts)


def compute_epsilon(event, delta: float, accountant: str = "pld") -> float:
    """Epsilon at ``delta`` of ``event`` according to a fresh dp-accounting accountant."""
    return float(_fresh_accountant(accountant).compose(event).get_epsilon(delta))


# Calibrated noise multipliers and achieved epsilons are pure functions of their arguments, but
# one PLD accountant evaluation takes about half a second. They are memoised per process, and
# accounting_cache() / load_accounting_cache() carry them between processes, so a workflow can
# compute each one once instead of once per job.
_NOISE_MULTIPLIERS: dict[tuple, float] = {}
_EPSILONS: dict[tuple, float] = {}
_NOISE_FIELDS = ("epsilon", "delta", "releases", "sampling_rate", "accountant", "rel_tol")
_EPSILON_FIELDS = ("noise_multiplier", "releases", "sampling_rate", "delta", "accountant")


def _calibrate(epsilon, delta, releases, sampling_rate, accountant, rel_tol) -> float:
    key = (float(epsilon), float(delta), tuple(releases), float(sampling_rate), accountant, float(rel_tol))
    if key not in _NOISE_MULTIPLIERS:
        _NOISE_MULTIPLIERS[key] = _search_noise_multiplier(*key)
    return _NOISE_MULTIPLIERS[key]


def _search_noise_multiplier(epsilon, delta, releases, sampling_rate, accountant, rel_tol) -> float:
    import dp_accounting

    def search(bracket):
        return float(
            dp_accounting.calibrate_dp_mechanism(
                lambda: _fresh_accountant(accountant),
                lambda z: training_event(z, releases, sampling_rate),
                epsilon,
                delta,
                bracket_interval=bracket,
                tol=rel_tol * bracket_scale,
            )
        )

    # Without sampling, composing Gaussian releases is exactly one Gaussian: with per-statistic
    # multiplier z, release k has multiplier z / sqrt(s_k), so the composition has multiplier
    # z / sqrt(sum_k s_k), and the analytic Gaussian mechanism gives z up to the accountant's
    # discretisation: a narrow bracket around it needs few (slow) accountant evaluations.
    # Sampling only lowers epsilon, so that value also bounds the answer from above.
    bracket_scale = dp_accounting.get_sigma_gaussian(epsilon, delta) * math.sqrt(sum(releases))
    low, high = (0.999, 1.001) if sampling_rate == 1.0 else (0.5 * sampling_rate, 1.01)
    try:
        return search(dp_accounting.ExplicitBracketInterval(low * bracket_scale, high * bracket_scale))
    except ValueError:  # the bracket did not contain the solution: search from zero
        return search(dp_accounting.LowerEndpointAndGuess(0.0, bracket_scale))


def calibrate_noise_multiplier(
    budget: PrivacyBudget,
    releases: Sequence[int],
    sampling_rate: float = 1.0,
    accountant: str = "pld",
    rel_tol: float = 1e-4,
) -> float:
    """The smallest noise multiplier (within a relative ``rel_tol``) whose composed releases
    meet ``budget``; 0 for a non-private budget.

    The search is ``dp_accounting.calibrate_dp_mechanism`` (Brent's method with a bisection
    fallback), which guarantees epsilon(result) <= target under the chosen accountant.
    """
    if not budget.is_private:
        return 0.0
    _check_accountant(accountant)
    releases = tuple(int(s) for s in releases)
    if not releases or min(releases) < 1:
        raise ValueError(f"releases must be a non-empty list of positive counts, got {releases}")
    return _calibrate(budget.epsilon, budget.delta, releases, _check_sampling_rate(sampling_rate),
                      accountant, float(rel_tol))


def training_epsilon(
    noise_multiplier: float, releases: Sequence[int], sampling_rate: float, delta: float, accountant: str = "pld"
) -> float:
    """Epsilon at ``delta`` of the composed ``releases`` (memoised
    ``compute_epsilon(training_event(...))``)."""
    key = (float(noise_multiplier), tuple(int(s) for s in releases), float(sampling_rate), float(delta), accountant)
    if key not in _EPSILONS:
        _EPSILONS[key] = compute_epsilon(training_event(*key[:3]), key[3], accountant)
    return _EPSILONS[key]


def accounting_cache() -> dict[str, list[dict]]:
    """Every noise multiplier calibrated and epsilon computed in this process, as JSON-ready
    records for :func:`load_accounting_cache`."""
    return {
        "noise_multipliers": [dict(zip(_NOISE_FIELDS, k), noise_multiplier=v) for k, v in _NOISE_MULTIPLIERS.items()],
        "epsilons": [dict(zip(_EPSILON_FIELDS, k), epsilon=v) for k, v in _EPSILONS.items()],
    }


def load_accounting_cache(cache: dict) -> None:
    """Reuse calibrations and epsilons computed by :func:`accounting_cache` in another process;
    later calls with exactly the same arguments return them without running the accountant."""
    try:
        noise = {
            (float(r["epsilon"]), float(r["delta"]), tuple(int(s) for s in r["releases"]),
             float(r["sampling_rate"]), _check_accountant(r["accountant"]), float(r["rel_tol"])): float(r["noise_multiplier"])
            for r in cache["noise_multipliers"]
        }
        eps = {
            (float(r["noise_multiplier"]), tuple(int(s) for s in r["releases"]), float(r["sampling_rate"]),
             float(r["delta"]), _check_accountant(r["accountant"])): float(r["epsilon"])
            for r in cache["epsilons"]
        }
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed accounting cache: {err!r}") from err
    _NOISE_MULTIPLIERS.update(noise)
    _EPSILONS.update(eps)


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
    with np.errstate(divide="ignore"):
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
# The private aggregator (the hook of bilinrec.lrs.amht)
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

    def aggregate_moment(self, stats: MomentStatistics) -> np.ndarray:
        norms = segment_gram_norms(stats.data, stats.Z)  # = stats.per_user_norms(), faster for m < d
        weights = clip_weights(norms, self.clip.moment) * self._sample(stats.n_users)
        self.clipped_fraction_.append({"moment": float(np.mean(norms > self.clip.moment))})
        M = stats.total(weights)
        if self.noise_multiplier > 0:
            M = M + symmetric_gaussian_noise(self.rng, M.shape[0], self.noise_multiplier * self.clip.moment)
        return M

    def _feature_gram_norms(self, data: LRSData) -> np.ndarray:
        """``|X_i^T X_i|_F`` per user; fixed for a data set, so computed once and reused."""
        if self._gram_norm_cache is None or self._gram_norm_cache[0] is not data:
            self._gram_norm_cache = (data, segment_gram_norms(data, data.X))
        return self._gram_norm_cache[1]

    def aggregate_normal_equations(self, stats: NormalEquationStatistics):
        # the norms of NormalEquationStatistics.per_user_norms, with the Gram part cached
        w_sq = np.einsum("ir,ir->i", stats.W, stats.W)
        gram_norms = w_sq * self._feature_gram_norms(stats.data)
        rhs_norms = np.sqrt(w_sq) * np.linalg.norm(stats.data.segment_sum(stats.data.X, row_weights=stats.z), axis=1)
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
        if self.noise_multiplier > 0:
            n = A.shape[0]
            std_A = self.noise_multiplier * self.clip.gram
            A = A + symmetric_gaussian_noise(self.rng, n, std_A)
            A[np.diag_indices(n)] += self.ridge_factor * noise_spectral_norm(n, std_A)
            b = b + self.rng.normal(0.0, self.noise_multiplier * self.clip.rhs, size=b.shape)
        return A, b


# --------------------------------------------------------------------------------------
# DP global model: one theta for every user from noisy clipped sufficient statistics
# --------------------------------------------------------------------------------------
def _check_privacy(privacy: PrivacyBudget | None, clip: ClipBounds | None) -> PrivacyBudget:
    if privacy is None:
        privacy = PrivacyBudget(math.inf, 0.5)
    if not isinstance(privacy, PrivacyBudget):
        raise TypeError(f"privacy must be a PrivacyBudget or None, got {type(privacy).__name__}")
    if privacy.is_private:
        if not isinstance(clip, ClipBounds):
            raise ValueError("clip must be a ClipBounds (see default_clip_bounds) when epsilon is finite")
        if any(math.isinf(getattr(clip, n)) for n in clip.__dataclass_fields__):
            raise ValueError("clip bounds must be finite when epsilon is finite")
    return privacy


def _noise_rng(random_state: int | None) -> np.random.Generator:
    """The generator of the privacy noise, independent of any other randomness of a fit."""
    if random_state is None:
        return np.random.default_rng()
    return np.random.default_rng(derive_seed(int(random_state), "dp-noise"))


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


class DPGlobalModel:
    """One linear model ``y = <x, theta>`` shared by all users, fit by ridge regression on the
    noisy, per-user clipped sufficient statistics ``sum_i X_i^T X_i`` and ``sum_i X_i^T y_i``
    (one release of two statistics). ``privacy=None`` or ``epsilon=inf`` gives the exact
    non-private least-squares fit (plus ``alpha`` ridge)."""

    def __init__(
        self,
        privacy: PrivacyBudget | None = None,
        clip: ClipBounds | None = None,
        alpha: float = 0.0,
        ridge_factor: float = 1.0,
        sampling_rate: float = 1.0,
        accountant: str = "pld",
        random_state: int | None = None,
    ) -> None:
        self.privacy = privacy
        self.clip = clip
        self.alpha = alpha
        self.ridge_factor = ridge_factor
        self.sampling_rate = sampling_rate
        self.accountant = accountant
        self.random_state = random_state

    def release_schedule(self) -> list[int]:
        """Statistics per release: one release of the two sufficient statistics."""
        return [2]

    def fit(self, X, y, users, n_users: int | None = None) -> "DPGlobalModel":
        privacy = _check_privacy(self.privacy, self.clip)
        if not self.alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        _check_accountant(self.accountant)
        data = prepare_data(X, y, users, n_users=n_users)
        privacy.check_users(data.n_users)
        clip = self.clip if privacy.is_private else ClipBounds.unbounded()
        sigma = calibrate_noise_multiplier(privacy, self.release_schedule(), self.sampling_rate, self.accountant)
        rng = _noise_rng(self.random_state)
        sampling_rate = _check_sampling_rate(self.sampling_rate) if privacy.is_private else 1.0
        sample = poisson_sample(rng, data.n_users, sampling_rate)
        gram, rhs, self.clipped_fraction_ = clipped_global_statistics(data, clip, sample)
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
        if not hasattr(self, "coef_"):
            raise RuntimeError("DPGlobalModel is not fitted; call fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"X must have shape (n, {self.coef_.shape[0]}), got {X.shape}")
        return X @ self.coef_


# --------------------------------------------------------------------------------------
# DP-AMHT-LRS
# --------------------------------------------------------------------------------------
class DPAMHTLRS:
    """AMHT-LRS whose shared statistics are released with user-level (joint) DP.

    Runs :class:`bilinrec.lrs.amht.AMHTLRS` with a :class:`GaussianAggregator`: the moment
    matrix and, in each of ``max_rounds`` rounds, the U-step normal equations are clipped per
    user and noised. A private fit always runs exactly ``max_rounds`` rounds (no loss-based
    stopping, which would look at all users' data), so there are ``1 + max_rounds`` releases.
    The noise multiplier is calibrated so that their composition meets ``privacy``.
    ``sparsity=0`` is the DP low-rank-only baseline (private AltMin).

    ``privacy=None`` or ``epsilon=inf`` runs the non-private AMHTLRS (no clipping, no noise,
    its own stopping rule) exactly as ``AMHTLRS(rank, sparsity, max_rounds=max_rounds,
    random_state=random_state, **amht_options)`` would.

    Fitted attributes: ``U_`` (released), ``W_``, ``B_``, ``theta_`` (per-user, never
    released), ``epsilon_`` (achieved, from the accountant), ``delta_``, ``noise_multiplier_``
    (noise standard deviation / clip bound of every statistic), ``n_releases_``,
    ``clipped_fraction_`` (per release, the fraction of users whose contribution was scaled
    down), ``history_`` (per-round diagnostics of the non-released per-user fits).
    """

    def __init__(
        self,
        rank: int,
        sparsity: int,
        *,
        privacy: PrivacyBudget | None = None,
        clip: ClipBounds | None = None,
        max_rounds: int = 10,
        sampling_rate: float = 1.0,
        ridge_factor: float = 1.0,
        accountant: str = "pld",
        random_state: int | None = None,
        amht_options: dict | None = None,
    ) -> None:
        self.rank = rank
        self.sparsity = sparsity
        self.privacy = privacy
        self.clip = clip
        self.max_rounds = max_rounds
        self.sampling_rate = sampling_rate
        self.ridge_factor = ridge_factor
        self.accountant = accountant
        self.random_state = random_state
        self.amht_options = amht_options

    def release_schedule(self) -> list[int]:
        """Statistics per release: the moment matrix, then (A, b) in every round."""
        return [1] + [2] * int(self.max_rounds)

    def _inner_model(self, privacy: PrivacyBudget) -> tuple[AMHTLRS, GaussianAggregator | None]:
        options = dict(self.amht_options or {})
        for reserved in ("rank", "sparsity", "max_rounds", "random_state", "aggregator"):
            if reserved in options:
                raise ValueError(f"amht_options must not set {reserved!r}; it is a DPAMHTLRS parameter")
        common = dict(max_rounds=self.max_rounds, random_state=self.random_state)
        if not privacy.is_private:
            return AMHTLRS(self.rank, self.sparsity, **common, **options), None
        # Options that would combine users' data outside the released statistics.
        if options.get("threshold") == "value" and options.get("threshold_init") is None:
            raise ValueError(
                "threshold='value' needs a public threshold_init under privacy (the default "
                "is the root mean square of all users' y)"
            )
        if options.get("robust_cutoff") is not None:
            raise ValueError("robust_cutoff must be None under privacy (it uses the median over users)")
        for stopping in ("tol", "min_loss"):
            if stopping in options:
                raise ValueError(f"amht_options must not set {stopping!r}: a private fit runs exactly max_rounds rounds")
        sigma = calibrate_noise_multiplier(privacy, self.release_schedule(), self.sampling_rate, self.accountant)
        aggregator = GaussianAggregator(
            sigma, self.clip, _noise_rng(self.random_state), self.sampling_rate, self.ridge_factor
        )
        options.update(tol=0.0, min_loss=0.0)  # stop only after max_rounds rounds
        return AMHTLRS(self.rank, self.sparsity, aggregator=aggregator, **common, **options), aggregator

    def fit(self, X, y, users, n_users: int | None = None) -> "DPAMHTLRS":
        """Fit on stacked samples ``X`` (N, d), ``y`` (N,) of integer ``users`` (N,)."""
        privacy = _check_privacy(self.privacy, self.clip)
        _check_accountant(self.accountant)
        _check_sampling_rate(self.sampling_rate)
        if isinstance(self.max_rounds, bool) or not isinstance(self.max_rounds, (int, np.integer)) or self.max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer, got {self.max_rounds!r}")
        if not self.ridge_factor >= 0:
            raise ValueError(f"ridge_factor must be >= 0, got {self.ridge_factor}")
        if privacy.is_private:
            users_arr = np.asarray(users)
            t = int(n_users) if n_users is not None else (int(users_arr.max()) + 1 if users_arr.size else 0)
            privacy.check_users(t)
        model, aggregator = self._inner_model(privacy)
        model.fit(X, y, users, n_users=n_users)
        self.model_ = model
        if aggregator is None:
            self.noise_multiplier_ = 0.0
            self.epsilon_, self.delta_ = math.inf, 0.0
            self.n_releases_ = 1 + model.n_rounds_
            self.clipped_fraction_ = []
            return self
        self.n_releases_ = len(aggregator.clipped_fraction_)
        if self.n_releases_ != len(self.release_schedule()):
            warnings.warn(
                f"the fit released {self.n_releases_} statistics groups instead of the planned "
                f"{len(self.release_schedule())}; epsilon_ is that of the planned releases (an upper bound)",
                RuntimeWarning,
                stacklevel=2,
            )
        self.noise_multiplier_ = aggregator.noise_multiplier
        self.delta_ = privacy.delta
        self.epsilon_ = training_epsilon(
            self.noise_multiplier_, self.release_schedule(), self.sampling_rate, privacy.delta, self.accountant
        )
        self.clipped_fraction_ = aggregator.clipped_fraction_
        return self

    # -- fitted state, delegated to the inner estimator ---------------------------------
    def _fitted(self) -> AMHTLRS:
        if not hasattr(self, "model_"):
            raise RuntimeError("this DPAMHTLRS instance is not fitted yet; call fit first")
        return self.model_

    @property
    def U_(self) -> np.ndarray:
        return self._fitted().U_

    @property
    def W_(self) -> np.ndarray:
        return self._fitted().W_

    @property
    def B_(self):
        return self._fitted().B_

    @property
    def theta_(self) -> np.ndarray:
        return self._fitted().theta_

    @property
    def history_(self) -> list[dict]:
        return self._fitted().history_

    def predict(self, X, users) -> np.ndarray:
        """Predictions ``<x_j, theta_{users_j}>`` for samples of known users."""
        return self._fitted().predict(X, users)

    def fit_user(self, X_u, y_u) -> UserFit:
        """A new user's ``(w, b)`` from its own samples and the released ``U_`` (no privacy cost)."""
        return self._fitted().fit_user(X_u, y_u)
