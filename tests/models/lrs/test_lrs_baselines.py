"""Tests of the AMHT-LRS baselines and the recovery metrics."""

import numpy as np
import pytest

from bilinrec.models.lrs import baselines as bl
from bilinrec.models.lrs.metrics import (
    mse,
    normalized_error,
    subspace_distance,
    support_precision_recall,
)
from bilinrec.models.lrs.synthetic import make_problem


@pytest.fixture(scope="module")
def problem():
    return make_problem(60, 12, 2, 2, 20, noise=0.05, seed=5)


def test_global_model_is_pooled_least_squares(problem):
    est = bl.GlobalModel().fit(problem.X, problem.y, problem.users)
    expected = np.linalg.lstsq(problem.X, problem.y, rcond=None)[0]
    np.testing.assert_allclose(est.coef_, expected, atol=1e-9)
    assert np.all(est.theta_ == est.coef_)


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_local_and_finetune_are_per_user_ridge(alpha):
    p = make_problem(8, 12, 2, 2, 9, noise=0.05, seed=6, sample_distribution="lognormal", min_samples=3)
    local = bl.LocalRidge(alpha).fit(p.X, p.y, p.users)
    tuned = bl.FineTune(alpha).fit(p.X, p.y, p.users)
    for i in range(8):
        Xi, yi = p.X[p.users == i], p.y[p.users == i]
        if alpha == 0:  # minimum-norm least squares
            expected = np.linalg.lstsq(Xi, yi, rcond=None)[0]
            shift = np.linalg.lstsq(Xi, yi - Xi @ tuned.global_coef_, rcond=None)[0]
        else:
            expected = np.linalg.solve(Xi.T @ Xi + alpha * np.eye(12), Xi.T @ yi)
            shift = np.linalg.solve(Xi.T @ Xi + alpha * np.eye(12), Xi.T @ (yi - Xi @ tuned.global_coef_))
        np.testing.assert_allclose(local.theta_[i], expected, atol=1e-6)
        np.testing.assert_allclose(tuned.theta_[i], tuned.global_coef_ + shift, atol=1e-6)


def test_oracle_recovers_noiseless_problems_exactly():
    p = make_problem(50, 20, 2, 3, 8, seed=7)
    est = bl.Oracle(p.U, p.supports).fit(p.X, p.y, p.users)
    assert normalized_error(est.theta_, p.theta) < 1e-6
    with pytest.raises(ValueError, match="supports"):
        bl.Oracle(p.U, p.supports[:5]).fit(p.X, p.y, p.users)


def test_low_rank_only_methods_recover_a_purely_low_rank_problem():
    p = make_problem(300, 20, 2, 0, 15, seed=8)
    altmin = bl.AltMin(2).fit(p.X, p.y, p.users)
    fedrep = bl.FedRep(2, max_rounds=500, tol=1e-12).fit(p.X, p.y, p.users)
    assert normalized_error(altmin.theta_, p.theta) < 1e-4
    assert normalized_error(fedrep.theta_, p.theta) < 1e-3
    assert altmin.B_.nnz == 0
    assert fedrep.n_rounds_ > altmin.n_rounds_  # gradient steps on U need more rounds


def test_sparse_only_recovers_a_shared_vector_plus_sparse_problem():
    rng = np.random.default_rng(0)
    t, d, m = 200, 20, 25
    shared = rng.standard_normal(d)
    B = np.zeros((t, d))
    for i in range(t):
        B[i, rng.choice(d, 2, replace=False)] = rng.standard_normal(2)
    users = np.repeat(np.arange(t), m)
    X = rng.standard_normal((t * m, d))
    y = np.einsum("nd,nd->n", X, (shared + B)[users])
    est = bl.SparseOnly(2, max_rounds=30, tol=1e-12).fit(X, y, users)
    assert normalized_error(est.theta_, shared + B) < 1e-3
    precision, recall = support_precision_recall(est.B_, B)
    assert precision > 0.95 and recall > 0.95


def test_ranking_of_methods_on_a_low_rank_plus_sparse_problem(problem):
    errors = {}
    for name, est in {
        "global": bl.GlobalModel(),
        "local": bl.LocalRidge(0.1),
        "altmin": bl.AltMin(2),
        "oracle": bl.Oracle(problem.U, problem.supports),
    }.items():
        errors[name] = normalized_error(est.fit(problem.X, problem.y, problem.users).theta_, problem.theta)
    assert errors["oracle"] < errors["altmin"] < errors["global"]
    assert errors["oracle"] < errors["local"]


@pytest.mark.parametrize("make", [lambda: bl.LocalRidge(-1.0), lambda: bl.FineTune(-1.0)])
def test_negative_ridge_is_rejected(problem, make):
    with pytest.raises(ValueError, match="alpha"):
        make().fit(problem.X, problem.y, problem.users)


def test_bad_rank_and_sparsity_of_baselines(problem):
    with pytest.raises(ValueError, match="rank"):
        bl.FedRep(13).fit(problem.X, problem.y, problem.users)
    with pytest.raises(ValueError, match="sparsity"):
        bl.SparseOnly(13).fit(problem.X, problem.y, problem.users)
    with pytest.raises(ValueError, match="NaN"):
        bl.GlobalModel().fit(np.full_like(problem.X, np.nan), problem.y, problem.users)


def test_predict_of_baselines(problem):
    est = bl.LocalRidge(0.1).fit(problem.X, problem.y, problem.users)
    np.testing.assert_allclose(est.predict(problem.X[:5], problem.users[:5]),
                               np.einsum("nd,nd->n", problem.X[:5], est.theta_[problem.users[:5]]))
    with pytest.raises(ValueError, match="users"):
        est.predict(problem.X[:2], np.array([0, 60]))
    with pytest.raises(RuntimeError, match="not fitted"):
        bl.GlobalModel().predict(problem.X, problem.users)


def test_metrics_on_known_values():
    theta = np.array([[3.0, 4.0]])
    assert normalized_error(theta + [[0.0, 0.5]], theta) == pytest.approx(0.1)
    U = np.eye(3)[:, :1]
    assert subspace_distance(U, U) == pytest.approx(0.0)
    assert subspace_distance(np.eye(3)[:, 1:2], U) == pytest.approx(1.0)
    B = np.array([[1.0, 0, 2.0], [0, 0, 0]])
    B_hat = np.array([[1.0, 1.0, 0], [0, 0, 0]])
    assert support_precision_recall(B_hat, B) == (0.5, 0.5)
    assert support_precision_recall(np.zeros((2, 3)), B) == (1.0, 0.0)
    assert mse(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="all zero"):
        normalized_error(theta, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        mse(np.zeros(2), np.zeros(3))
