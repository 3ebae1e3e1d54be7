"""The shipped estimator contract (:mod:`bilinrec.testing`) run against every estimator, ALS
included, and the registry's declarations of the Paper A estimators."""

import importlib
import inspect
import pkgutil

import numpy as np
import pytest
import scipy.sparse as sp

import bilinrec.models
from bilinrec.experiments.methods import METHODS, PerUserModel
from bilinrec.experiments.personalization.methods import ALSFoldIn
from bilinrec.models.als import ALS
from bilinrec.models.base import Estimator
from bilinrec.models.lrs import AMHTLRS, DPAMHTLRS, DPGlobalModel, PrivacyBudget, default_clip_bounds
from bilinrec.models.lrs.baselines import FedRep, FineTune, GlobalModel, KnownSubspace, LocalRidge, Oracle, SparseOnly
from bilinrec.models.lrs.synthetic import make_problem
from bilinrec.testing import EstimatorContract, FitData
from bilinrec.testing.data import random_implicit, random_ratings

PROBLEM = make_problem(n_users=40, dim=8, rank=2, sparsity=1, samples=16, noise=0.01, seed=3)
DP = dict(privacy=PrivacyBudget(8.0, 1e-5), clip=default_clip_bounds(PROBLEM.dim, 16, 3.0, 1.0))


# -- the contract over every estimator ----------------------------------------------------------
class PerUserContract(EstimatorContract):
    """The estimators of stacked per-user samples: ``fit(X, y, users, n_users)``, ``predict(X, users)``."""

    def fit_data(self):
        return FitData((PROBLEM.X, PROBLEM.y, PROBLEM.users), {"n_users": PROBLEM.n_users})

    def use(self, model, data):
        return model.predict(PROBLEM.X[:20], PROBLEM.users[:20])

    def bad_inputs(self, data):
        X, y, users = data.args
        return {"users": FitData((X, y, users[:-1])), "X": FitData((X[:, :, None], y, users))}


class TestAMHTLRS(PerUserContract):
    estimator = AMHTLRS
    bad_params = {"rank": 0, "sparsity": -1, "pursuit": "greedy", "tol": -1.0, "sample_splitting": 1}

    def params(self):
        return dict(rank=2, sparsity=1, max_rounds=3, sample_splitting=2, random_state=0)


class TestDPAMHTLRS(PerUserContract):
    estimator = DPAMHTLRS
    bad_params = {"max_rounds": 0, "mode": "public", "accountant": "moments", "ridge_factor": -1.0}

    def params(self):  # a simulation: seeded noise, so that fits can be compared
        return dict(rank=2, sparsity=1, max_rounds=2, random_state=0, mode="simulation", noise_seed=5, **DP)


class TestDPGlobalModel(PerUserContract):
    estimator = DPGlobalModel
    bad_params = {"alpha": -1.0, "mode": "public", "accountant": "moments"}

    def params(self):
        return dict(mode="simulation", noise_seed=5, **DP)


class TestGlobalModel(PerUserContract):
    estimator = GlobalModel


class TestLocalRidge(PerUserContract):
    estimator = LocalRidge
    bad_params = {"alpha": -1.0}


class TestFineTune(PerUserContract):
    estimator = FineTune
    bad_params = {"alpha": -1.0}


class TestFedRep(PerUserContract):
    estimator = FedRep
    bad_params = {"rank": 0, "lr": 0.0}

    def params(self):
        return dict(rank=2, max_rounds=5)


class TestSparseOnly(PerUserContract):
    estimator = SparseOnly
    bad_params = {"sparsity": -1}

    def params(self):
        return dict(sparsity=1, max_rounds=3)


class TestKnownSubspace(PerUserContract):
    estimator = KnownSubspace
    bad_params = {"U": np.ones((3, 2)), "sparsity": -1}

    def params(self):
        return dict(U=PROBLEM.U, sparsity=1)


class TestOracle(PerUserContract):
    estimator = Oracle
    bad_params = {"U": np.ones((3, 2)), "supports": np.zeros((2, 1), dtype=int)}

    def params(self):
        return dict(U=PROBLEM.U, supports=PROBLEM.supports)


