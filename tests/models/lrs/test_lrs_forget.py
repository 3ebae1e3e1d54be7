"""Forgetting for AMHT-LRS and DP-AMHT-LRS: exact re-fits to the retraining fixed point, the DP
shortcut, the membership bound, and the time-to-forget curve."""

import itertools
import math
import warnings

import numpy as np
import pytest
from conftest import ROOT

from bilinrec.experiments.forget.steps import (
    FORGET_COLUMNS,
    dp_forgetting_markdown,
    dp_forgetting_table,
    lrs_forget_curve,
)
from bilinrec.models.forgetting import Forgetting
from bilinrec.models.lrs import (
    AMHTLRS,
    DPAMHTLRS,
    PrivacyBudget,
    calibrate_noise_multiplier,
    default_clip_bounds,
    dp_forgetting_bound,
    group_privacy,
    training_epsilon,
)
from bilinrec.models.lrs.synthetic import make_problem

# Well conditioned: a retrain from scratch and the forgotten model reach the same fixed point near
# the truth. (AMHT-LRS has local fixed points: on e.g. n_users=40, dim=8 a retrain from scratch
# can stop at a worse one than the warm start, both being fixed points to 1e-10.)
PROBLEM = make_problem(n_users=60, dim=10, rank=2, sparsity=1, samples=60, noise=0.05, seed=2)
EXACT = {"u_solver": "exact", "tol": 0.0, "max_rounds": 300}
GONE = np.array([1, 7, 20])


@pytest.fixture(scope="module")
def model():
    return AMHTLRS(2, 1, **EXACT).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users)


@pytest.fixture(scope="module")
def forgotten(model):
    return model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=GONE)


def remaining(gone=GONE):
    keep = ~np.isin(PROBLEM.users, gone)
    return PROBLEM.X[keep], PROBLEM.y[keep], PROBLEM.users[keep]


def test_forgetting_users_reaches_the_retraining_fixed_point(model, forgotten):
    assert isinstance(forgotten, Forgetting)
    new, record = forgotten
    assert record.model == "amht_lrs" and record.method == "exact"
    assert record.users == GONE.tolist()
    assert record.records == int(np.isin(PROBLEM.users, GONE).sum())
    assert record.gap < 1e-9 and "one further round" in record.gap_measure
    assert record.rows_touched == PROBLEM.n_users - GONE.size
    assert record.details["rounds"] >= 1 and record.seconds > 0
    assert new.fixed_point_gap(*remaining()) == pytest.approx(record.gap, rel=1e-6, abs=1e-12)


def test_the_original_model_is_not_a_fixed_point_on_the_remaining_data(model, forgotten):
    """Negative control: without re-fitting, one round on the remaining data still moves the model."""
    assert model.fixed_point_gap(*remaining()) > 1e-5 > 1e4 * forgotten.record.gap


def test_forgetting_agrees_with_a_retrain_from_scratch(forgotten):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the forgotten users have no samples
        retrain = AMHTLRS(2, 1, **EXACT).fit(*remaining(), n_users=PROBLEM.n_users)
    new = forgotten.model
    X, _, users = remaining()
    np.testing.assert_allclose(new.predict(X, users), retrain.predict(X, users), rtol=1e-6, atol=1e-6)
    cosines = np.linalg.svd(new.U_.T @ retrain.U_, compute_uv=False)
    assert np.arccos(min(cosines.min(), 1.0)) < 1e-5  # the same subspace
    # both recover the ground truth to the noise level
    kept = np.setdiff1d(np.arange(PROBLEM.n_users), GONE)
    for fitted in (new, retrain):
        assert np.abs(fitted.theta_[kept] - PROBLEM.theta[kept]).max() < 0.05


def refit_from_scratch(problem, gone, **params):
    """An independent retrain on the remaining data and its predictions there."""
    keep = ~np.isin(problem.users, gone)
    X, y, users = problem.X[keep], problem.y[keep], problem.users[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the forgotten users have no samples
        refit = AMHTLRS(**params).fit(X, y, users, n_users=problem.n_users)
    return refit, (X, y, users), refit.predict(X, users)


def test_compare_refit_reports_the_distance_to_a_refit_from_scratch(model):
    new, record = model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=GONE, compare_refit=True)
    _, (X, _, users), reference = refit_from_scratch(PROBLEM, GONE, rank=2, sparsity=1, **EXACT)
    details = record.details
    for name, fitted in (("refit_distance", new), ("control_refit_distance", model)):
        expected = np.linalg.norm(fitted.predict(X, users) - reference) / np.linalg.norm(reference)
        assert details[name] == pytest.approx(expected, rel=1e-9, abs=1e-15)
    # well conditioned: the same fixed point as the refit; the untouched model is far from it
    assert details["refit_distance"] < 1e-6 and details["control_refit_distance"] > 100 * details["refit_distance"]
    assert "from scratch" in details["refit_measure"] and details["refit_seconds"] > 0
    plain = model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=GONE).record
    assert "refit_distance" not in plain.details


