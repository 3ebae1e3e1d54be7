"""Issue #33: a DP audit with power.

The likelihood-ratio audit of the released statistics refutes mechanisms with 10x and 100x too
little noise at the claimed epsilon, returns 0 without a canary, and reports the ceiling of its
trial count; the Clopper-Pearson arithmetic is checked against an exact binomial tail."""

import math

import numpy as np
import pytest

from bilinrec.models.lrs import DPAMHTLRS, PrivacyBudget, default_clip_bounds, gaussian_epsilon
from bilinrec.models.lrs.audit import (
    Canary,
    best_threshold,
    clopper_pearson,
    epsilon_ceiling,
    epsilon_lower_bound,
    membership_audit,
    statistic_audit,
)

D, R, M, T = 4, 1, 8, 10
DELTA = 1e-6


def _log_binomial_tail(k: int, n: int, p: float, upper: bool) -> float:
    """ln P(Bin(n, p) >= k) (``upper``) or ln P(Bin(n, p) <= k), summed term by term (no scipy)."""
    js = range(k, n + 1) if upper else range(0, k + 1)
    logs = [math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * math.log(p)
            + (n - j) * math.log1p(-p) for j in js]
    top = max(logs)
    return top + math.log(sum(math.exp(v - top) for v in logs))


@pytest.mark.parametrize("k, n", [(1, 50), (17, 50), (49, 50), (3, 1000), (500, 1000), (9990, 10000)])
def test_clopper_pearson_against_an_exact_binomial_tail(k, n):
    """The bounds are the p at which the binomial tail of the observed count equals 1 - level."""
    level = 0.975
    lo, hi = clopper_pearson(k, n, level)
    assert math.exp(_log_binomial_tail(k, n, lo, upper=True)) == pytest.approx(1 - level, rel=1e-6)
    assert math.exp(_log_binomial_tail(k, n, hi, upper=False)) == pytest.approx(1 - level, rel=1e-6)
    los, his = clopper_pearson(np.array([0, k, n]), n, level)  # the vectorised form agrees
    assert (los[1], his[1]) == pytest.approx((lo, hi))
    assert los[0] == 0 and his[2] == 1


@pytest.mark.parametrize("n, expected", [(100, 3.3), (1000, 5.6), (10000, 7.9)])
def test_ceiling_is_the_closed_form_of_a_perfect_attack(n, expected):
    """With k = n the bounds are closed-form: TPR_lo = a^(1/n), FPR_hi = 1 - a^(1/n), a = (1 - c) / 2."""
    a = (1 - 0.95) / 2
    closed = math.log((a ** (1 / n) - DELTA) / (1 - a ** (1 / n)))
    assert epsilon_ceiling(n, n, DELTA, 0.95) == pytest.approx(closed, rel=1e-9)
    assert epsilon_ceiling(n, n, DELTA, 0.95) == pytest.approx(expected, abs=0.05)  # the numbers
    assert epsilon_lower_bound(n, n, 0, n, DELTA)["epsilon_lb"] == epsilon_ceiling(n, n, DELTA)
    assert epsilon_lower_bound(n - 1, n, 1, n, DELTA)["epsilon_lb"] < epsilon_ceiling(n, n, DELTA)


def test_null_scores_give_zero():
    """No signal, no bound: identically distributed scores (seeded, a simulation) give 0 in
    every one of many repetitions, with the threshold chosen on separate calibration scores."""
    for seed in range(50):
        rng = np.random.default_rng(seed)
        calibration, counted = rng.standard_normal((2, 200)), rng.standard_normal((2, 2000))
        threshold = best_threshold(*calibration, DELTA, 0.95)
        result = membership_audit(*counted, threshold, DELTA)
        assert result["epsilon_lb"] == 0.0
        assert result["ceiling"] == pytest.approx(epsilon_ceiling(2000, 2000, DELTA))


