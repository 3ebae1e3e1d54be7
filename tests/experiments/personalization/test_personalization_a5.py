"""Claim A5's protocol: validation-only selection, Holm correction, controls, shared background, genres."""

import numpy as np
import pandas as pd
import pytest

from bilinrec.data.genres import ML100K_GENRES, parse_ml100k_items
from bilinrec.experiments.personalization.claims import (
    CLAIMS,
    CONTROL_DATASET,
    claim_a5,
)
from bilinrec.experiments.personalization.control import ControlConfig, generate_control
from bilinrec.experiments.personalization.evaluation import (
    bootstrap_p_value,
    holm,
    paired_difference,
)
from bilinrec.experiments.personalization.experiment import (
    RunSettings,
    run_personalization,
    tuning_candidates,
)
from bilinrec.experiments.personalization.features import fit_item_features, with_genres
from bilinrec.experiments.personalization.methods import MethodOptions
from bilinrec.experiments.personalization.protocol import split_users
from bilinrec.experiments.personalization.report import best_baseline, paired_table
from bilinrec.experiments.verdict import FAILS, HOLDS, UNINFORMATIVE, evaluate_claims


# ----------------------------------------------------------------------------- Holm
def test_holm_adjusts_p_values_step_down_and_gives_levels():
    adjusted, levels = holm([0.01, 0.04, 0.03], level=0.95)
    # sorted: 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
    assert levels == pytest.approx([1 - 0.05 / 3, 0.95, 1 - 0.05 / 2])
    assert holm([0.5], 0.9)[0] == pytest.approx([0.5]) and holm([0.5], 0.9)[1] == pytest.approx([0.9])
    assert np.all(holm([0.9, 0.8, 0.7])[0] <= 1.0)


def test_holm_controls_the_family_wise_error_under_the_null():
    rng = np.random.default_rng(0)
    false_rejections = 0
    for _ in range(400):
        adjusted, _ = holm(rng.uniform(size=6))
        false_rejections += bool((adjusted < 0.05).any())
    assert false_rejections / 400 < 0.08  # FWER <= 5% (+ Monte Carlo slack); unadjusted would be ~26%


def test_bootstrap_p_value_and_paired_difference():
    assert bootstrap_p_value(np.full(99, 0.3)) == pytest.approx(2 / 100)
    assert bootstrap_p_value(np.r_[-np.ones(50), np.ones(50)]) == 1.0
    rng = np.random.default_rng(1)
    diff = pd.DataFrame({"user": np.repeat(np.arange(200), 2), "delta": rng.normal(-0.5, 0.2, 400)})
    stats = paired_difference(diff, 500, rng, 0.95, return_boot=True)
    assert stats["p_value"] < 0.01 and stats["ci_high"] < 0 and stats["boot"].shape == (500,)


# ----------------------------------------------------------------------------- selection on validation only
def _cell(method, val, test):
    return {"dataset": "ml-x", "features": "embedding", "d": 4, "m": "5", "method": method, "epsilon": np.nan,
            "release": "non-private", "val_rmse_mean": val, "rmse_user_mean": test}


def test_best_baseline_is_chosen_on_validation_not_test():
    group = pd.DataFrame([_cell("local", 0.90, 1.20), _cell("finetune", 0.95, 0.80), _cell("amht_lrs", 0.1, 0.1)])
    assert best_baseline(group) == "local"  # lowest validation RMSE, although fine-tuning wins on test


def test_paired_table_never_reads_test_rmse_to_pick_the_baseline():
    rng = np.random.default_rng(2)
    users = np.arange(60)
    rows = []
    for method, level in (("amht_lrs", 1.0), ("altmin", 1.0), ("local", 1.1), ("finetune", 0.9)):
        sse = (level + 0.01 * rng.normal(size=60)) ** 2 * 4
        rows.append(pd.DataFrame({"dataset": "ml-x", "features": "embedding", "d": 4, "m": "5", "method": method,
                                  "epsilon": np.nan, "seed": 0, "user": users, "n_test": 4, "sse": sse}))
    per_user = pd.concat(rows, ignore_index=True)
    summary = pd.DataFrame([_cell("amht_lrs", 1.0, 1.0), _cell("altmin", 1.0, 1.0), _cell("local", 0.5, 1.1),
                            _cell("finetune", 2.0, 0.9)])
    paired = paired_table(per_user, summary, 200, rng, 0.95, ["5"])
    best = paired[(paired["tested"] == "amht_lrs") & (paired["comparator"] == "best_baseline")]
    assert list(best["baseline"]) == ["local"]
    # test RMSE of the summary is irrelevant: changing it changes nothing
    summary2 = summary.assign(rmse_user_mean=[9.0, 9.0, 9.0, 0.0])
    assert list(paired_table(per_user, summary2, 200, rng, 0.95, ["5"]).query(
        "tested == 'amht_lrs' and comparator == 'best_baseline'")["baseline"]) == ["local"]


