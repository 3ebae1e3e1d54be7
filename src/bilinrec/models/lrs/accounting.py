"""Privacy budgets and accounting: calibrated noise multipliers and achieved epsilons (dp-accounting)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np

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
# What the guarantee gives a departing user
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DPForgettingBound:
    """What an (epsilon, delta) user-level guarantee tells an adversary who believes with
    probability ``prior`` that a user was in the training set and then sees the release.

    ``accuracy``: the largest probability with which any test on the release guesses the
    user's membership correctly, ``max over (FPR, TPR) in R`` of
    ``prior * TPR + (1 - prior) * (1 - FPR)``, where ``R`` is the region every
    (epsilon, delta)-DP mechanism's tests lie in: ``TPR <= e^eps FPR + delta`` and
    ``1 - FPR <= e^eps (1 - TPR) + delta`` (tight: some mechanism attains it).
    ``posterior``: the pure-epsilon posterior bound ``e^eps prior / (e^eps prior + 1 - prior)``
    on "was in the training set" given any output (exact for delta = 0; with delta > 0 it can
    fail on outputs of small probability, which ``accuracy`` accounts for).
    ``no_information``: ``max(prior, 1 - prior)``, the accuracy without the release.
    """

    epsilon: float
    delta: float
    prior: float
    posterior: float
    accuracy: float
    no_information: float


def dp_forgetting_bound(epsilon: float, delta: float, prior: float = 0.5) -> DPForgettingBound:
    """The membership bounds an (``epsilon``, ``delta``) guarantee gives (see
    :class:`DPForgettingBound`); for ``prior = 1/2`` the accuracy is ``(e^eps + delta) / (e^eps + 1)``."""
    budget = PrivacyBudget(epsilon, delta)  # validates epsilon > 0 and 0 < delta < 1
    if isinstance(prior, bool) or not 0 < prior < 1:
        raise ValueError(f"prior must lie strictly between 0 and 1, got {prior!r}")
    if not budget.is_private:
        return DPForgettingBound(budget.epsilon, budget.delta, prior, 1.0, 1.0, max(prior, 1 - prior))
    e = math.exp(budget.epsilon)
    d = budget.delta
    # the objective is linear, so its maximum over the polygon R is at a vertex (FPR, TPR)
    corner = ((1 - d) / (e + 1), e * (1 - d) / (e + 1) + d)
    vertices = ((0.0, 0.0), (0.0, d), corner, (1 - d, 1.0), (1.0, 1.0))
    accuracy = max(prior * tpr + (1 - prior) * (1 - fpr) for fpr, tpr in vertices)
    posterior = e * prior / (e * prior + 1 - prior)
    return DPForgettingBound(budget.epsilon, d, float(prior), posterior, min(1.0, accuracy),
                             max(prior, 1 - prior))


def gaussian_epsilon(noise_multiplier: float, releases: Sequence[int], delta: float) -> float:
    """Epsilon at ``delta`` of ``releases`` noised with ``noise_multiplier`` without sampling, exactly:
    one Gaussian mechanism of multiplier ``noise_multiplier / sqrt(sum releases)`` converted by the
    analytic Gaussian mechanism (Balle and Wang 2018); fast where the PLD accountant is slow
    (tiny multipliers, as in an audit's planted-broken controls)."""
    import dp_accounting

    if not noise_multiplier > 0:
        raise ValueError(f"noise_multiplier must be > 0, got {noise_multiplier!r}")
    return float(dp_accounting.get_epsilon_gaussian(noise_multiplier / math.sqrt(sum(int(s) for s in releases)),
                                                    delta))


@dataclass(frozen=True)
class GroupPrivacy:
    """The guarantee of a fit for a group: data sets ``size`` add/remove-one-user steps apart.

    ``epsilon`` at ``delta`` (the fit's delta): the composed releases are one Gaussian mechanism
    whose sensitivity-to-noise ratio ``mu`` grows ``size``-fold for the group (every user's
    contribution is clipped on its own, so ``size`` steps move each statistic by at most ``size``
    clip bounds), converted to epsilon exactly by the analytic Gaussian mechanism (Balle and
    Wang 2018). ``generic_epsilon``, ``generic_delta``: the group-privacy theorem applied to the
    per-user (epsilon, delta), ``(k eps, k e^((k-1) eps) delta)`` (delta capped at 1, where it says
    nothing). With Poisson sampling the Gaussian bound ignores the sampling: an upper bound.
    """

    size: int
    epsilon: float
    delta: float
    generic_epsilon: float
    generic_delta: float


def group_privacy(epsilon: float, delta: float, noise_multiplier: float, releases: Sequence[int],
                  size: int) -> GroupPrivacy:
    """The :class:`GroupPrivacy` of a fit that is (``epsilon``, ``delta``)-DP per user, with
    ``releases`` (statistics per release) each noised with ``noise_multiplier`` times its clip
    bound, for a group of ``size`` add/remove steps."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ValueError(f"size (group of add/remove steps) must be a non-negative integer, got {size!r}")
    if not noise_multiplier > 0:
        raise ValueError(f"noise_multiplier must be > 0 (a private fit), got {noise_multiplier!r}")
    budget = PrivacyBudget(epsilon, delta)  # validates epsilon > 0 and 0 < delta < 1
    if size == 0:
        return GroupPrivacy(0, 0.0, budget.delta, 0.0, 0.0)
    gaussian = gaussian_epsilon(noise_multiplier / size, releases, budget.delta)
    log_delta = math.log(size) + (size - 1) * budget.epsilon + math.log(budget.delta)
    return GroupPrivacy(int(size), gaussian, budget.delta, size * budget.epsilon, math.exp(min(log_delta, 0.0)))
