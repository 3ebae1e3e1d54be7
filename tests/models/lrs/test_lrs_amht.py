"""Tests of AMHT-LRS: shared statistics, per-user and shared steps, fitting, bad input."""

import warnings

import numpy as np
import pytest

from bilinrec.models.lrs import (
    AMHTLRS,
    SumAggregator,
    moment_statistics,
    normal_equation_statistics,
    prepare_data,
)
from bilinrec.models.lrs.metrics import normalized_error, subspace_distance
from bilinrec.models.lrs.synthetic import make_problem
from bilinrec.models.lrs.user_parameters import UserParameters
from bilinrec.models.lrs.user_step import (
    fit_user_parameters,
    solve_shared_factor,
)


@pytest.fixture(scope="module")
def small():
    """An easy noiseless problem (recoverable in a few rounds)."""
    return make_problem(300, 30, 2, 2, 30, seed=11)


def _brute_force_moment(p):
    return sum(y**2 * np.outer(x, x) for x, y in zip(p.X, p.y))


# ---------------------------------------------------------------- shared statistics hook
def test_moment_statistics_is_the_sum_of_per_user_contributions(small):
    data = prepare_data(small.X, small.y, small.users)
    stats = moment_statistics(data)
    np.testing.assert_allclose(stats.total(), _brute_force_moment(small), rtol=1e-10)
    per_user = [sum(y**2 * np.outer(x, x) for x, y in zip(small.X[small.users == i], small.y[small.users == i]))
                for i in range(3)]
    np.testing.assert_allclose(stats.per_user_norms()[:3], [np.linalg.norm(c) for c in per_user], rtol=1e-10)
    weights = np.zeros(small.n_users)
    weights[1] = 2.0
    np.testing.assert_allclose(stats.total(weights), 2 * per_user[1], rtol=1e-10)


@pytest.mark.parametrize("cache_limit", [0, 10**6], ids=["batched", "cached-user-grams"])
def test_normal_equation_statistics_match_kronecker_sums(cache_limit, monkeypatch):
    monkeypatch.setattr("bilinrec.models.lrs.data._MAX_GRAM_CACHE_ELEMENTS", cache_limit)
    p = make_problem(6, 5, 2, 1, 4, seed=3)
    data = prepare_data(p.X, p.y, p.users)
    assert (data.user_grams() is None) == (cache_limit == 0)
    rng = np.random.default_rng(0)
    W, z = rng.standard_normal((6, 2)), rng.standard_normal(len(p.y))
    user_w = rng.random(6)
    stats = normal_equation_statistics(data, W, z, user_weights=user_w)
    A = np.zeros((10, 10))
    b = np.zeros(10)
    for i in range(6):
        rows = data.indptr[i], data.indptr[i + 1]
        Xi, zi = data.X[rows[0]:rows[1]], z[rows[0]:rows[1]]
        A += user_w[i] * np.kron(np.outer(W[i], W[i]), Xi.T @ Xi)
        b += user_w[i] * np.kron(W[i], Xi.T @ zi)
    np.testing.assert_allclose(stats.gram(), A, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.rhs(), b, rtol=1e-10, atol=1e-12)
    v = rng.standard_normal(10)
    np.testing.assert_allclose(stats.operator() @ v, A @ v, rtol=1e-10, atol=1e-12)
    clip = rng.random(6)
    A_clip = sum(clip[i] * user_w[i] * np.kron(np.outer(W[i], W[i]), data.X[data.indptr[i]:data.indptr[i + 1]].T
                                               @ data.X[data.indptr[i]:data.indptr[i + 1]]) for i in range(6))
    np.testing.assert_allclose(stats.gram(clip), A_clip, rtol=1e-10, atol=1e-12)
    gram_norms, rhs_norms = stats.per_user_norms()
    Xi = data.X[data.indptr[2]:data.indptr[3]]
    A2 = user_w[2] * np.kron(np.outer(W[2], W[2]), Xi.T @ Xi)
    np.testing.assert_allclose(gram_norms[2], np.linalg.norm(A2), rtol=1e-10)
    np.testing.assert_allclose(rhs_norms[2], np.linalg.norm(user_w[2] * np.kron(W[2], Xi.T @ z[data.indptr[2]:data.indptr[3]])), rtol=1e-10)
    with pytest.raises(ValueError, match="weights"):
        stats.gram(np.ones(3))


class CountingAggregator(SumAggregator):
    """Records that the estimator goes through the aggregator hook."""

    def __init__(self):
        super().__init__("exact")
        self.calls = {"moment": 0, "normal": 0}

    def aggregate_moment(self, stats):
        self.calls["moment"] += 1
        return super().aggregate_moment(stats)

    def aggregate_normal_equations(self, stats):
        self.calls["normal"] += 1
        return super().aggregate_normal_equations(stats)