def test_compare_refit_exposes_a_different_fixed_point():
    """Hard thresholding has several fixed points: a forget can stop at a fixed point (gap 1e-10)
    as far from the refit's (itself a fixed point) as the untouched model is."""
    P = make_problem(n_users=40, dim=8, rank=2, sparsity=2, samples=20, noise=0.05, seed=0)
    params = dict(rank=2, sparsity=2, **EXACT)
    original = AMHTLRS(**params).fit(P.X, P.y, P.users)
    record = original.forget(P.X, P.y, P.users, forget_users=GONE, compare_refit=True).record
    refit, remaining_data, _ = refit_from_scratch(P, GONE, **params)
    assert record.gap < 1e-8 and refit.fixed_point_gap(*remaining_data) < 1e-8  # both fixed points
    assert record.details["refit_distance"] > 1e-3
    assert record.details["refit_distance"] > 0.5 * record.details["control_refit_distance"]


def test_a_forgotten_user_is_deleted_and_predict_refuses_it(forgotten):
    new = forgotten.model
    assert new.forgotten_users_.tolist() == GONE.tolist()
    assert not new.theta_[GONE].any() and not new.W_[GONE].any() and new.B_[GONE].nnz == 0
    with pytest.raises(ValueError, match="forgotten user 7"):
        new.predict(PROBLEM.X[:2], [0, 7])
    assert new.fit_user(PROBLEM.X[:20], PROBLEM.y[:20]).theta.shape == (PROBLEM.dim,)


def test_self_and_data_are_unchanged(model):
    before = {k: np.copy(getattr(model, k)) for k in ("U_", "W_", "theta_")}
    data = [a.copy() for a in (PROBLEM.X, PROBLEM.y, PROBLEM.users)]
    new, _ = model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[3], forget_samples=[0, 100])
    assert new is not model and new._heads is not model._heads
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(model, k), v)
    assert model.forgotten_users_.size == 0 and model.forgotten_samples_.size == 0
    for a, b in zip(data, (PROBLEM.X, PROBLEM.y, PROBLEM.users)):
        np.testing.assert_array_equal(a, b)


def test_forgetting_samples_refits_the_user_and_the_shared_part(model):
    rows = np.flatnonzero(PROBLEM.users == 5)[:30]
    mask = np.zeros(len(PROBLEM.y), dtype=bool)
    mask[rows] = True
    by_rows = model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_samples=rows)
    by_mask = model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_samples=mask)
    np.testing.assert_array_equal(by_rows.model.theta_, by_mask.model.theta_)
    new, record = by_rows
    assert record.users == [] and record.records == 30 and record.gap < 1e-9
    assert new.forgotten_samples_.tolist() == rows.tolist()
    assert new.fixed_point_gap(PROBLEM.X[~mask], PROBLEM.y[~mask], PROBLEM.users[~mask]) < 1e-9
    assert not np.allclose(new.theta_[5], model.theta_[5], atol=1e-6)  # user 5 was re-fitted
    # forgetting all of a user's samples forgets the user
    whole = model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_samples=PROBLEM.users == 9)
    assert whole.record.users == [9] and whole.model.forgotten_users_.tolist() == [9]


def test_forgetting_twice_keeps_the_ledger(forgotten):
    again = forgotten.model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[30])
    assert again.record.users == [30]
    assert again.model.forgotten_users_.tolist() == sorted([*GONE.tolist(), 30])
    assert again.model.fixed_point_gap(*remaining(np.append(GONE, 30))) < 1e-9


