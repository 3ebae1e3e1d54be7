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
refute). With ``n`` trials per side the largest bound an audit can show is about
``ln(n / ln(2 / (1 - confidence)))``, so a weak attack or few trials certify little.

Two attacks on DP-AMHT-LRS are provided (:func:`canary_audit`):

* ``"projection"`` (black box): the canary's samples all lie along one unit direction ``v``;
  the statistic is the norm of the projection of ``v`` on the released column space of ``U``.
  The threshold is chosen on the first half of the trials and the rates are counted on the
  second half, so the bound is valid.
* ``"known_seed"``: the attacker knows the noise seed of every release (as anyone does for
  ``mode="simulation"``, whose seed comes from the committed root seed). It re-runs the fit
  with and without the canary under that seed and says "in" when the release is closer to
  the with-canary run (fixed threshold 0, all trials counted). Against a simulation it is
  perfect; against a private release (secret noise) its re-runs are unrelated to the release.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

ATTACKS = ("projection", "known_seed")


def clopper_pearson(successes: int, trials: int, confidence: float) -> tuple[float, float]:
    """One-sided Clopper-Pearson bounds ``(lo, hi)`` of a binomial rate, each at level ``confidence``."""
    from scipy.stats import beta

    k, n = int(successes), int(trials)
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= successes <= trials and trials >= 1, got {k} of {n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - alpha, k + 1, n - k))
    return lo, hi


def epsilon_lower_bound(
    true_positives: int, n_in: int, false_positives: int, n_out: int, delta: float, confidence: float = 0.95
) -> dict[str, float]:
    """The empirical lower bound on epsilon (and the rates it comes from) of a membership test
    that said "in" for ``true_positives`` of ``n_in`` canary-in runs and ``false_positives`` of
    ``n_out`` canary-out runs; valid with probability ``confidence``."""
    if not 0 <= delta < 1:
        raise ValueError(f"delta must lie in [0, 1), got {delta}")
    side = (1.0 + confidence) / 2.0  # a union bound over the two one-sided intervals
    tpr_lo, _ = clopper_pearson(true_positives, n_in, side)
    _, fpr_hi = clopper_pearson(false_positives, n_out, side)
    bounds = [0.0]
    if tpr_lo - delta > 0 and fpr_hi > 0:
        bounds.append(math.log((tpr_lo - delta) / fpr_hi))
    if 1.0 - fpr_hi - delta > 0 and 1.0 - tpr_lo > 0:
        bounds.append(math.log((1.0 - fpr_hi - delta) / (1.0 - tpr_lo)))
    return {
        "tpr": true_positives / n_in, "fpr": false_positives / n_out,
        "tpr_lo": tpr_lo, "fpr_hi": fpr_hi, "epsilon_lb": max(bounds),
    }


def best_threshold(scores_in: np.ndarray, scores_out: np.ndarray, delta: float, confidence: float) -> float:
    """The threshold ("in" when score > threshold) that maximises the epsilon lower bound on
    these scores (used on calibration trials only)."""
    candidates = np.unique(np.concatenate([scores_in, scores_out]))
    best, best_eps = -math.inf, -1.0
    for c in candidates:
        eps = epsilon_lower_bound(int(np.sum(scores_in > c)), len(scores_in), int(np.sum(scores_out > c)),
                                  len(scores_out), delta, confidence)["epsilon_lb"]
        if eps > best_eps:
            best, best_eps = float(c), eps
    return best


def membership_audit(
    scores_in: np.ndarray,
    scores_out: np.ndarray,
    delta: float,
    confidence: float = 0.95,
    threshold: float | None = None,
) -> dict[str, float]:
    """Epsilon lower bound of the test "in when score > threshold". ``threshold=None`` picks it on
    the first half of each side's trials and counts the rates on the second half."""
    scores_in, scores_out = np.asarray(scores_in, float), np.asarray(scores_out, float)
    if threshold is None:
        h_in, h_out = len(scores_in) // 2, len(scores_out) // 2
        if h_in < 1 or h_out < 1:
            raise ValueError("need at least two trials per side to calibrate a threshold")
        threshold = best_threshold(scores_in[:h_in], scores_out[:h_out], delta, confidence)
        scores_in, scores_out = scores_in[h_in:], scores_out[h_out:]
    result = epsilon_lower_bound(int(np.sum(scores_in > threshold)), len(scores_in),
                                 int(np.sum(scores_out > threshold)), len(scores_out), delta, confidence)
    return result | {"threshold": float(threshold), "counted_in": len(scores_in), "counted_out": len(scores_out)}


