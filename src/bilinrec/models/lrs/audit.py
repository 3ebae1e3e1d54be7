"""Empirical privacy audit: membership inference of a canary user -> a lower bound on epsilon.

A mechanism that is (epsilon, delta)-DP bounds every membership test on its output: for any
test that says "the canary was in the data", with true-positive rate TPR (canary in) and
false-positive rate FPR (canary out),

    TPR <= e^epsilon FPR + delta    and    1 - FPR <= e^epsilon (1 - TPR) + delta.

Running the mechanism many times with and without a canary user and counting the test's
hits gives Clopper-Pearson bounds ``TPR >= TPR_lo`` and ``FPR <= FPR_hi`` (each one-sided at
``(1 + confidence) / 2``, so both hold together with probability ``confidence``), hence

    epsilon >= max(ln((TPR_lo - delta) / FPR_hi), ln((1 - FPR_hi - delta) / (1 - TPR_lo)))

with that confidence (Jagielski et al. 2020, "Auditing differentially private machine
learning"; Nasr et al. 2021, "Adversary instantiation"). A lower bound above the claimed
epsilon proves the claim false; one below it is consistent with the claim (an audit can only
refute). The *ceiling* is the bound of a perfect test (TPR = 1, FPR = 0) over the same trial
counts, about ``ln(n / ln(2 / (1 - confidence)))`` for ``n`` trials per side: no audit with
``n`` trials can refute a claim at or above it (:func:`epsilon_ceiling`).

Two attacks on DP-AMHT-LRS:

* :func:`statistic_audit` (the mechanism alone, the optimal test): a worst-case canary whose
  contribution to every released statistic sits at its clip bound, in a fixed direction; the
  released statistics of one fit (moment, then ``(A, b)`` per round, at fixed heads: one
  adaptive strategy among those DP covers) are drawn through :meth:`DPAMHTLRS.mechanism`, the
  noise path of a private fit; the test is the likelihood-ratio statistic (the released
  statistics projected on the canary's contribution, weighted by the noise variances), with a
  threshold chosen on separate calibration trials. It is tight: its true epsilon is the
  accountant's. ``noise_scale`` audits a mechanism with too little noise (a planted-broken
  control the audit must refute); ``canary=False`` leaves the canary out of both worlds
  (a null control: the bound must be 0).
* :func:`known_seed_audit` (whole fits): the attacker knows the noise seed of every release
  (as anyone does for ``mode="simulation"``, whose seed comes from the committed root seed). It
  re-runs the fit with and without the canary under that seed and says "in" when the release is
  closer to the with-canary run (fixed threshold 0, all trials counted). Against a simulation it
  is perfect; against a private release (secret noise) its re-runs are unrelated to the release.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from .data import prepare_data
from .statistics import moment_statistics, normal_equation_statistics


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return float(confidence)


def clopper_pearson(successes, trials: int, confidence: float):
    """One-sided Clopper-Pearson bounds ``(lo, hi)`` of a binomial rate, each at level ``confidence``
    (``successes`` may be an array: bounds per entry)."""
    from scipy.stats import beta

    k, n = np.asarray(successes), int(trials)
    if n < 1 or np.any(k < 0) or np.any(k > n) or np.any(k != np.round(k)):
        raise ValueError(f"need integer 0 <= successes <= trials and trials >= 1, got {successes} of {trials}")
    alpha = 1.0 - _check_confidence(confidence)
    with np.errstate(invalid="ignore"):  # the k = 0 and k = n ends are set below
        lo = np.where(k == 0, 0.0, beta.ppf(alpha, k, n - k + 1))
        hi = np.where(k == n, 1.0, beta.ppf(1.0 - alpha, k + 1, n - k))
    return (float(lo), float(hi)) if k.ndim == 0 else (lo, hi)


def _epsilon_bounds(true_positives, n_in: int, false_positives, n_out: int, delta: float, confidence: float):
    """The epsilon lower bound and ``(TPR_lo, FPR_hi)`` of "in" counts (arrays: one per test)."""
    if not 0 <= delta < 1:
        raise ValueError(f"delta must lie in [0, 1), got {delta}")
    side = (1.0 + _check_confidence(confidence)) / 2.0  # a union bound over the two one-sided intervals
    tpr_lo, _ = clopper_pearson(true_positives, n_in, side)
    _, fpr_hi = clopper_pearson(false_positives, n_out, side)
    tpr_lo, fpr_hi = np.asarray(tpr_lo, float), np.asarray(fpr_hi, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = np.where((tpr_lo - delta > 0) & (fpr_hi > 0), np.log((tpr_lo - delta) / fpr_hi), 0.0)
        converse = np.where((1 - fpr_hi - delta > 0) & (tpr_lo < 1),
                            np.log((1 - fpr_hi - delta) / (1 - tpr_lo)), 0.0)
    return np.maximum(0.0, np.maximum(direct, converse)), tpr_lo, fpr_hi


def epsilon_lower_bound(
    true_positives: int, n_in: int, false_positives: int, n_out: int, delta: float, confidence: float = 0.95
) -> dict[str, float]:
    """The empirical lower bound on epsilon (and the rates it comes from) of a membership test
    that said "in" for ``true_positives`` of ``n_in`` canary-in runs and ``false_positives`` of
    ``n_out`` canary-out runs; valid with probability ``confidence``."""
    eps, tpr_lo, fpr_hi = _epsilon_bounds(true_positives, n_in, false_positives, n_out, delta, confidence)
    return {
        "tpr": true_positives / n_in, "fpr": false_positives / n_out,
        "tpr_lo": float(tpr_lo), "fpr_hi": float(fpr_hi), "epsilon_lb": float(eps),
    }


def epsilon_ceiling(n_in: int, n_out: int, delta: float, confidence: float = 0.95) -> float:
    """The largest lower bound ``n_in`` / ``n_out`` trials can show: that of a perfect test."""
    return epsilon_lower_bound(n_in, n_in, 0, n_out, delta, confidence)["epsilon_lb"]


def best_threshold(scores_in: np.ndarray, scores_out: np.ndarray, delta: float, confidence: float) -> float:
    """The threshold ("in" when score > threshold) that maximises the epsilon lower bound on
    these (calibration) scores: the midpoint of the best gap between consecutive scores."""
    scores_in, scores_out = np.sort(np.asarray(scores_in, float)), np.sort(np.asarray(scores_out, float))
    candidates = np.unique(np.concatenate([scores_in, scores_out]))
    tp = len(scores_in) - np.searchsorted(scores_in, candidates, side="right")
    fp = len(scores_out) - np.searchsorted(scores_out, candidates, side="right")
    eps, _, _ = _epsilon_bounds(tp, len(scores_in), fp, len(scores_out), delta, confidence)
    i = int(np.argmax(eps))
    return float(candidates[i] if i + 1 == len(candidates) else (candidates[i] + candidates[i + 1]) / 2.0)


def membership_audit(
    scores_in: np.ndarray, scores_out: np.ndarray, threshold: float, delta: float, confidence: float = 0.95
) -> dict[str, float]:
    """Epsilon lower bound of the test "in when score > threshold", with its ceiling."""
    scores_in, scores_out = np.asarray(scores_in, float), np.asarray(scores_out, float)
    n_in, n_out = len(scores_in), len(scores_out)
    result = epsilon_lower_bound(int(np.sum(scores_in > threshold)), n_in, int(np.sum(scores_out > threshold)),
                                 n_out, delta, confidence)
    return result | {"threshold": float(threshold), "ceiling": epsilon_ceiling(n_in, n_out, delta, confidence)}


@dataclass
class AuditResult:
    """One audit: the attack, its counted (and calibration) trials per side, rates,
    Clopper-Pearson bounds, epsilon_lb and the ceiling of its trial count."""

    attack: str
    trials: int
    calibration_trials: int
    tpr: float
    fpr: float
    tpr_lo: float
    fpr_hi: float
    epsilon_lb: float
    ceiling: float
    threshold: float
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


def _check_trials(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------
# The canary and the two attacks
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Canary:
    """A user with parameters ``theta = (response / scale) v`` along the unit direction ``v``:
    Gaussian features ``x_j = scale g_j`` and noiseless ``y_j = response <g_j, v>``. With large
    ``scale`` and ``response`` each statistic it adds is clipped to exactly its bound."""

    X: np.ndarray
    y: np.ndarray
    direction: np.ndarray

    @classmethod
    def along(cls, direction: np.ndarray, samples: int, scale: float, response: float, seed: int = 0) -> "Canary":
        v = np.asarray(direction, float)
        v = v / np.linalg.norm(v)
        G = np.random.default_rng(seed).standard_normal((int(samples), len(v)))
        return cls(X=scale * G, y=response * (G @ v), direction=v)

    def join(self, X: np.ndarray, y: np.ndarray, users: np.ndarray):
        """``(X, y, users)`` with the canary appended as user ``max(users) + 1``."""
        users = np.asarray(users)
        t = int(users.max()) + 1
        return (np.vstack([X, self.X]), np.concatenate([y, self.y]),
                np.concatenate([users, np.full(len(self.y), t, dtype=users.dtype)]))


def known_seed_audit(
    fit_release: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    users: np.ndarray,
    canary: Canary,
    *,
    trials: int,
    delta: float,
    confidence: float = 0.95,
    seed: int = 0,
    refit: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray] | None = None,
) -> AuditResult:
    """Run ``trials`` whole fits with and ``trials`` without the canary and test each release
    against the attacker's re-runs under the release's public seed.

    ``fit_release(X, y, users, trial_seed) -> U`` is the mechanism under audit: it gets a
    public per-trial seed (``seed`` + trial index, the same for both worlds), which a
    simulation uses as its noise seed and a private release must ignore. ``refit`` is the
    attacker's re-run with that seed, by default ``fit_release`` itself (a seeded simulation).
    """
    trials = _check_trials("trials", trials, 1)
    worlds = {True: canary.join(X, y, users), False: (X, y, users)}
    refit = refit or fit_release
    scores: dict[bool, list[float]] = {True: [], False: []}
    for i in range(trials):
        trial_seed = seed + i  # public; the same for both worlds, so the attacker's re-runs serve both
        U_in, U_out = refit(*worlds[True], trial_seed), refit(*worlds[False], trial_seed)
        for present in (True, False):
            U = fit_release(*worlds[present], trial_seed)
            # distance to the attacker's re-run without the canary minus with it
            scores[present].append(float(np.linalg.norm(U - U_out) - np.linalg.norm(U - U_in)))
    result = membership_audit(scores[True], scores[False], 0.0, delta, confidence)
    return AuditResult(attack="known_seed", trials=trials, calibration_trials=0, confidence=confidence, **result)


def _clipped_statistics(model, X: np.ndarray, y: np.ndarray, users: np.ndarray) -> list[np.ndarray]:
    """The clipped sums one fit of ``model`` releases on ``(X, y, users)`` before noise: the
    moment, then ``(A, b)`` of every round at fixed unit heads and targets ``y``."""
    data = prepare_data(X, y, users)
    mechanism = model.mechanism()
    heads = np.full((data.n_users, model.rank), 1.0 / math.sqrt(model.rank))
    statistics = [mechanism.clipped_moment(moment_statistics(data))]
    for _ in model.release_schedule()[1:]:
        statistics += mechanism.clipped_normal_equations(normal_equation_statistics(data, heads, data.y))
    return statistics


def statistic_audit(
    model,
    X: np.ndarray,
    y: np.ndarray,
    users: np.ndarray,
    canary: Canary,
    *,
    trials: int,
    calibration_trials: int,
    confidence: float = 0.95,
    noise_scale: float = 1.0,
    canary_present: bool = True,
) -> AuditResult:
    """Audit the Gaussian mechanism of the DP-AMHT-LRS ``model`` (its budget, clip bounds,
    release schedule and mode) with the likelihood-ratio test on its released statistics.

    ``calibration_trials`` fits per world choose the threshold, ``trials`` per world are
    counted. Every fit draws its noise through ``model.mechanism(noise_scale)`` (secret noise for
    ``mode="private"``); ``noise_scale < 1`` is a planted-broken control. ``canary_present=False``
    leaves the canary out of the "in" world too (a null control: no signal). Needs
    ``sampling_rate = 1`` (the clipped sums are then the same in every fit, so they are computed
    once; auditing a Poisson-sampled mechanism without its sampling would refute correct noise).
    """
    trials = _check_trials("trials", trials, 1)
    calibration_trials = _check_trials("calibration_trials", calibration_trials, 1)
    if model.sampling_rate != 1.0:
        raise ValueError(f"statistic_audit needs sampling_rate = 1, got {model.sampling_rate}")
    out = _clipped_statistics(model, X, y, users)
    with_canary = _clipped_statistics(model, *canary.join(X, y, users))
    worlds = {True: with_canary if canary_present else out, False: out}
    clip = model.clip
    bounds = [clip.moment] + [clip.gram, clip.rhs] * (len(model.release_schedule()) - 1)
    # the likelihood-ratio statistic of Gaussian noise of std sigma * bound: sum_k <R_k, V_k> / bound_k^2
    directions = [(s_in - s_out) / bound**2 for s_in, s_out, bound in zip(with_canary, out, bounds)]

    def score(present: bool) -> float:
        mechanism = model.mechanism(noise_scale)  # a fresh fit: a fresh noise generator
        sums = worlds[present]
        released = [mechanism.noise_moment(sums[0])]
        for k in range(1, len(sums), 2):
            released += mechanism.noise_normal_equations(sums[k], sums[k + 1])
        return float(sum(np.vdot(r, v) for r, v in zip(released, directions)))

    def run(n: int) -> dict[bool, np.ndarray]:
        return {present: np.array([score(present) for _ in range(n)]) for present in (True, False)}

    delta = model.privacy.delta
    calibration = run(calibration_trials)
    threshold = best_threshold(calibration[True], calibration[False], delta, confidence)
    counted = run(trials)
    result = membership_audit(counted[True], counted[False], threshold, delta, confidence)
    return AuditResult(attack="likelihood_ratio", trials=trials, calibration_trials=calibration_trials,
                       confidence=confidence, **result)
