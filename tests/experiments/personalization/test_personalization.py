"""Tests of the personalization protocol, features, methods, evaluation and tables."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bilinrec.experiments.personalization.evaluation import (
    activity_bucket,
    paired_difference,
    per_user_errors,
    summarize_errors,
)
from bilinrec.experiments.personalization.experiment import (
    RunSettings,
    run_personalization,
)
from bilinrec.experiments.personalization.features import (
    fit_item_features,
    load_features,
    save_features,
)
from bilinrec.experiments.personalization.methods import (
    ALSFoldIn,
    MethodOptions,
    bytes_per_user,
    candidates,
    sparse_pairs,
)
from bilinrec.experiments.personalization.protocol import (
    ALL,
    check_protocol,
    split_users,
)
from bilinrec.experiments.personalization.report import paired_table, summary_table
from bilinrec.models.als import ALS


def planted_ratings(n_users=120, n_items=150, per_user=(12, 60), rank=3, seed=0):
    """Ratings from a planted low-rank model on a 1..5 scale with varying user activity."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(size=(n_users, rank)), rng.normal(size=(n_items, rank))
    users, items = [], []
    for u in range(n_users):
        n = rng.integers(*per_user)
        users.append(np.full(n, u))
        items.append(rng.choice(n_items, size=n, replace=False))
    user, item = np.concatenate(users), np.concatenate(items)
    score = 3.0 + 0.6 * np.einsum("nk,nk->n", P[user], Q[item]) + 0.2 * rng.normal(size=user.size)
    return user, item, np.clip(np.round(score), 1, 5), n_items


# ----------------------------------------------------------------------------- protocol
def test_split_partitions_users_and_ratings():
    user, item, rating, _ = planted_ratings()
    split = split_users(user, np.random.default_rng(1), 0.5, 0.2, 0.1)
    assert np.intersect1d(split.background_users, split.eval_users).size == 0
    assert np.union1d(split.background_users, split.eval_users).size == 120
    everything = np.concatenate([split.pool, split.validation, split.test])
    assert np.unique(everything).size == everything.size  # disjoint
    assert np.array_equal(np.sort(everything), np.flatnonzero(np.isin(user, split.eval_users)))
    # every held-out rating belongs to the user it is filed under
    idx, owner = split.held_out("test", np.arange(split.eval_users.size))
    assert np.array_equal(user[idx], split.eval_users[owner])
    assert np.all(np.diff(split.test_ptr) >= 1) and np.all(np.diff(split.validation_ptr) >= 1)


def test_training_sets_are_nested_and_eligibility_counts_pool():
    user, *_ = planted_ratings()
    split = split_users(user, np.random.default_rng(2))
    small, small_owner = split.training(5)
    large, large_owner = split.training(20)
    assert np.bincount(small_owner).max() == 5
    for j in np.unique(large_owner):
        assert set(small[small_owner == j]) <= set(large[large_owner == j])
    assert np.array_equal(split.eligible(20), split.pool_sizes >= 20)
    everything, _ = split.training(ALL)
    assert everything.size == split.pool.size


def test_split_is_reproducible_from_seed():
    user, *_ = planted_ratings()
    a = split_users(user, np.random.default_rng(3))
    b = split_users(user, np.random.default_rng(3))
    assert np.array_equal(a.test, b.test) and np.array_equal(a.background_users, b.background_users)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(train_sizes=[5, 500]), "exceed every user's history"),
        (dict(min_eval_users=100), "evaluation users"),
        (dict(background_fraction=1.0), "background_fraction"),
        (dict(test_fraction=0.6, validation_fraction=0.5), "below 1"),
        (dict(train_sizes=[0]), "positive integers"),
    ],
)
def test_check_protocol_rejects_bad_input_before_compute(kwargs, message):
    user, *_ = planted_ratings()
    args = dict(train_sizes=[5, 10, ALL], background_fraction=0.5, test_fraction=0.2,
                validation_fraction=0.1, min_eval_users=10) | kwargs
    with pytest.raises(ValueError, match=message):
        check_protocol(user, **args)


