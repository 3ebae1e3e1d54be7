"""Tests of the private AMHT-LRS (bilinrec.models.lrs.dp_amht, dp_global): accounting, clipping, limits, validation."""

import math
import warnings

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from bilinrec.models.lrs import (
    AMHTLRS,
    DPAMHTLRS,
    ClipBounds,
    DPGlobalModel,
    GaussianAggregator,
    PrivacyBudget,
    calibrate_noise_multiplier,
    clipped_global_statistics,
    default_clip_bounds,
    moment_statistics,
    normal_equation_statistics,
    prepare_data,
)
from bilinrec.models.lrs.mechanism import symmetric_gaussian_noise
from bilinrec.models.lrs.synthetic import make_problem

D, R, K, M = 12, 2, 2, 12
SCALE = math.sqrt(R + 1.0)  # a-priori RMS of y for w ~ N(0, I_r), |b| ~ 1


@pytest.fixture(scope="module")
def problem():
    return make_problem(300, D, R, K, M, noise=0.05, seed=7)


@pytest.fixture(scope="module")
def clip():
    return default_clip_bounds(D, M, SCALE, multiplier=1.5)


def _subspace_distance(U_true, U_hat):
    return np.linalg.norm(U_true - U_hat @ (U_hat.T @ U_true), 2)


# -- accounting -------------------------------------------------------------------------
@pytest.mark.parametrize("accountant, sampling_rate", [("pld", 1.0), ("rdp", 1.0), ("rdp", 0.5)])
def test_reported_epsilon_equals_direct_dp_accounting(problem, clip, accountant, sampling_rate):
    rounds, delta = 3, 1e-4
    model = DPAMHTLRS(R, K, privacy=PrivacyBudget(2.0, delta), clip=clip, max_rounds=rounds,
                      sampling_rate=sampling_rate, accountant=accountant, random_state=0)
    model.fit(problem.X, problem.y, problem.users)

    z = model.noise_multiplier_
    init = dp_accounting.GaussianDpEvent(z)  # the moment matrix alone
    per_round = dp_accounting.GaussianDpEvent(z / math.sqrt(2))  # A and b together
    if sampling_rate < 1:
        init = dp_accounting.PoissonSampledDpEvent(sampling_rate, init)
        per_round = dp_accounting.PoissonSampledDpEvent(sampling_rate, per_round)
    events = dp_accounting.ComposedDpEvent([init] + [per_round] * rounds)
    fresh = (pld_privacy_accountant.PLDAccountant() if accountant == "pld"
             else rdp_privacy_accountant.RdpAccountant())
    direct = fresh.compose(events).get_epsilon(delta)

    assert model.n_releases_ == 1 + rounds
    assert model.epsilon_ == pytest.approx(direct, rel=1e-6)
    assert model.epsilon_ <= 2.0 + 1e-9  # calibrated within budget ...
    assert model.epsilon_ >= 2.0 * 0.98  # ... and not wastefully far below it
    assert model.delta_ == delta


def test_global_model_epsilon_is_one_release_of_two_statistics(problem, clip):
    model = DPGlobalModel(PrivacyBudget(1.0, 1e-5), clip, random_state=0).fit(problem.X, problem.y, problem.users)
    direct = pld_privacy_accountant.PLDAccountant().compose(
        dp_accounting.GaussianDpEvent(model.noise_multiplier_ / math.sqrt(2))).get_epsilon(1e-5)
    assert model.epsilon_ == pytest.approx(direct, rel=1e-6)
    assert 0.98 <= model.epsilon_ <= 1.0 + 1e-9


def test_smaller_epsilon_never_uses_less_noise():
    releases = [1, 2, 2, 2]
    sigmas = [calibrate_noise_multiplier(PrivacyBudget(e, 1e-6), releases, accountant="rdp")
              for e in (16, 8, 4, 2, 1, 0.5)]
    assert all(a < b for a, b in zip(sigmas, sigmas[1:]))
    assert calibrate_noise_multiplier(PrivacyBudget(math.inf, 1e-6), releases) == 0.0


def test_noise_added_scales_with_the_multiplier(problem, clip):
    data = prepare_data(problem.X, problem.y, problem.users)
    stats = moment_statistics(data)
    exact = GaussianAggregator(0.0, clip, np.random.default_rng(1)).aggregate_moment(stats)
    deviations = []
    for sigma in (0.5, 1.0, 2.0):
        noisy = GaussianAggregator(sigma, clip, np.random.default_rng(1)).aggregate_moment(stats)
        noise = noisy - exact
        assert np.allclose(noise, noise.T)
        deviations.append(np.linalg.norm(noise))
    assert deviations[1] == pytest.approx(2 * deviations[0]) and deviations[2] == pytest.approx(4 * deviations[0])
    # entries of the symmetric noise: diagonal std sigma*C, off-diagonal sigma*C/sqrt(2)
    n = 400
    E = symmetric_gaussian_noise(np.random.default_rng(2), n, 3.0)
    assert np.std(np.diag(E)) == pytest.approx(3.0, rel=0.15)
    assert np.std(E[np.triu_indices(n, 1)]) == pytest.approx(3.0 / math.sqrt(2), rel=0.02)