@pytest.mark.parametrize("kwargs, match", [
    ({"forget_users": [60]}, "forget_users contains id 60"),
    ({"forget_users": [-1]}, "forget_users must hold non-negative"),
    ({"forget_users": ["a"]}, "forget_users must hold integer"),
    ({"forget_samples": np.ones(5, dtype=bool)}, "forget_samples as a boolean mask"),
    ({"forget_samples": [len(PROBLEM.y)]}, "forget_samples contains row"),
    ({"forget_users": np.arange(60)}, "forgetting all users"),
    ({"forget_users": [1], "method": "dp"}, "method must be one of 'exact'"),
    ({"forget_users": [1], "max_rounds": 0}, "max_rounds must be a positive integer"),
    ({"forget_users": [1], "tol": -1.0}, "tol must be non-negative"),
])
def test_bad_inputs_name_the_argument(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, **kwargs)


def test_bad_data_and_incompatible_settings_are_refused(model):
    with pytest.raises(ValueError, match="shape"):
        model.forget(PROBLEM.X[:, :3], PROBLEM.y, PROBLEM.users, forget_users=[1])
    with pytest.raises(RuntimeError, match="not fitted"):
        AMHTLRS(2, 1).forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[1])
    for option, match in (({"sample_splitting": 2}, "sample_splitting"), ({"threshold": "value"}, "threshold")):
        other = AMHTLRS(2, 1, max_rounds=3, **option).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users)
        with pytest.raises(ValueError, match=match):
            other.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[1])


def test_restarts_are_part_of_the_retraining_round():
    fitted = AMHTLRS(2, 1, restarts=True, **EXACT).fit(PROBLEM.X, PROBLEM.y, PROBLEM.users)
    new, record = fitted.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[2])
    assert record.gap < 1e-9
    assert new.fixed_point_gap(*remaining([2])) < 1e-9


def test_a_saved_model_forgets_like_the_fitted_one(forgotten, tmp_path):
    path = tmp_path / "model.npz"
    forgotten.model.save(path)
    loaded = AMHTLRS.load(path)
    np.testing.assert_array_equal(loaded.theta_, forgotten.model.theta_)
    a = forgotten.model.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[30])
    b = loaded.forget(PROBLEM.X, PROBLEM.y, PROBLEM.users, forget_users=[30])
    np.testing.assert_array_equal(a.model.theta_, b.model.theta_)


# -- DP-AMHT-LRS -----------------------------------------------------------------------------
DP_PROBLEM = make_problem(n_users=40, dim=8, rank=2, sparsity=1, samples=16, noise=0.01, seed=3)
DP_PARAMS = {"privacy": PrivacyBudget(4.0, 1e-5), "clip": default_clip_bounds(8, 16, 3.0, 1.0), "max_rounds": 3,
                 "random_state": 0}


def dp_fit(**params):
    P = DP_PROBLEM
    return DPAMHTLRS(2, 1, **(DP_PARAMS | params)).fit(P.X, P.y, P.users)


@pytest.mark.parametrize("mode", ["private", "simulation"])
def test_dp_forgetting_keeps_the_released_u_and_deletes_the_user(mode):
    P = DP_PROBLEM
    model = dp_fit(mode=mode, noise_seed=5 if mode == "simulation" else None)
    U, theta = model.U_.copy(), model.theta_.copy()
    new, record = model.forget(P.X, P.y, P.users, forget_users=[4], method="dp")
    assert np.array_equal(new.U_, U)  # bit-identical
    assert not new.theta_[4].any() and new.model_.forgotten_users_.tolist() == [4]
    others = np.setdiff1d(np.arange(P.n_users), [4])
    np.testing.assert_array_equal(new.theta_[others], theta[others])
    assert math.isnan(record.gap) and record.bound is None and "not measured" in record.gap_measure
    assert record.rows_touched == 0 and record.details["epsilon"] == model.epsilon_
    assert record.details["delta"] == 1e-5 and not record.details["new_release"]
    np.testing.assert_array_equal(model.theta_, theta)  # self unchanged
    with pytest.raises(ValueError, match="forgotten user 4"):
        new.predict(P.X[:1], [4])


def test_dp_forgetting_samples_refits_only_that_user_from_the_kept_u():
    P = DP_PROBLEM
    model = dp_fit(mode="simulation", noise_seed=5)
    rows = np.flatnonzero(P.users == 6)[:5]
    new, record = model.forget(P.X, P.y, P.users, forget_samples=rows, method="dp")
    assert record.rows_touched == 1 and record.records == 5
    rest = (P.users == 6) & ~np.isin(np.arange(len(P.y)), rows)
    np.testing.assert_allclose(new.theta_[6], model.fit_user(P.X[rest], P.y[rest]).theta, atol=1e-12)
    np.testing.assert_array_equal(new.theta_[7], model.theta_[7])