# ----------------------------------------------------------------------------- claim and controls
def _paired_rows(dataset, tested, comparator, delta, m="5", features="genres+embedding"):
    return {"dataset": dataset, "features": features, "d": 32, "m": m, "tested": tested, "comparator": comparator,
            "baseline": comparator, "mean_delta": delta, "ci_low_holm": delta - 0.01, "ci_high_holm": delta + 0.01,
            "p_holm": 0.01, "significant": abs(delta) > 0.01}


def _tables(ml_delta, control_delta, global_delta=0.05, swapped_delta=0.0, control_comparators=None):
    rows = []
    for comp in ("altmin", "finetune", "user_embedding"):
        rows.append(_paired_rows("ml-100k", "amht_lrs", comp, ml_delta))
        rows.append(_paired_rows("ml-100k", "global", comp, global_delta))
        rows.append(_paired_rows("ml-100k", "amht_lrs_swapped", comp, swapped_delta))
    for comp, delta in (control_comparators or {c: control_delta for c in ("altmin", "finetune", "user_embedding")}).items():
        rows.append(_paired_rows(CONTROL_DATASET, "amht_lrs", comp, delta, features="genres"))
    return {"personalization_paired": pd.DataFrame(rows)}


def _verdict(tables):
    return evaluate_claims(CLAIMS, tables, {"a5_max_m": 20}).iloc[0]


def test_a5_holds_only_with_holm_wins_and_a_planted_control_that_passes_a5s_own_rule():
    assert claim_a5(_tables(-0.05, -0.05), 20).verdict == HOLDS
    assert _verdict(_tables(-0.05, -0.05))["verdict"] == HOLDS
    assert claim_a5(_tables(+0.01, -0.05), 20).verdict == FAILS
    assert _verdict(_tables(+0.01, -0.05))["verdict"] == FAILS
    # the planted control fails A5's rule: nothing could have been detected, whatever MovieLens says
    for tables in (_tables(-0.05, +0.05), _tables(+0.01, +0.05)):
        row = _verdict(tables)
        assert row["verdict"] == UNINFORMATIVE and "(planted, must hold): does not hold" in row["controls"]
    # the old, weaker check (a win against AltMin alone) is not enough: A5's rule needs every comparator
    weak = _tables(-0.05, None, control_comparators={"altmin": -0.05, "finetune": 0.0, "user_embedding": -0.05})
    assert _verdict(weak)["verdict"] == UNINFORMATIVE
    # and every m <= a5_max_m, not only the largest
    small_m = _tables(-0.05, -0.05)
    extra = pd.DataFrame([_paired_rows(CONTROL_DATASET, "amht_lrs", "altmin", 0.0, m="5", features="genres")])
    small_m = {"personalization_paired": pd.concat([small_m["personalization_paired"], extra])}
    assert _verdict(small_m)["verdict"] == UNINFORMATIVE


def test_a5_negative_controls_make_a_win_uninformative():
    verdict = evaluate_claims(CLAIMS, _tables(-0.05, -0.05, global_delta=-0.05), {"a5_max_m": 20})
    assert verdict.loc[0, "verdict"] == UNINFORMATIVE and "global model" in verdict.loc[0, "controls"]
    verdict = evaluate_claims(CLAIMS, _tables(-0.05, -0.05), {"a5_max_m": 20})
    assert verdict.loc[0, "verdict"] == HOLDS and "does not hold" in verdict.loc[0, "controls"]


# ----------------------------------------------------------------------------- positive control data
def test_positive_control_plants_sparse_deviations_on_genres_users_rate_repeatedly():
    cfg = ControlConfig(n_users=80, n_items=120, n_ratings=4000, min_ratings_per_user=30, n_genres=8, sparsity=2)
    data = generate_control(cfg, seed=4)
    assert data.item_genres.shape == (120, 8) and data.item_genres.sum(1).min() >= 1
    assert np.all((data.sparse != 0).sum(1) == 2)
    counts = np.zeros((80, 8))
    np.add.at(counts, data.user, data.item_genres[data.item])
    assert np.all(counts[data.sparse != 0] >= cfg.min_genre_count)  # every planted genre is rated repeatedly
    again = generate_control(cfg, seed=4)
    assert np.array_equal(again.rating, data.rating)


def _options(feats):
    return MethodOptions(amht={"max_rounds": 6, "inner_iters": 5, "u_solver": "exact"}, fedrep={}, sparse_only={},
                         dp={}, fold_in_regularization=0.1, fold_in_scale_regularization=True,
                         feature_scale=feats.design_scale(), fold_in_scale=feats.embedding_only().design_scale())


def test_amht_lrs_beats_altmin_on_the_positive_control():
    cfg = ControlConfig(n_users=400, n_items=300, n_ratings=24000, min_ratings_per_user=40, n_genres=10,
                        rank=2, sparsity=2, sparse_magnitude=1.2, noise=0.4)
    data = generate_control(cfg, seed=5)
    split = split_users(data.user, np.random.default_rng(0))
    feats = fit_item_features(data.user, data.item, data.rating, data.item_genres.shape[0], split.background_users,
                              4, 0.1, 5, True, seed=0)
    feats = with_genres(feats, data.item_genres, data.item[np.isin(data.user, split.background_users)], "genres")
    settings = RunSettings(train_sizes=[20], methods=["altmin", "amht_lrs"],
                           grid={"rank": [2], "sparsity": [2], "ridge": [0.3]}, options=_options(feats),
                           rating_range=(1.0, 5.0), activity_edges=[1], shared_background=True)
    result = run_personalization(data.item, data.rating, feats, split, settings, seed=0, user=data.user)
    rmse = result.metrics.set_index("method")["rmse"]
    assert rmse["amht_lrs"] < rmse["altmin"] - 0.02