class TestALSFoldIn(PerUserContract):
    estimator = ALSFoldIn
    bad_params = {"regularization": 0.0, "feature_scale": np.ones(3)}

    def params(self):
        return dict(regularization=0.1, scale_regularization=False, feature_scale=np.ones(PROBLEM.dim))


class TestALS(EstimatorContract):
    estimator = ALS
    bad_params = {"factors": 0, "regularization": -1.0, "solver": "lu", "dtype": "int8", "iterations": 1.5,
                  "random_state": -1, "acceleration": "nesterov", "feedback": "ordinal"}

    def params(self):
        return dict(factors=3, regularization=0.1, iterations=3, random_state=4)

    def fit_data(self):
        return FitData((random_implicit(seed=5),))

    def use(self, model, data):
        users, items = data.args[0].nonzero()
        return model.predict(users, items)

    def bad_inputs(self, data):
        C = data.args[0]
        undefined = C.copy()
        undefined.data[0] = np.nan
        return {"C": FitData((undefined,)), "mask": FitData((C,), {"mask": sp.csr_matrix((2, 2))})}


class TestALSExplicitWithBiases(TestALS):
    def params(self):
        return dict(factors=3, regularization=0.1, iterations=3, feedback="explicit", use_bias=True, random_state=4)

    def fit_data(self):
        return FitData((random_ratings(seed=6),))


def estimator_classes():
    """Every Estimator subclass defined in bilinrec.models (every module imported)."""
    for info in pkgutil.walk_packages(bilinrec.models.__path__, "bilinrec.models."):
        importlib.import_module(info.name)
    found, todo = set(), [Estimator]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("bilinrec.models") and not sub.__name__.startswith("_"):
                found.add(sub)
    return found


def test_every_estimator_runs_the_contract():
    covered = {cls.estimator for cls in globals().values()
               if inspect.isclass(cls) and issubclass(cls, EstimatorContract) and hasattr(cls, "estimator")}
    missing = estimator_classes() - covered
    assert not missing, f"estimators without a contract test class here: {sorted(c.__name__ for c in missing)}"


def test_every_class_with_fit_in_models_is_an_estimator():
    for info in pkgutil.walk_packages(bilinrec.models.__path__, "bilinrec.models."):
        module = importlib.import_module(info.name)
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and callable(getattr(cls, "fit", None)):
                assert issubclass(cls, Estimator), f"{module.__name__}.{name} has fit but is not an Estimator"


# -- the registry's declarations -----------------------------------------------------------------
def params_of(key):
    """Small, valid hyper-parameters of each registry estimator on PROBLEM."""
    return {
        "amht_lrs": dict(rank=2, sparsity=1, max_rounds=3, random_state=0),
        "amht_lrs_htp": dict(rank=2, sparsity=1, max_rounds=3, pursuit="htp", random_state=0),
        "dp_amht_lrs": dict(rank=2, sparsity=1, max_rounds=2, random_state=0, **DP),
        "dp_altmin": dict(rank=2, sparsity=0, max_rounds=2, random_state=0, **DP),
        "dp_global": dict(random_state=0, **DP),
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


@pytest.mark.parametrize("key", ESTIMATORS)
def test_fitted_model_exposes_what_the_registry_declares(key):
    method = METHODS[key]
    model = method.build(**params_of(key))
    assert isinstance(model, PerUserModel) and isinstance(model, Estimator)
    model.fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
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


@pytest.mark.parametrize("key", [key for key in ESTIMATORS if METHODS[key].private])
def test_private_methods_draw_secret_noise_by_default(key):
    """A private release's noise is not reproducible from anything public, not even random_state."""
    method = METHODS[key]
    one = method.build(**params_of(method.key)).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
    two = method.build(**params_of(method.key)).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users, n_users=PROBLEM.n_users)
    assert not np.array_equal(method.theta(one, PROBLEM.n_users), method.theta(two, PROBLEM.n_users))