def test_dp_exact_forgetting_is_a_fresh_private_fit():
    P = DP_PROBLEM
    model = dp_fit(mode="simulation", noise_seed=5)
    one = model.forget(P.X, P.y, P.users, forget_users=[4], method="exact")
    two = model.forget(P.X, P.y, P.users, forget_users=[4], method="exact")
    np.testing.assert_array_equal(one.model.U_, two.model.U_)  # derived noise seed: reproducible
    assert one.model.noise_seed != model.noise_seed == 5
    assert not np.allclose(one.model.U_, model.U_)
    assert one.record.details["new_release"] and one.record.details["epsilon"] <= 4.0 + 1e-9
    assert not one.model.theta_[4].any() and one.record.users == [4]
    keep = P.users != 4
    refit = DPAMHTLRS(2, 1, **(DP_PARAMS | {"mode": "simulation", "noise_seed": one.model.noise_seed}))
    refit.fit(P.X[keep], P.y[keep], P.users[keep], n_users=P.n_users)
    np.testing.assert_array_equal(refit.U_, one.model.U_)
    private = dp_fit().forget(P.X, P.y, P.users, forget_users=[4], method="exact")
    assert private.model.release_ == "private release (secret noise)" and not private.model.theta_[4].any()


def test_dp_forget_bad_inputs_and_non_private_models():
    P = DP_PROBLEM
    model = dp_fit()
    with pytest.raises(ValueError, match="method must be one of"):
        model.forget(P.X, P.y, P.users, forget_users=[1], method="certified")
    with pytest.raises(ValueError, match="forget_users contains id 99"):
        model.forget(P.X, P.y, P.users, forget_users=[99])
    plain = DPAMHTLRS(2, 1, max_rounds=3, random_state=0, amht_options={"u_solver": "exact"}).fit(P.X, P.y, P.users)
    with pytest.raises(ValueError, match="needs a private fit"):
        plain.forget(P.X, P.y, P.users, forget_users=[1], method="dp")
    new, record = plain.forget(P.X, P.y, P.users, forget_users=[1], method="exact")
    assert record.model == "dp_amht_lrs" and not new.theta_[1].any()


def test_dp_forgetting_states_the_guarantee_of_the_group_forgotten():
    P = DP_PROBLEM
    model = dp_fit(mode="simulation", noise_seed=5)
    releases = model.release_schedule()

    def expected(size):
        return group_privacy(model.epsilon_, model.delta_, model.noise_multiplier_, releases, size)

    one = model.forget(P.X, P.y, P.users, forget_users=[4], method="dp")
    assert one.record.details["group_size"] == one.record.details["group_users"] == 1
    assert one.record.details["group_epsilon"] == pytest.approx(model.epsilon_, rel=1e-4)
    three = model.forget(P.X, P.y, P.users, forget_users=[4, 9, 11], method="dp").record.details
    group = expected(3)
    assert (three["group_size"], three["group_users"]) == (3, 3)
    assert three["group_epsilon"] == group.epsilon > 3 * model.epsilon_ and three["group_delta"] == model.delta_
    assert (three["group_epsilon_generic"], three["group_delta_generic"]) == (group.generic_epsilon,
                                                                              group.generic_delta)
    assert three["epsilon"] == model.epsilon_  # per user, as before
    # the kept U_ saw everyone forgotten since the fit: the group of a later forget includes earlier ones
    again = one.model.forget(P.X, P.y, P.users, forget_users=[9], method="dp").record.details
    assert again["group_size"] == 2 and again["group_epsilon"] == expected(2).epsilon
    # a user who loses some samples is two add/remove steps (removed, added back with the rest)
    partial = model.forget(P.X, P.y, P.users, forget_samples=np.flatnonzero(P.users == 6)[:3], method="dp")
    assert (partial.record.details["group_size"], partial.record.details["group_users"]) == (2, 1)
    # a fresh private fit does not contain the group at all: no group guarantee to state
    fresh = model.forget(P.X, P.y, P.users, forget_users=[4, 9], method="exact").record.details
    assert "group_epsilon" not in fresh