# ----------------------------------------------------------------------------- features
def test_features_ignore_evaluation_users_and_round_trip(tmp_path):
    user, item, rating, n_items = planted_ratings()
    split = split_users(user, np.random.default_rng(4))
    feats = fit_item_features(user, item, rating, n_items, split.background_users, 4, 0.1, 5, True, seed=0)
    changed = rating.copy()
    changed[np.isin(user, split.eval_users)] = 1.0  # evaluation users' ratings must not matter
    again = fit_item_features(user, item, changed, n_items, split.background_users, 4, 0.1, 5, True, seed=0)
    np.testing.assert_allclose(feats.item_factors, again.item_factors)
    np.testing.assert_allclose(feats.item_bias, again.item_bias)
    # scaled embedding coordinates have unit RMS over background ratings
    bg = np.isin(user, split.background_users)
    X = feats.design(item[bg], intercept=False)
    np.testing.assert_allclose(np.sqrt(np.mean(X**2, axis=0)), 1.0, rtol=1e-6)
    save_features(tmp_path / "f.npz", feats, split)
    loaded, loaded_split = load_features(tmp_path / "f.npz")
    np.testing.assert_array_equal(loaded.item_factors, feats.item_factors)
    np.testing.assert_array_equal(loaded_split.pool, split.pool)
    assert loaded.global_mean == feats.global_mean


def test_fold_in_minimises_the_als_objective_with_items_fixed():
    user, item, rating, n_items = planted_ratings(n_users=60)
    split = split_users(user, np.random.default_rng(5))
    feats = fit_item_features(user, item, rating, n_items, split.background_users, 3, 0.1, 5, True, seed=0)
    idx, owner = split.training(10)
    X = feats.design(item[idx])
    y = rating[idx] - feats.offset(item[idx])
    fold = ALSFoldIn(0.1, True, feats.design_scale()).fit(X, y, owner, n_users=split.eval_users.size)
    raw = fold.theta_ / feats.design_scale()  # back to ALS parameters [x_u, b_u]
    C = sp.csr_matrix((rating[idx], (owner, item[idx])), shape=(split.eval_users.size, n_items))

    def objective(theta):
        model = ALS.from_factors(theta[:, :-1], feats.item_factors, user_bias=theta[:, -1],
                                 item_bias=feats.item_bias, global_mean=feats.global_mean,
                                 regularization=0.1, feedback="explicit", use_bias=True,
                                 scale_regularization=True)
        return model.objective(C)

    best = objective(raw)
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert objective(raw + 1e-3 * rng.normal(size=raw.shape)) > best
    # predictions agree with the ALS model holding the folded-in users
    pred = fold.predict(X, owner) + feats.offset(item[idx])
    model = ALS.from_factors(raw[:, :-1], feats.item_factors, user_bias=raw[:, -1], item_bias=feats.item_bias,
                             global_mean=feats.global_mean, regularization=0.1, feedback="explicit", use_bias=True)
    np.testing.assert_allclose(pred, model.predict(owner, item[idx]), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- methods
def test_candidates_drop_unidentifiable_settings():
    grid = {"rank": [1, 2, 4], "sparsity": [1, 4], "alpha": [1.0], "ridge": [1.0]}
    assert all(c["rank"] + c["sparsity"] <= 5 for c in candidates("amht_lrs", grid, 5))
    assert len(candidates("amht_lrs", grid, None)) == 6
    assert candidates("global", grid, 5) == [{}]
    with pytest.raises(ValueError, match="identifiable"):
        candidates("amht_lrs", {"rank": [4], "sparsity": [4], "ridge": [1.0]}, 5)


def test_sparse_pairs_round_trip_and_bytes():
    B = sp.csr_matrix(np.array([[0, 2.0, 0, 0], [0, 0, 0, 0], [1.0, 0, 0, -3.0]]))
    pairs = sparse_pairs(B, 2)
    assert pairs["sparse_index"].dtype == np.uint8
    dense = np.zeros((3, 4))
    np.add.at(dense, (np.repeat(np.arange(3), 2), pairs["sparse_index"].ravel()), pairs["sparse_value"].ravel())
    np.testing.assert_array_equal(dense, B.toarray())
    with pytest.raises(ValueError, match="more than k"):
        sparse_pairs(B, 1)
    # marginal bytes of n users of r float32 + k (uint8, float32) pairs
    n, r, k = 50, 3, 2
    payload = {"coefficients": np.zeros((n, r), np.float32), "sparse_index": np.zeros((n, k), np.uint8),
               "sparse_value": np.zeros((n, k), np.float32)}
    assert bytes_per_user(payload) == pytest.approx(4 * r + k * (1 + 4))
    assert bytes_per_user({}) == 0.0


# ----------------------------------------------------------------------------- evaluation
def test_metrics_pool_over_ratings_and_average_over_users():
    errors = per_user_errors(np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 6]), np.array([0, 0, 0, 1]), 3)
    assert errors["n_test"].tolist() == [3, 1, 0]
    s = summarize_errors(errors)
    assert s["rmse"] == pytest.approx(np.sqrt(4 / 4))
    assert s["rmse_user"] == pytest.approx((0 + 2) / 2)  # the user without test ratings is skipped
    assert s["mae"] == pytest.approx(0.5) and s["n_users"] == 2
    with pytest.raises(ValueError, match="non-finite"):
        per_user_errors(np.ones(2), np.array([1.0, np.nan]), np.zeros(2, int), 1)


