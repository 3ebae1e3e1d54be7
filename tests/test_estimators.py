"""One interface test run against every Paper A estimator of the method registry.

As the ``implicit`` library runs one test mixin against all its models, every estimator here
must follow scikit-learn's convention (``__init__`` only stores its arguments, ``fit`` validates
and returns ``self``, fitted attributes end in ``_``), the per-user model protocol
(:class:`bilinrec.experiments.methods.PerUserModel`) and expose exactly what the registry declares.
"""

import numpy as np
import pytest

from bilinrec.experiments.methods import METHODS, PerUserModel
from bilinrec.models.lrs import PrivacyBudget, default_clip_bounds
from bilinrec.models.lrs.synthetic import make_problem

PROBLEM = make_problem(n_users=40, dim=8, rank=2, sparsity=1, samples=16, noise=0.01, seed=3)


def params_of(key):
    """Small, valid hyper-parameters of each estimator on PROBLEM."""
    clip = default_clip_bounds(PROBLEM.dim, 16, 3.0, 1.0)
    dp = dict(privacy=PrivacyBudget(8.0, 1e-5), clip=clip)
    return {
        "amht_lrs": dict(rank=2, sparsity=1, max_rounds=3, random_state=0),
        "amht_lrs_htp": dict(rank=2, sparsity=1, max_rounds=3, pursuit="htp", random_state=0),
        "dp_amht_lrs": dict(rank=2, sparsity=1, max_rounds=2, random_state=0, **dp),
        "dp_altmin": dict(rank=2, sparsity=0, max_rounds=2, random_state=0, **dp),
        "dp_global": dict(random_state=0, **dp),
        "altmin": dict(rank=2, max_rounds=3, random_state=0),
        "fedrep": dict(rank=2, max_rounds=5),
        "sparse_only": dict(sparsity=1, max_rounds=3),
        "global": {},
        "local": dict(alpha=0.1),
        "finetune": dict(alpha=0.1),
        "user_embedding": dict(regularization=0.1, scale_regularization=False, feature_scale=np.ones(PROBLEM.dim)),
        "known_u": dict(U=PROBLEM.U, sparsity=1),
        "oracle": dict(U=PROBLEM.U, supports=PROBLEM.supports),
    }[key]


ESTIMATORS = [key for key, m in METHODS.items() if m.estimator is not None]


def test_every_estimator_of_the_registry_is_covered():
    for key in ESTIMATORS:
        params_of(key)


@pytest.fixture(params=ESTIMATORS)
def method(request):
    return METHODS[request.param]


def test_init_only_stores_and_fit_returns_self(method):
    model = method.build(**params_of(method.key))
    assert isinstance(model, PerUserModel)
    fitted = [name for name in vars(model) if name.endswith("_") and not name.startswith("_")]
    assert not fitted, f"{method.key}: __init__ sets fitted attributes {fitted}"
    with pytest.raises((RuntimeError, ValueError, AttributeError)):
        model.predict(PROBLEM.X[:3], PROBLEM.users[:3])
    assert model.fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users) is model


def test_fitted_model_exposes_what_the_registry_declares(method):
    model = method.build(**params_of(method.key)).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
    theta = method.theta(model, PROBLEM.n_users)
    assert theta.shape == (PROBLEM.n_users, PROBLEM.dim) and np.all(np.isfinite(theta))
    pred = model.predict(PROBLEM.X[:7], PROBLEM.users[:7])
    assert pred.shape == (7,)
    np.testing.assert_allclose(pred, np.einsum("nd,nd->n", PROBLEM.X[:7], theta[PROBLEM.users[:7]]), atol=1e-8)
    if method.shared_subspace:
        assert model.U_.shape[0] == PROBLEM.dim
        np.testing.assert_allclose(model.U_.T @ model.U_, np.eye(model.U_.shape[1]), atol=1e-8)
    if method.sparse_part:
        assert model.B_.shape == (PROBLEM.n_users, PROBLEM.dim)
    if method.private:
        assert model.epsilon_ <= 8.0 + 1e-9 and model.noise_multiplier_ > 0


def test_fit_is_deterministic_given_random_state(method):
    """Same seeds, same model; a private method only as a labelled simulation with a noise seed."""
    params = params_of(method.key) | ({"mode": "simulation", "noise_seed": 5} if method.private else {})
    one = method.build(**params).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
    two = method.build(**params).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
    np.testing.assert_array_equal(method.theta(one, PROBLEM.n_users), method.theta(two, PROBLEM.n_users))


@pytest.mark.parametrize("key", [key for key in ESTIMATORS if METHODS[key].private])
def test_private_methods_draw_secret_noise_by_default(key):
    """A private release's noise is not reproducible from anything public, not even random_state."""
    method = METHODS[key]
    one = method.build(**params_of(method.key)).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
    two = method.build(**params_of(method.key)).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
    assert not np.array_equal(method.theta(one, PROBLEM.n_users), method.theta(two, PROBLEM.n_users))