def balle_wang_epsilon(mu: float, delta: float) -> float:
    """Epsilon at ``delta`` of a Gaussian mechanism with sensitivity-to-noise ratio ``mu`` from the
    closed form delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2) (Balle and Wang 2018,
    Theorem 8), solved by bisection; in logarithms so that large ``mu`` neither under- nor overflows."""
    from scipy.stats import norm

    def log_delta(eps):
        a, b = norm.logcdf(-eps / mu + mu / 2), norm.logcdf(-eps / mu - mu / 2)
        return a + math.log1p(-math.exp(eps + b - a))

    low, high = 0.0, 1.0
    while log_delta(high) > math.log(delta):
        low, high = high, 2 * high
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if log_delta(mid) > math.log(delta) else (low, mid)
    return high


def test_group_privacy_bounds():
    budget = PrivacyBudget(4.0, 1e-6)
    releases = DPAMHTLRS(1, 0, max_rounds=10).release_schedule()
    z = calibrate_noise_multiplier(budget, releases)
    epsilon = training_epsilon(z, releases, 1.0, budget.delta)
    groups = [group_privacy(epsilon, budget.delta, z, releases, k) for k in (0, 1, 2, 4, 16, 64)]
    assert groups[0].epsilon == groups[0].generic_epsilon == 0.0
    one = groups[1]
    assert one.epsilon == pytest.approx(epsilon, rel=1e-4)  # a group of one is one user (PLD vs analytic)
    assert one.generic_epsilon == epsilon and one.generic_delta == pytest.approx(budget.delta, rel=1e-12)
    for smaller, larger in itertools.pairwise(groups):
        assert smaller.epsilon < larger.epsilon and smaller.generic_epsilon < larger.generic_epsilon
        assert smaller.generic_delta <= larger.generic_delta <= 1.0
    for group in groups[1:]:
        mu = group.size * math.sqrt(sum(releases)) / z
        assert group.epsilon == pytest.approx(balle_wang_epsilon(mu, budget.delta), rel=1e-6)
        assert group.generic_epsilon == pytest.approx(group.size * epsilon)
    assert groups[2].generic_delta == pytest.approx(2 * math.exp(epsilon) * budget.delta)
    assert groups[-1].generic_delta == 1.0  # 64 e^(63 eps) delta: the generic bound says nothing
    with pytest.raises(ValueError, match="size"):
        group_privacy(epsilon, budget.delta, z, releases, -1)
    with pytest.raises(ValueError, match="noise_multiplier"):
        group_privacy(epsilon, budget.delta, 0.0, releases, 2)