# -- clipping ---------------------------------------------------------------------------
def _with_adversary(problem, rng):
    """The problem's samples plus one extra user with enormous features and targets."""
    X_adv = 1e6 * rng.standard_normal((M, D))
    y_adv = 1e8 * rng.standard_normal(M)
    X = np.vstack([problem.X, X_adv])
    y = np.concatenate([problem.y, y_adv])
    users = np.concatenate([problem.users, np.full(M, problem.n_users)])
    return prepare_data(problem.X, problem.y, problem.users), prepare_data(X, y, users)


def test_one_adversarial_user_moves_each_statistic_by_at_most_its_bound(problem, clip):
    rng = np.random.default_rng(3)
    base, attacked = _with_adversary(problem, rng)
    no_noise = dict(noise_multiplier=0.0, clip=clip, rng=np.random.default_rng(0))

    M0 = GaussianAggregator(**no_noise).aggregate_moment(moment_statistics(base))
    M1 = GaussianAggregator(**no_noise).aggregate_moment(moment_statistics(attacked))
    change = np.linalg.norm(M1 - M0)
    assert change <= clip.moment * (1 + 1e-9)
    assert change >= 0.999 * clip.moment  # the adversary was clipped, not dropped

    W = rng.standard_normal((attacked.n_users, R))
    W[-1] *= 1e5  # an adversarial head as well
    z = attacked.y.copy()
    A0, b0 = GaussianAggregator(**no_noise).aggregate_normal_equations(
        normal_equation_statistics(base, W[:-1], base.y))
    A1, b1 = GaussianAggregator(**no_noise).aggregate_normal_equations(
        normal_equation_statistics(attacked, W, z))
    assert clip.gram * 0.999 <= np.linalg.norm(A1 - A0) <= clip.gram * (1 + 1e-9)
    assert clip.rhs * 0.999 <= np.linalg.norm(b1 - b0) <= clip.rhs * (1 + 1e-9)

    G0, c0, _ = clipped_global_statistics(base, clip)
    G1, c1, _ = clipped_global_statistics(attacked, clip)
    assert clip.global_gram * 0.999 <= np.linalg.norm(G1 - G0) <= clip.global_gram * (1 + 1e-9)
    assert clip.global_rhs * 0.999 <= np.linalg.norm(c1 - c0) <= clip.global_rhs * (1 + 1e-9)


def test_default_clip_rule_is_the_rms_norm_under_the_a_priori_model():
    """Users of exactly the a-priori scale: every bound equals the RMS of its statistic."""
    t, d, m, s = 4000, D, M, 2.0
    rng = np.random.default_rng(4)
    directions = rng.standard_normal((t, d))
    theta = s * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    users = np.repeat(np.arange(t), m)
    X = rng.standard_normal((t * m, d))
    data = prepare_data(X, np.einsum("nd,nd->n", X, theta[users]), users)
    bounds = default_clip_bounds(d, m, s)

    def rms(v):
        return float(np.sqrt(np.mean(np.square(v))))

    gram = np.linalg.norm(np.matmul(X.reshape(t, m, d).transpose(0, 2, 1), X.reshape(t, m, d)), axis=(1, 2))
    W = s * np.eye(R)[rng.integers(0, R, size=t)]  # heads of norm s
    stats = normal_equation_statistics(data, W, data.y)
    A_norms, b_norms = stats.per_user_norms()
    ratios = {
        "moment": rms(moment_statistics(data).per_user_norms()) / bounds.moment,
        "gram": rms(A_norms) / bounds.gram,
        "rhs": rms(b_norms) / bounds.rhs,
        "global_gram": rms(gram) / bounds.global_gram,
        "global_rhs": rms(np.linalg.norm(data.segment_sum(data.X, row_weights=data.y), axis=1)) / bounds.global_rhs,
    }
    for name, ratio in ratios.items():
        assert ratio == pytest.approx(1.0, abs=0.05), name
    assert default_clip_bounds(d, m, s, multiplier=2.5).moment == pytest.approx(2.5 * bounds.moment)