# ----------------------------------------------------------------------------- budget and background
def test_equal_tuning_budget_subsamples_every_grid_to_the_same_size():
    grid = {"alpha": [1, 2, 3, 4, 5, 6], "rank": [1, 2, 4, 8], "sparsity": [1, 2], "ridge": [0.1, 0.3, 1, 3]}
    options = MethodOptions({}, {}, {}, {}, 0.1, True, np.ones(3))
    settings = RunSettings([20], ["local", "altmin", "amht_lrs"], grid, options, tuning_budget=5)
    sizes = {m: len(tuning_candidates(m, settings, 20, seed=1)) for m in ("local", "altmin", "amht_lrs")}
    assert sizes == {"local": 5, "altmin": 5, "amht_lrs": 5}
    assert tuning_candidates("amht_lrs", settings, 20, 1) == tuning_candidates("amht_lrs", settings, 20, 1)
    small = RunSettings([20], ["fedrep"], grid, options, tuning_budget=5)
    assert len(tuning_candidates("fedrep", small, 20, 1)) == 4  # a smaller grid is tried whole


def test_shared_background_feeds_background_users_to_the_shared_part_only():
    cfg = ControlConfig(n_users=120, n_items=100, n_ratings=6000, min_ratings_per_user=30, n_genres=6)
    data = generate_control(cfg, seed=6)
    split = split_users(data.user, np.random.default_rng(1))
    feats = fit_item_features(data.user, data.item, data.rating, 100, split.background_users, 4, 0.1, 4, True, 0)
    out = {}
    for shared in (False, True):
        settings = RunSettings([5], ["global", "local"], {"alpha": [10.0]}, _options(feats),
                               rating_range=(1.0, 5.0), activity_edges=[1], shared_background=shared)
        out[shared] = run_personalization(data.item, data.rating, feats, split, settings, 0, user=data.user).metrics
    by = {k: v.set_index("method") for k, v in out.items()}
    assert by[True].loc["global", "rmse"] != by[False].loc["global", "rmse"]  # global part sees more users
    assert by[True].loc["local", "rmse"] == pytest.approx(by[False].loc["local", "rmse"])  # per-user only
    assert by[True].loc["global", "n_users"] == by[False].loc["global", "n_users"]  # only evaluation users scored
    with pytest.raises(ValueError, match="user array"):
        run_personalization(data.item, data.rating, feats, split,
                            RunSettings([5], ["global"], {}, _options(feats), shared_background=True), 0)


# ----------------------------------------------------------------------------- genres
def test_ml100k_genre_parser_aligns_with_item_ids(tmp_path):
    path = tmp_path / "u.item"
    flags = ["0"] * 19
    path.write_text("1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(["0", "0", "0", "1", "1"] + ["0"] * 14)
                    + "\n" + "7|Twelve|01-Jan-1995||http://y|" + "|".join(["0", "1"] + flags[2:]) + "\n",
                    encoding="latin-1")
    genres = parse_ml100k_items(path, np.array([7, 1, 99]))
    assert genres.shape == (3, len(ML100K_GENRES))
    assert genres[0, ML100K_GENRES.index("Action")] == 1 and genres[0].sum() == 1
    assert genres[1, ML100K_GENRES.index("Animation")] == 1 and genres[1].sum() == 2
    assert genres[2].sum() == 0


def test_genre_feature_sets_and_fold_in_design():
    cfg = ControlConfig(n_users=60, n_items=80, n_ratings=2400, min_ratings_per_user=25, n_genres=6)
    data = generate_control(cfg, seed=7)
    split = split_users(data.user, np.random.default_rng(1))
    feats = fit_item_features(data.user, data.item, data.rating, 80, split.background_users, 3, 0.1, 3, True, 0)
    bg_items = data.item[np.isin(data.user, split.background_users)]
    both = with_genres(feats, data.item_genres, bg_items, "genres+embedding")
    assert both.design(np.arange(5)).shape == (5, 6 + 3 + 1)
    assert with_genres(feats, data.item_genres, bg_items, "genres").design(np.arange(5)).shape == (5, 7)
    assert both.embedding_only().design(np.arange(5)).shape == (5, 4)
    with pytest.raises(ValueError, match="needs item genres"):
        with_genres(feats, None, bg_items, "genres")


def test_paired_figure_draws_every_tested_method():
    import matplotlib

    matplotlib.use("Agg")
    from bilinrec.experiments.personalization.plots import plot_paired

    paired = _tables(-0.05, -0.05)["personalization_paired"]
    fig = plot_paired(paired, ["5", "10", "20"])
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert any(lab.startswith("AMHT-LRS vs") for lab in labels) and any("control" in lab for lab in labels)