def test_estimator_uses_the_aggregator_hook(small):
    agg = CountingAggregator()
    est = AMHTLRS(2, 2, aggregator=agg).fit(small.X, small.y, small.users)
    assert agg.calls["moment"] == 1
    assert agg.calls["normal"] == est.n_rounds_ - int(est.converged_)
    assert normalized_error(est.theta_, small.theta) < 1e-4


class DuckAggregator:
    """The sum aggregator's arithmetic behind a type the estimator does not know (so no shortcut)."""

    def __init__(self, moment_precision="single"):
        self._sum = SumAggregator("cg", moment_precision)

    def aggregate_moment(self, stats):
        return self._sum.aggregate_moment(stats)

    def aggregate_normal_equations(self, stats):
        return self._sum.aggregate_normal_equations(stats)


def test_the_u_steps_rhs_from_the_user_step_makes_no_pass_and_the_same_fit(monkeypatch):
    p = make_problem(400, 30, 3, 3, 20, noise=0.05, seed=3)
    options = dict(max_rounds=6, tol=0.0, min_loss=0.0, u_solver="cg")
    passes = AMHTLRS(3, 3, aggregator=DuckAggregator(), **options).fit(p.X, p.y, p.users)
    from bilinrec.models.lrs import segment_kernels

    def no_pass(*args, **kwargs):
        raise AssertionError("the U step made its own right-hand-side pass over X")

    monkeypatch.setattr(segment_kernels, "segment_xz_product", no_pass)
    fused = AMHTLRS(3, 3, **options).fit(p.X, p.y, p.users)
    np.testing.assert_allclose(fused.U_, passes.U_, atol=1e-10)
    np.testing.assert_allclose(fused.theta_, passes.theta_, atol=1e-10)
    # robustness weights reweight the sums: the U step forms them itself
    with pytest.raises(AssertionError, match="right-hand-side pass"):
        AMHTLRS(3, 3, robust_cutoff=10.0, **options).fit(p.X, p.y, p.users)


def test_the_single_precision_moment_starts_at_the_same_subspace_and_fixed_point(small):
    data = prepare_data(small.X, small.y, small.users)
    exact = _brute_force_moment(small)
    single = SumAggregator("cg", "single").aggregate_moment(moment_statistics(data))
    double = SumAggregator("cg", "double").aggregate_moment(moment_statistics(data))
    np.testing.assert_allclose(double, exact, rtol=1e-10)
    assert np.abs(single - exact).max() < 1e-6 * np.abs(exact).max()
    assert np.abs(single - exact).max() > 0  # float32 blocks: not the double sum
    p = make_problem(400, 30, 3, 3, 20, noise=0.05, seed=3)
    fits = [AMHTLRS(3, 3, aggregator=DuckAggregator(precision)).fit(p.X, p.y, p.users)
            for precision in ("single", "double")]
    assert fits[0].converged_ and fits[1].converged_
    np.testing.assert_allclose(fits[0].theta_, fits[1].theta_, atol=1e-9)
    with pytest.raises(ValueError, match="moment_precision"):
        SumAggregator("cg", "half")


# ---------------------------------------------------------------- the two steps
def test_user_step_recovers_heads_and_supports_given_the_true_subspace(small):
    data = prepare_data(small.X, small.y, small.users)
    heads, residual, _ = fit_user_parameters(data, small.U, 2)
    np.testing.assert_allclose(heads.W, small.W, atol=1e-6)
    np.testing.assert_allclose(heads.dense_sparse_part(30), small.B, atol=1e-6)
    assert np.max(np.abs(residual)) < 1e-6


@pytest.mark.parametrize("solver", ["exact", "cg"])
def test_shared_step_recovers_the_subspace_given_true_user_parameters(small, solver):
    data = prepare_data(small.X, small.y, small.users)
    heads = UserParameters(small.W.copy(), small.supports.copy(), np.take_along_axis(small.B, small.supports, 1),
                   np.ones(small.supports.shape, dtype=bool))
    rng = np.random.default_rng(1)
    start = np.linalg.qr(rng.standard_normal((30, 2)))[0]
    U, W = solve_shared_factor(data, heads, SumAggregator(solver), start)
    np.testing.assert_allclose(U.T @ U, np.eye(2), atol=1e-10)
    assert subspace_distance(U, small.U) < 1e-8
    np.testing.assert_allclose(W @ U.T, small.W @ small.U.T, atol=1e-7)