# -- limits and utility -----------------------------------------------------------------
def test_infinite_epsilon_reproduces_the_non_private_estimator(problem):
    reference = AMHTLRS(R, K, max_rounds=4, random_state=5).fit(problem.X, problem.y, problem.users)
    for privacy in (None, PrivacyBudget(math.inf, 1e-6)):
        model = DPAMHTLRS(R, K, privacy=privacy, max_rounds=4, random_state=5)
        model.fit(problem.X, problem.y, problem.users)
        np.testing.assert_array_equal(model.theta_, reference.theta_)
        np.testing.assert_array_equal(model.U_, reference.U_)
        assert model.epsilon_ == math.inf and model.noise_multiplier_ == 0.0


def test_weak_privacy_recovers_the_subspace_and_strong_privacy_does_not():
    prob = make_problem(2000, D, R, K, 20, noise=0.05, seed=11)
    clip = default_clip_bounds(D, 20, SCALE, multiplier=1.5)
    distances = {}
    for eps in (1e4, 0.05):
        model = DPAMHTLRS(R, K, privacy=PrivacyBudget(eps, 1e-6), clip=clip, max_rounds=4,
                          accountant="rdp", mode="simulation", noise_seed=0).fit(prob.X, prob.y, prob.users)
        distances[eps] = _subspace_distance(prob.U, model.U_)
        assert len(model.clipped_fraction_) == 5
    assert distances[1e4] < 0.1
    assert distances[0.05] > 3 * distances[1e4]


def test_dp_global_model_improves_with_more_users():
    theta = np.linspace(-1, 1, D)
    errors = {}
    for t in (200, 5000):
        errs = []
        for seed in range(3):
            rng = np.random.default_rng(seed)
            users = np.repeat(np.arange(t), M)
            X = rng.standard_normal((t * M, D))
            y = X @ theta + 0.1 * rng.standard_normal(t * M)
            clip = default_clip_bounds(D, M, float(np.linalg.norm(theta)), multiplier=1.5)
            model = DPGlobalModel(PrivacyBudget(1.0, 1e-6), clip, accountant="rdp", random_state=seed)
            errs.append(np.linalg.norm(model.fit(X, y, users).coef_ - theta))
        errors[t] = np.mean(errs)
    assert errors[5000] < 0.5 * errors[200]
    exact = DPGlobalModel().fit(X, y, users).coef_
    np.testing.assert_allclose(exact, np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-10)


# -- validation -------------------------------------------------------------------------
@pytest.mark.parametrize("epsilon", [0.0, -1.0, float("nan")])
def test_invalid_epsilon_is_refused(epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        PrivacyBudget(epsilon, 1e-6)


@pytest.mark.parametrize("delta", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_invalid_delta_is_refused(delta):
    with pytest.raises(ValueError, match="delta"):
        PrivacyBudget(1.0, delta)


def test_large_delta_warns(problem, clip):
    with pytest.warns(UserWarning, match="delta"):
        DPGlobalModel(PrivacyBudget(1.0, 1.0 / 100), clip).fit(problem.X, problem.y, problem.users)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DPGlobalModel(PrivacyBudget(1.0, 1e-5), clip).fit(problem.X, problem.y, problem.users)


def test_private_fit_needs_clip_bounds_and_fixed_rounds(problem, clip):
    with pytest.raises(ValueError, match="clip"):
        DPAMHTLRS(R, K, privacy=PrivacyBudget(1.0, 1e-6)).fit(problem.X, problem.y, problem.users)
    with pytest.raises(ValueError, match="clip"):
        DPGlobalModel(PrivacyBudget(1.0, 1e-6), ClipBounds.unbounded()).fit(problem.X, problem.y, problem.users)
    for options in ({"tol": 1e-3}, {"robust_cutoff": 3.0}, {"threshold": "value"}, {"aggregator": None}):
        with pytest.raises(ValueError):
            DPAMHTLRS(R, K, privacy=PrivacyBudget(1.0, 1e-6), clip=clip,
                      amht_options=options).fit(problem.X, problem.y, problem.users)
    with pytest.raises(ValueError, match="sampling_rate"):
        DPAMHTLRS(R, K, privacy=PrivacyBudget(1.0, 1e-6), clip=clip,
                  sampling_rate=0.0).fit(problem.X, problem.y, problem.users)
    with pytest.raises(ValueError, match="accountant"):
        DPAMHTLRS(R, K, privacy=PrivacyBudget(1.0, 1e-6), clip=clip,
                  accountant="moments").fit(problem.X, problem.y, problem.users)
    with pytest.raises(RuntimeError, match="not fitted"):
        DPAMHTLRS(R, K).predict(problem.X, problem.users)