def test_activity_buckets():
    assert activity_bucket(np.array([20, 50, 99, 500]), [1, 50, 100]).tolist() == ["1-49", "50-99", "50-99", ">=100"]
    with pytest.raises(ValueError, match="increasing"):
        activity_bucket(np.array([3]), [5, 5])


def test_paired_difference_interval_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(200), 3)
    shifted = pd.DataFrame({"user": users, "delta": -0.05 + 0.05 * rng.normal(size=users.size)})
    res = paired_difference(shifted, 1000, np.random.default_rng(1))
    assert res["ci_high"] < 0 and res["ci_low"] < res["mean_delta"] < res["ci_high"]
    null = pd.DataFrame({"user": users, "delta": 0.05 * rng.normal(size=users.size)})
    res = paired_difference(null, 1000, np.random.default_rng(1))
    assert res["ci_low"] < 0 < res["ci_high"] and res["n_users"] == 200


# ----------------------------------------------------------------------------- one run
def small_settings(feats, methods, train_sizes=(8, ALL)):
    options = MethodOptions(
        amht={"max_rounds": 5, "u_solver": "exact", "tol": 1e-4},
        fedrep={"max_rounds": 20}, sparse_only={"max_rounds": 3},
        dp={"max_rounds": 3, "response_scale": 1.0, "clip_multiplier": 1.0, "accountant": "rdp"},
        fold_in_regularization=0.1, fold_in_scale_regularization=True, feature_scale=feats.design_scale(),
    )
    return RunSettings(train_sizes=list(train_sizes), methods=methods,
                       grid={"alpha": [1.0, 10.0], "rank": [1, 2], "sparsity": [1], "ridge": [0.3, 1.0]}, options=options,
                       dp_epsilons=[1.0], rating_range=(1.0, 5.0), activity_edges=[1, 30])


@pytest.fixture(scope="module")
def small_run():
    user, item, rating, n_items = planted_ratings(n_users=160, seed=7)
    split = split_users(user, np.random.default_rng(8))
    feats = fit_item_features(user, item, rating, n_items, split.background_users, 6, 0.1, 8, True, seed=0)
    methods = ["user_embedding", "global", "local", "finetune", "altmin", "fedrep", "sparse_only",
               "amht_lrs", "dp_amht_lrs"]
    result = run_personalization(item, rating, feats, split, small_settings(feats, methods), seed=0)
    return split, result