# ---------------------------------------------------------------- fitting
def test_exact_recovery_on_an_easy_problem(small):
    est = AMHTLRS(2, 2).fit(small.X, small.y, small.users)
    assert normalized_error(est.theta_, small.theta) < 1e-4
    assert subspace_distance(est.U_, small.U) < 1e-4
    assert est.B_.shape == (300, 30) and est.B_.nnz <= 600
    np.testing.assert_allclose(est.U_.T @ est.U_, np.eye(2), atol=1e-10)
    np.testing.assert_allclose(est.theta_, est.W_ @ est.U_.T + est.B_.toarray())
    assert est.history_[0]["round"] == 0 and est.history_[-1]["loss"] < est.history_[0]["loss"]
    X_new, y_new, users_new = small.sample(3, np.random.default_rng(5))
    np.testing.assert_allclose(est.predict(X_new, users_new), y_new, atol=1e-3)


def test_uneven_counts_robust_weights_keep_stuck_users_out_of_the_subspace():
    # a few users with few samples stay on a wrong support; unweighted they bias U for everyone
    p = make_problem(300, 30, 2, 2, 30, sample_distribution="lognormal", sample_spread=0.3,
                     min_samples=12, seed=11)
    plain = AMHTLRS(2, 2, robust_cutoff=None).fit(p.X, p.y, p.users)
    robust = AMHTLRS(2, 2, robust_cutoff=10.0).fit(p.X, p.y, p.users)
    assert subspace_distance(plain.U_, p.U) > 1e-4
    assert subspace_distance(robust.U_, p.U) < 1e-5
    user_error = np.linalg.norm(robust.theta_ - p.theta, axis=1) / np.linalg.norm(p.theta, axis=1)
    assert np.mean(user_error < 1e-4) > 0.97


def test_fit_does_not_depend_on_row_order(small):
    perm = np.random.default_rng(2).permutation(len(small.y))
    a = AMHTLRS(2, 2).fit(small.X, small.y, small.users)
    b = AMHTLRS(2, 2).fit(small.X[perm], small.y[perm], small.users[perm])
    np.testing.assert_allclose(a.theta_, b.theta_, atol=1e-8)


def test_theta_is_formed_on_first_access_and_not_kept_by_a_refit(small):
    est = AMHTLRS(2, 2, max_rounds=3).fit(small.X, small.y, small.users)
    assert est._theta is None  # the fit holds no dense (t, d) theta_ next to its data
    theta = est.theta_
    np.testing.assert_array_equal(theta, est.W_ @ est.U_.T + est.B_.toarray())
    assert est.theta_ is theta  # formed once, then kept
    est.fit(small.X, 2 * small.y, small.users)
    assert est._theta is None
    np.testing.assert_allclose(est.theta_, 2 * theta, atol=1e-6)
    assert not hasattr(AMHTLRS(2, 2), "theta_")


def test_int64_user_ids_are_not_copied(small):
    from bilinrec.models.lrs.data import _as_user_ids

    assert _as_user_ids(small.users) is small.users
    converted = _as_user_ids(small.users.astype(np.int32))
    assert converted.dtype == np.int64 and np.array_equal(converted, small.users)


def test_fit_user_recovers_a_new_user(small):
    est = AMHTLRS(2, 2).fit(small.X, small.y, small.users)
    rng = np.random.default_rng(9)
    theta = small.U @ np.array([0.7, -1.2])
    theta[[3, 17]] += [0.9, -0.6]
    X = rng.standard_normal((25, 30))
    fit = est.fit_user(X, X @ theta)
    np.testing.assert_allclose(fit.theta, theta, atol=1e-4)
    assert set(np.flatnonzero(np.abs(fit.b) > 1e-8)) == {3, 17}


@pytest.mark.parametrize(
    "options",
    [
        {"pursuit": "htp"},
        {"threshold": "value", "threshold_decay": 0.5},
        {"restarts": True},
        {"robust_cutoff": 5.0},
        {"u_solver": "exact"},
    ],
)
def test_every_option_recovers_an_easy_problem(options):
    p = make_problem(300, 30, 2, 2, 40, seed=21)
    est = AMHTLRS(2, 2, **options).fit(p.X, p.y, p.users)
    assert normalized_error(est.theta_, p.theta) < 1e-3


def test_conservative_spectral_step_stalls_where_the_inverse_count_step_recovers():
    # with hard-thresholding pursuit, a 1/||X_i||^2 step barely moves b away from its first
    # support; the 1/m_i step finds the true supports
    p = make_problem(300, 30, 2, 2, 40, seed=22)
    fast = AMHTLRS(2, 2, pursuit="htp").fit(p.X, p.y, p.users)
    slow = AMHTLRS(2, 2, pursuit="htp", step="spectral", inner_iters=50).fit(p.X, p.y, p.users)
    assert normalized_error(fast.theta_, p.theta) < 1e-4
    assert normalized_error(slow.theta_, p.theta) > 1e-2