# --------------------------------------------------------------------------------------
# Canary audit of a DP estimator
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Canary:
    """A user with parameters ``theta = (response / scale) v`` along the unit direction ``v``:
    Gaussian features ``x_j = scale g_j`` and noiseless ``y_j = response <g_j, v>``. With large
    ``scale`` and ``response`` each statistic it adds is clipped to exactly its bound, and its
    residual (non-zero while ``v`` is outside the current ``U``) pulls the U step toward ``v``."""

    X: np.ndarray
    y: np.ndarray
    direction: np.ndarray

    @classmethod
    def along(cls, direction: np.ndarray, samples: int, scale: float, response: float, seed: int = 0) -> "Canary":
        v = np.asarray(direction, float)
        v = v / np.linalg.norm(v)
        G = np.random.default_rng(seed).standard_normal((int(samples), len(v)))
        return cls(X=scale * G, y=response * (G @ v), direction=v)


def _projection(U: np.ndarray, v: np.ndarray) -> float:
    Q, _ = np.linalg.qr(U)
    return float(np.linalg.norm(Q.T @ v))


@dataclass
class AuditResult:
    """One audit: the attack, its trials per side, rates, Clopper-Pearson bounds and epsilon_lb."""

    attack: str
    trials: int
    tpr: float
    fpr: float
    tpr_lo: float
    fpr_hi: float
    epsilon_lb: float
    threshold: float
    counted_in: int
    counted_out: int
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


def canary_audit(
    fit_release: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    users: np.ndarray,
    canary: Canary,
    *,
    attack: str,
    trials: int,
    delta: float,
    confidence: float = 0.95,
    seed: int = 0,
    refit: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray] | None = None,
) -> AuditResult:
    """Run ``trials`` releases with and ``trials`` without the canary (as user ``t``, after the
    ``t`` users of ``(X, y, users)``) and audit them with ``attack``.

    ``fit_release(X, y, users, trial_seed) -> U`` is the mechanism under audit: it gets a
    public per-trial seed (``seed`` + trial index, the same for both worlds), which a
    simulation uses as its noise seed and a private release must ignore. ``refit`` (``known_seed`` only) is the attacker's
    re-run with that seed, by default ``fit_release`` itself (a seeded simulation).
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 2:
        raise ValueError(f"trials must be an integer >= 2, got {trials!r}")
    users = np.asarray(users)
    t = int(users.max()) + 1
    X_in = np.vstack([X, canary.X])
    y_in = np.concatenate([y, canary.y])
    users_in = np.concatenate([users, np.full(len(canary.y), t, dtype=users.dtype)])
    worlds = {True: (X_in, y_in, users_in), False: (X, y, users)}
    refit = refit or fit_release
    scores: dict[bool, list[float]] = {True: [], False: []}
    for i in range(trials):
        trial_seed = seed + i  # public; the same for both worlds, so the attacker's re-runs serve both
        if attack == "known_seed":
            U_in, U_out = refit(*worlds[True], trial_seed), refit(*worlds[False], trial_seed)
        for present in (True, False):
            U = fit_release(*worlds[present], trial_seed)
            if attack == "projection":
                score = _projection(U, canary.direction)
            else:  # distance to the attacker's re-run without the canary minus with it
                score = float(np.linalg.norm(U - U_out) - np.linalg.norm(U - U_in))
            scores[present].append(score)
    threshold = None if attack == "projection" else 0.0
    result = membership_audit(scores[True], scores[False], delta, confidence, threshold)
    return AuditResult(attack=attack, trials=trials, confidence=confidence, **result)