# -- the membership bound ------------------------------------------------------------------
@pytest.mark.parametrize("epsilon", [0.5, 1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("delta", [1e-6, 1e-3])
def test_dp_forgetting_bound_is_the_vertex_of_the_dp_region(epsilon, delta):
    bound = dp_forgetting_bound(epsilon, delta)
    e = math.exp(epsilon)
    assert bound.accuracy == pytest.approx((e + delta) / (e + 1), abs=1e-15)
    assert bound.posterior == pytest.approx(e / (e + 1))
    assert bound.no_information == 0.5 <= bound.posterior <= bound.accuracy
    # brute force over a grid of tests (FPR, TPR) allowed by (epsilon, delta)-DP
    fpr = np.linspace(0, 1, 20001)[:, None]
    tpr = np.linspace(0, 1, 201)[None, :]
    ok = (tpr <= e * fpr + delta + 1e-12) & (1 - fpr <= e * (1 - tpr) + delta + 1e-12)
    assert np.max(np.where(ok, 0.5 * tpr + 0.5 * (1 - fpr), 0)) <= bound.accuracy + 1e-12


def test_dp_forgetting_bound_with_other_priors_and_bad_inputs():
    skewed = dp_forgetting_bound(1.0, 1e-6, prior=0.1)
    assert skewed.accuracy >= skewed.no_information == 0.9
    assert skewed.posterior == pytest.approx(math.e * 0.1 / (math.e * 0.1 + 0.9))
    assert dp_forgetting_bound(math.inf, 1e-6).accuracy == 1.0
    for args, match in (((0.0, 1e-6), "epsilon"), ((1.0, 0.0), "delta"), ((1.0, 1e-6, 1.0), "prior")):
        with pytest.raises(ValueError, match=match):
            dp_forgetting_bound(*args)


# -- time to forget -------------------------------------------------------------------------
def test_lrs_forget_curve_races_forgetting_against_retraining():
    P = make_problem(n_users=30, dim=6, rank=2, sparsity=1, samples=40, noise=0.05, seed=4)
    curve = lrs_forget_curve(P.X, P.y, P.users, rank=2, sparsity=1, n_forgotten=(1, 3), max_rounds=100, tol=1e-10,
                             dp_privacy=PrivacyBudget(4.0, 1e-6), dp_clip=default_clip_bounds(6, 40, 2.0), dp_rounds=3)
    assert tuple(curve.columns) == FORGET_COLUMNS
    runs = curve.set_index(["model", "method", "n_forgotten"]).sort_index()
    assert sorted(set(runs.index.droplevel(2))) == [("amht_lrs", "exact"), ("amht_lrs", "retrain"),
                                                      ("dp_amht_lrs", "dp"), ("dp_amht_lrs", "exact")]
    exact, retrain = runs.loc[("amht_lrs", "exact")], runs.loc[("amht_lrs", "retrain")]
    assert exact.index.tolist() == [1, 3] and (exact["iterations"] >= 1).all() and (retrain["iterations"] >= 1).all()
    assert (exact["gap"] < 1e-5).all() and (retrain["gap"] < 1e-5).all()
    # the negative control: the untouched model is not a fixed point on the remaining data
    assert (exact["control_gap"] > 100 * exact["gap"]).all()
    # the distance to a refit from scratch, with the untouched model's as the control
    assert (exact["refit_distance"] >= 0).all() and (exact["control_refit_distance"] > 0).all()
    assert retrain["refit_distance"].isna().all()
    assert (retrain["control_refit_distance"] == exact["control_refit_distance"]).all()
    covered = runs.loc[("dp_amht_lrs", "dp")]
    assert covered["gap"].isna().all() and (covered["rows_touched"] == 0).all()
    # the DP guarantee for the group forgotten: its size, and an epsilon growing with it
    assert covered["group_size"].tolist() == [1, 3] and covered["group_epsilon"].is_monotonic_increasing
    assert covered["group_epsilon"].iloc[0] == pytest.approx(4.0, rel=1e-3)
    assert runs.loc[("dp_amht_lrs", "exact"), "group_epsilon"].isna().all()
    assert runs.loc[("amht_lrs", "exact"), "group_epsilon"].isna().all()
    assert curve.loc[curve["model"] == "dp_amht_lrs", "release"].str.startswith("simulation").all()
    with pytest.raises(ValueError, match="n_forgotten"):
        lrs_forget_curve(P.X, P.y, P.users, rank=2, sparsity=1, n_forgotten=(30,))
    with pytest.raises(ValueError, match="dp_clip"):
        lrs_forget_curve(P.X, P.y, P.users, rank=2, sparsity=1, n_forgotten=(1,), dp_privacy=PrivacyBudget(4.0, 1e-6))


def test_docs_show_the_bounds_the_code_computes():
    """docs/forgetting.md shows exactly the table the library computes (no hand-typed numbers)."""
    table = dp_forgetting_table([1, 2, 4, 8], 1e-6)
    assert (table["epsilon"] <= table["epsilon_target"] + 1e-9).all()
    assert (table["gaussian_accuracy"] < table["accuracy"]).all()
    doc = (ROOT / "docs" / "forgetting.md").read_text(encoding="utf-8")
    shown = doc.split("<!-- dp-forgetting-table:start -->\n")[1].split("\n<!-- dp-forgetting-table:end -->")[0]
    assert shown == dp_forgetting_markdown(table)


def test_docs_show_the_group_guarantee_the_code_computes():
    """docs/forgetting.md's group table (default fit: epsilon 4, delta 1e-6, 10 rounds) is the library's."""
    budget = PrivacyBudget(4.0, 1e-6)
    releases = DPAMHTLRS(1, 0, max_rounds=10).release_schedule()
    z = calibrate_noise_multiplier(budget, releases)
    epsilon = training_epsilon(z, releases, 1.0, budget.delta)
    lines = ["| users forgotten k | group ε at δ = 1e-06 (Gaussian) | group-privacy bound (kε, k e^((k−1)ε) δ) |",
             "| --- | --- | --- |"]
    for k in (1, 4, 16, 64):
        group = group_privacy(epsilon, budget.delta, z, releases, k)
        lines.append(f"| {k} | {group.epsilon:.2f} | ({group.generic_epsilon:.2f}, {group.generic_delta:.3g}) |")
    doc = (ROOT / "docs" / "forgetting.md").read_text(encoding="utf-8")
    shown = doc.split("<!-- dp-group-table:start -->\n")[1].split("\n<!-- dp-group-table:end -->")[0]
    assert shown == "\n".join(lines)
