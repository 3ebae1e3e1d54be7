"""Issue #15: Paper A's private mode is private for real.

The seeded-noise attack (re-run the fit with and without a target user under the known noise
seed) wins against mode='simulation' and fails against the default private mode; private
fits keep no unnoised cross-user diagnostic and have data-independent control flow; bad user
ids give clear errors in every LRS estimator."""

import math
import warnings

import numpy as np
import pytest

from bilinrec.models.lrs import (
    AMHTLRS,
    DPAMHTLRS,
    DPGlobalModel,
    PrivacyBudget,
    default_clip_bounds,
)
from bilinrec.models.lrs.audit import Canary, known_seed_audit
from bilinrec.models.lrs.baselines import (
    FedRep,
    FineTune,
    GlobalModel,
    LocalRidge,
    SparseOnly,
)
from bilinrec.models.lrs.synthetic import make_problem

D, R, K, M, T = 4, 1, 1, 8, 10
DELTA = 1e-5


@pytest.fixture(scope="module")
def quiet_users():
    """The audit's base data: users with Gaussian features and y = 0 (DP must hold for every data set)."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((T * M, D)), np.zeros(T * M), np.repeat(np.arange(T), M)


def _fitter(mode, epsilon, clip):
    def fit(X, y, users, trial_seed):
        seeded = {"mode": "simulation", "noise_seed": trial_seed} if mode == "simulation" else {}
        model = DPAMHTLRS(R, K, privacy=PrivacyBudget(epsilon, DELTA), clip=clip, max_rounds=1,
                          accountant="rdp", random_state=trial_seed, **seeded)
        return model.fit(X, y, users).U_
    return fit


def _canary():
    return Canary.along(np.ones(D), M, 10 * math.sqrt(D), 10 * math.sqrt(R + 1))


def test_known_seed_attack_breaks_simulation_but_not_the_private_mode(quiet_users):
    """The attack of the review: the attacker knows each release's noise seed (the root seed is
    committed), re-runs the fit with and without the canary and picks the closer one."""
    claimed = 1.0
    clip = default_clip_bounds(D, M, math.sqrt(R + 1))
    attacker = _fitter("simulation", claimed, clip)  # the attacker's re-runs use the known seed
    trials = 60
    leaky = known_seed_audit(_fitter("simulation", claimed, clip), *quiet_users, _canary(),
                             trials=trials, delta=DELTA, refit=attacker, seed=100)
    assert leaky.tpr == 1.0 and leaky.fpr == 0.0  # certain membership inference
    # 60 trials per side can certify at most ln(0.9404 / 0.0596) = 2.76 at 95 %: far above the claimed 1
    assert leaky.epsilon_lb > 2.5 * claimed
    assert leaky.epsilon_lb == pytest.approx(leaky.ceiling)  # a perfect attack reaches its ceiling

    private = known_seed_audit(_fitter("private", claimed, clip), *quiet_users, _canary(),
                               trials=trials, delta=DELTA, refit=attacker, seed=100)
    assert private.epsilon_lb <= claimed
    assert 0.2 < private.tpr < 0.8 and 0.2 < private.fpr < 0.8  # a coin flip


# -- the private mode ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def problem():
    return make_problem(60, 6, 2, 1, 8, noise=0.05, seed=3)


def _dp(problem, **kwargs):
    clip = default_clip_bounds(problem.dim, 8, math.sqrt(3))
    return DPAMHTLRS(2, 1, privacy=PrivacyBudget(2.0, 1e-4), clip=clip, max_rounds=2, accountant="rdp", **kwargs)


def test_private_noise_is_secret_and_simulation_is_reproducible(problem):
    args = (problem.X, problem.y, problem.users)
    a, b = _dp(problem, random_state=0).fit(*args), _dp(problem, random_state=0).fit(*args)
    assert not np.allclose(a.U_, b.U_)  # random_state does not seed the noise
    assert a.release_ == "private release (secret noise)"
    s1 = _dp(problem, mode="simulation", noise_seed=7).fit(*args)
    s2 = _dp(problem, mode="simulation", noise_seed=7).fit(*args)
    np.testing.assert_array_equal(s1.U_, s2.U_)
    assert s1.release_ == "simulation (seeded noise; not a private release)"
    with pytest.raises(ValueError, match="noise_seed"):
        _dp(problem, noise_seed=7).fit(*args)
    with pytest.raises(ValueError, match="noise_seed"):
        _dp(problem, mode="simulation").fit(*args)
    with pytest.raises(ValueError, match="mode"):
        _dp(problem, mode="seeded").fit(*args)


def test_private_fit_keeps_no_unnoised_cross_user_diagnostic(problem):
    model = _dp(problem).fit(problem.X, problem.y, problem.users)
    assert not hasattr(model, "clipped_fraction_")
    with pytest.raises(AttributeError, match="not part of a private release"):
        model.history_
    inner = model.model_
    assert inner.aggregator is None  # neither the noise generator nor the clipped fractions
    for name in ("history_", "train_loss_", "converged_", "empty_users_"):
        assert not hasattr(inner, name)
    sim = _dp(problem, mode="simulation", noise_seed=1).fit(problem.X, problem.y, problem.users)
    assert len(sim.clipped_fraction_) == 3 and len(sim.history_) == 2
    clip = default_clip_bounds(problem.dim, 8, math.sqrt(3))
    assert not hasattr(DPGlobalModel(PrivacyBudget(1.0, 1e-4), clip).fit(problem.X, problem.y, problem.users),
                       "clipped_fraction_")
    g = DPGlobalModel(PrivacyBudget(1.0, 1e-4), clip, mode="simulation", noise_seed=3)
    assert set(g.fit(problem.X, problem.y, problem.users).clipped_fraction_) == {"gram", "rhs"}


def test_private_control_flow_does_not_depend_on_the_data(problem):
    """All-zero y (the non-private fit stops at once) and users with fewer samples than
    rank + sparsity (the non-private fit refuses) still give exactly max_rounds rounds."""
    zeros = np.zeros_like(problem.y)
    few = problem.users < 0  # placeholder, replaced below
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for y in (zeros, problem.y):
            sim = _dp(problem, mode="simulation", noise_seed=2).fit(problem.X, y, problem.users)
            assert sim.n_releases_ == 3 and len(sim.history_) == 2
    # every user keeps 2 samples < rank + sparsity = 3
    few = np.concatenate([np.flatnonzero(problem.users == u)[:2] for u in range(problem.n_users)])
    with pytest.raises(ValueError, match="fewer samples"):
        AMHTLRS(2, 1).fit(problem.X[few], problem.y[few], problem.users[few])
    model = _dp(problem).fit(problem.X[few], problem.y[few], problem.users[few])
    assert model.n_releases_ == 3 and np.all(np.isfinite(model.U_))
    # users without samples: no warning naming them in a private fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _dp(problem).fit(problem.X, problem.y, problem.users, n_users=problem.n_users + 5)


# -- user ids ---------------------------------------------------------------------------
def _estimators():
    clip = default_clip_bounds(6, 8, math.sqrt(3))
    return [
        AMHTLRS(2, 1, max_rounds=2),
        DPAMHTLRS(2, 1, privacy=PrivacyBudget(2.0, 1e-4), clip=clip, max_rounds=1, accountant="rdp"),
        DPAMHTLRS(2, 1, max_rounds=1),
        DPGlobalModel(PrivacyBudget(2.0, 1e-4), clip, accountant="rdp"),
        GlobalModel(), LocalRidge(), FineTune(), FedRep(2, max_rounds=2), SparseOnly(1, max_rounds=2),
    ]


@pytest.mark.parametrize("kind", ["strings", "huge", "huge_float", "billion", "bool", "fractional"])
def test_bad_user_ids_give_clear_errors_in_every_estimator(problem, kind):
    users = problem.users
    bad = {
        "strings": np.array([f"user{u}" for u in users]),
        "huge": np.where(users == 0, 10**13, users),
        "huge_float": np.where(users == 0, 1e13, users).astype(float),
        "billion": np.where(users == 0, 10**9, users),
        "bool": users % 2 == 0,
        "fractional": users + 0.5,
    }[kind]
    message = {"strings": "integer user ids", "bool": "integer user ids", "fractional": "integer"}.get(kind, "dense")
    for estimator in _estimators():
        with pytest.raises(ValueError, match=message):
            estimator.fit(problem.X, problem.y, bad)