def test_run_reports_every_method_and_training_size(small_run):
    split, result = small_run
    metrics = result.metrics
    assert set(metrics["method"]) == {"user_embedding", "global", "local", "finetune", "altmin", "fedrep",
                                      "sparse_only", "amht_lrs", "dp_amht_lrs"}
    assert set(metrics["m"]) == {"8", "all"}
    assert metrics[["rmse", "rmse_user", "mae", "val_rmse"]].notna().all().all()
    dp = metrics[metrics["method"] == "dp_amht_lrs"].iloc[0]
    assert dp["epsilon"] == 1.0 and dp["epsilon_achieved"] <= 1.0 + 1e-6
    amht = metrics[(metrics["method"] == "amht_lrs")].iloc[0]
    assert json.loads(dp["params"])["rank"] == json.loads(amht["params"])["rank"]
    # storage of the fitted parameters: r float32 + k (uint8, float32) pairs per user
    params = json.loads(amht["params"])
    assert amht["bytes_per_user"] == pytest.approx(4 * params["rank"] + 5 * params["sparsity"])
    assert metrics.loc[metrics["method"] == "global", "bytes_per_user"].eq(0).all()
    excluded = metrics.loc[metrics["m"] == "8", "n_excluded"].iloc[0]
    assert excluded == int((split.pool_sizes < 8).sum())


def test_personalization_beats_the_global_model_on_planted_user_structure(small_run):
    _, result = small_run
    rmse = result.metrics[result.metrics["m"] == "all"].set_index("method")["rmse"]
    # planted per-user factors: a personalized model must beat one shared parameter vector
    assert rmse["user_embedding"] < rmse["global"]
    assert rmse["amht_lrs"] < rmse["global"]


def test_tables_and_paired_comparison(small_run):
    _, result = small_run
    metrics = pd.concat([result.metrics.assign(seed=s) for s in (1, 2)]).assign(dataset="toy", features="embedding", d=6)
    per_user = pd.concat([result.per_user.assign(seed=s) for s in (1, 2)]).assign(dataset="toy", features="embedding",
                                                                                  d=6)
    summary, shown = summary_table(metrics, ["8", "all"])
    assert summary["rmse_count"].eq(2).all()
    assert list(summary["m"].unique()) == ["8", "all"]
    assert shown["chosen (seeds)"].str.contains(r"\(2/2\)").all()
    paired = paired_table(per_user, summary, 200, np.random.default_rng(0), 0.95, ["8", "all"])
    assert set(paired["m"]) == {"8", "all"}
    assert (paired["ci_low"] <= paired["mean_delta"]).all() and (paired["mean_delta"] <= paired["ci_high"]).all()
    assert not paired["baseline"].isin(["amht_lrs", "dp_amht_lrs"]).any()
    # pre-registered comparisons + validation-chosen best baseline, for AMHT-LRS and both negative controls
    mine = paired[(paired["tested"] == "amht_lrs") & (paired["m"] == "8")]
    assert list(mine["comparator"]) == ["altmin", "finetune", "user_embedding", "best_baseline"]
    assert set(paired["tested"]) == {"amht_lrs", "global", "amht_lrs_swapped"}
    # Holm: adjusted p >= raw p, adjusted intervals contain the unadjusted ones
    assert (paired["p_holm"] >= paired["p_value"] - 1e-12).all()
    assert (paired["ci_low_holm"] <= paired["ci_low"] + 1e-12).all()
    assert (paired["ci_high_holm"] >= paired["ci_high"] - 1e-12).all()
    assert not (paired["significant"] & (paired["ci_low_holm"] <= 0) & (paired["ci_high_holm"] >= 0)).any()
    family = paired[paired["tested"] == "amht_lrs"]
    assert family["family_size"].eq(len(family)).all()