def test_sample_splitting_uses_disjoint_folds():
    p = make_problem(400, 20, 2, 1, 60, seed=4)
    est = AMHTLRS(2, 1, sample_splitting=3, max_rounds=8, random_state=0).fit(p.X, p.y, p.users)
    folds = est._folds(prepare_data(p.X, p.y, p.users))
    assert sum(f.n_samples for f in folds) == len(p.y)
    assert all(np.all(f.counts == 20) for f in folds)
    assert normalized_error(est.theta_, p.theta) < 0.1


def test_noisy_error_is_close_to_the_oracle_level():
    p = make_problem(500, 30, 2, 2, 60, noise=0.1, seed=8)
    est = AMHTLRS(2, 2).fit(p.X, p.y, p.users)
    # per-user least squares with r + k = 4 unknowns: error ~ sigma sqrt(4/m) / ||theta_i||
    assert normalized_error(est.theta_, p.theta) < 0.04


# ---------------------------------------------------------------- acceptance (Paper A setting)
ACCEPTANCE_CONFIGS = [
    {"seed": 101},
    {"seed": 202, "w_scale": 1.5, "b_scale": 0.8, "coherence": 0.2},
]


@pytest.mark.parametrize("config", ACCEPTANCE_CONFIGS)
def test_acceptance_noiseless_m45_recovers(config):
    p = make_problem(1000, 100, 3, 3, 45, **config)
    est = AMHTLRS(3, 3).fit(p.X, p.y, p.users)
    error = normalized_error(est.theta_, p.theta)
    assert error < 0.05
    assert error < 1e-3  # exact recovery (up to the stopping rule)


@pytest.mark.parametrize("config", ACCEPTANCE_CONFIGS)
def test_acceptance_noiseless_m30_beats_low_rank_only(config):
    p = make_problem(1000, 100, 3, 3, 30, **config)
    lrs = normalized_error(AMHTLRS(3, 3).fit(p.X, p.y, p.users).theta_, p.theta)
    altmin = normalized_error(AMHTLRS(3, 0).fit(p.X, p.y, p.users).theta_, p.theta)
    assert lrs < 0.5 * altmin


# ---------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def tiny():
    return make_problem(10, 8, 2, 1, 6, seed=0)


@pytest.mark.parametrize(
    "rank, sparsity, name",
    [(9, 1, "rank"), (0, 1, "rank"), (2, 9, "sparsity"), (2, -1, "sparsity"), (2.0, 1, "rank")],
)
def test_bad_rank_or_sparsity(tiny, rank, sparsity, name):
    with pytest.raises(ValueError, match=name):
        AMHTLRS(rank, sparsity).fit(tiny.X, tiny.y, tiny.users)


def test_too_few_samples_for_every_user(tiny):
    with pytest.raises(ValueError, match="fewer samples"):
        AMHTLRS(4, 3).fit(tiny.X, tiny.y, tiny.users)


@pytest.mark.parametrize(
    "mutate, name",
    [
        (lambda X, y, u: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y, u), "X"),
        (lambda X, y, u: (X, np.where(np.arange(y.size) == 3, np.inf, y), u), "y"),
        (lambda X, y, u: (X, y[:-1], u), "same length"),
        (lambda X, y, u: (X, y, u + 0.5), "integer"),
        (lambda X, y, u: (X, y, u - 1), "non-negative"),
        (lambda X, y, u: (X[:, 0], y, u), "X must be a 2-D"),
    ],
)
def test_bad_data_is_named(tiny, mutate, name):
    X, y, users = mutate(tiny.X, tiny.y, tiny.users)
    with pytest.raises(ValueError, match=name):
        AMHTLRS(2, 1).fit(X, y, users)


def test_users_without_samples_are_reported(tiny):
    users = np.where(tiny.users >= 3, tiny.users + 1, tiny.users)  # id 3 has no samples
    with pytest.warns(UserWarning, match="no samples"):
        est = AMHTLRS(2, 1).fit(tiny.X, tiny.y, users, n_users=12)
    np.testing.assert_array_equal(est.empty_users_, [3, 11])
    assert est.theta_.shape == (12, 8)
    np.testing.assert_array_equal(est.theta_[3], 0.0)


def test_predict_checks_input_and_fit_state(tiny):
    with pytest.raises(RuntimeError, match="not fitted"):
        AMHTLRS(2, 1).predict(tiny.X, tiny.users)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = AMHTLRS(2, 1).fit(tiny.X, tiny.y, tiny.users)
    with pytest.raises(ValueError, match="users"):
        est.predict(tiny.X, np.full(len(tiny.y), 10))
    with pytest.raises(ValueError, match="X"):
        est.predict(tiny.X[:, :3], tiny.users)