def test_best_threshold_splits_separated_scores_in_the_middle():
    """Perfectly separated calibration scores: the threshold lies mid-gap, so that fresh scores
    a little beyond the calibration range are still counted on the right side."""
    scores_in, scores_out = np.linspace(5.0, 7.0, 100), np.linspace(1.0, 2.0, 100)
    assert best_threshold(scores_in, scores_out, DELTA, 0.95) == pytest.approx(3.5)


# -- the likelihood-ratio audit of the released statistics -----------------------------
@pytest.fixture(scope="module")
def quiet_users():
    """Users with Gaussian features and y = 0 (seeded): DP must hold for every data set."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((T * M, D)), np.zeros(T * M), np.repeat(np.arange(T), M)


def _model(epsilon, **kwargs):
    clip = default_clip_bounds(D, M, math.sqrt(R + 1))
    return DPAMHTLRS(R, 1, privacy=PrivacyBudget(epsilon, DELTA), clip=clip, max_rounds=2, accountant="rdp",
                     **kwargs)


def _canary():
    return Canary.along(np.ones(D), M, 10 * math.sqrt(D), 10 * math.sqrt(R + 1))


def _audit(model, quiet_users, **kwargs):
    return statistic_audit(model, *quiet_users, _canary(), trials=2000, calibration_trials=300, **kwargs)


@pytest.mark.parametrize("epsilon", [1.0, 4.0])
def test_statistic_audit_refutes_too_little_noise_and_not_the_real_mechanism(quiet_users, epsilon):
    """Its power: sigma / 10 and sigma / 100 are refuted at the claimed epsilon, sigma is not; the
    null control (no canary, sigma / 100) gives 0; every bound comes with the same ceiling."""
    model = _model(epsilon)
    ceiling = epsilon_ceiling(2000, 2000, DELTA)
    assert ceiling > epsilon
    real = _audit(model, quiet_users)
    assert real.epsilon_lb <= epsilon
    for scale in (0.1, 0.01):
        broken = _audit(model, quiet_users, noise_scale=scale)
        assert gaussian_epsilon(model.mechanism(scale).noise_multiplier, model.release_schedule(), DELTA) > ceiling
        assert broken.epsilon_lb > epsilon, scale
    assert broken.epsilon_lb == pytest.approx(ceiling)  # sigma / 100: a perfect test
    null = _audit(model, quiet_users, noise_scale=0.01, canary_present=False)
    assert null.epsilon_lb == 0.0
    assert real.ceiling == broken.ceiling == null.ceiling == pytest.approx(ceiling)


def test_mechanism_is_the_fits_noise_path(quiet_users):
    """The audit's mechanism is the one a fit releases through: the same noise multiplier,
    secret noise in private mode (two draws differ), seeded noise in a simulation."""
    X, y, users = quiet_users
    model = _model(2.0)
    assert model.mechanism().noise_multiplier == model.fit(X, y, users).noise_multiplier_
    assert model.mechanism(0.1).noise_multiplier == pytest.approx(0.1 * model.noise_multiplier_)
    M0 = np.zeros((D, D))
    assert not np.allclose(model.mechanism().noise_moment(M0), model.mechanism().noise_moment(M0))
    seeded = _model(2.0, mode="simulation", noise_seed=3)
    np.testing.assert_array_equal(seeded.mechanism().noise_moment(M0), seeded.mechanism().noise_moment(M0))
    with pytest.raises(ValueError, match="noise_scale"):
        model.mechanism(0.0)
    with pytest.raises(ValueError, match="finite epsilon"):
        DPAMHTLRS(R, 1).mechanism()


def test_statistic_audit_refuses_sampling_and_bad_trials(quiet_users):
    with pytest.raises(ValueError, match="sampling_rate"):
        statistic_audit(_model(1.0, sampling_rate=0.5), *quiet_users, _canary(), trials=10, calibration_trials=10)
    with pytest.raises(ValueError, match="calibration_trials"):
        statistic_audit(_model(1.0), *quiet_users, _canary(), trials=10, calibration_trials=0)