def test_settings_reject_unknown_methods_and_dp_without_amht():
    feats_scale = np.ones(3)
    options = MethodOptions({}, {}, {}, {}, 0.1, True, feats_scale)
    with pytest.raises(ValueError, match="unknown"):
        RunSettings([5], ["magic"], {}, options)
    with pytest.raises(ValueError, match="include amht_lrs"):
        RunSettings([5], ["dp_amht_lrs"], {}, options)


# ----------------------------------------------------------------------------- MovieLens
def test_movielens_100k_fold_in_and_ridge_beat_item_bias(tmp_path):
    data_dir = os.environ.get("BILINREC_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-100k.zip").exists():
        pytest.skip("BILINREC_DATA_DIR with ml-100k.zip is not set")
    from bilinrec.data import fetch, get_spec, load_prepared, prepare

    spec = get_spec("ml-100k")
    fetch(spec, resources=tmp_path / "resources", local_dir=data_dir, allow_download=False)
    prepare(spec, tmp_path / "ml-100k", resources=tmp_path / "resources")
    r = load_prepared(tmp_path / "ml-100k")
    split = split_users(r.user, np.random.default_rng(0))
    feats = fit_item_features(r.user, r.item, r.rating, r.n_items, split.background_users, 8, 0.1, 10, True, 0)
    settings = small_settings(feats, ["user_embedding", "local"], train_sizes=[20])
    result = run_personalization(r.item, r.rating, feats, split, settings, seed=0)
    idx, _ = split.held_out("test", np.flatnonzero(split.eligible(20)))
    bias_only = np.sqrt(np.mean((np.clip(feats.offset(r.item[idx]), 1, 5) - r.rating[idx]) ** 2))
    rmse = result.metrics.set_index("method")["rmse"]
    assert 0.8 < rmse["user_embedding"] < bias_only
    assert rmse["local"] < bias_only


# ----------------------------------------------------------------------------- DP accounting
def exact_gaussian_epsilon(mu: float, delta: float) -> float:
    """Epsilon at ``delta`` of a mu-GDP (Gaussian) mechanism (Balle & Wang 2018, Theorem 8):
    delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def excess(eps):
        return norm.cdf(-eps / mu + mu / 2) - np.exp(eps + norm.logcdf(-eps / mu - mu / 2)) - delta

    return brentq(excess, 0.0, 1e3, xtol=1e-12)


def test_personalization_dp_noise_spends_exactly_the_budget():
    """DP-AMHT-LRS as the personalization part configures it (config.yaml and the schema's defaults):
    its releases of s_k statistics, each noised with multiplier z, compose to one Gaussian mechanism
    with mu = sqrt(sum_k s_k) / z, whose exact epsilon must be the target (RDP accounting gave 0.927
    for 1 and 7.51 for 8: more noise than the budget needs)."""
    import yaml
    from conftest import ROOT
    from snakemake.utils import validate

    from bilinrec.experiments.personalization.methods import make_estimator
    from bilinrec.experiments.personalization.steps import run_settings

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())["personalization"]
    validate(cfg, str(ROOT / "workflow/schemas/personalization.schema.yaml"))
    user, item, rating, n_items = planted_ratings(n_users=40, seed=3)
    d = min(cfg["factors"]) + 1
    settings = run_settings(cfg, np.ones(d), (1.0, 5.0))
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(user.size, d)), rating - rating.mean()
    params = {"rank": 1, "sparsity": 1, "ridge": 1.0, "delta": settings.dp_delta, "samples_per_user": 20}
    for epsilon in settings.dp_epsilons:
        model = make_estimator("dp_amht_lrs", params, settings.options, 0, epsilon).fit(X, y, user, n_users=40)
        mu = np.sqrt(sum(model.release_schedule())) / model.noise_multiplier_
        exact = exact_gaussian_epsilon(mu, settings.dp_delta)
        assert exact == pytest.approx(epsilon, rel=1e-3), (epsilon, exact, model.accountant)
        assert exact <= epsilon * (1 + 1e-9)  # never more than the budget
