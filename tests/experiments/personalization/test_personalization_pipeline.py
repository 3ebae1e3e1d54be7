"""The file-level steps the workflow scripts call, on a small prepared dataset."""

import numpy as np
import pandas as pd
import pytest
from test_personalization import planted_ratings

from bilinrec.experiments.personalization.steps import (
    features_step,
    run_step,
    tables_step,
)
from bilinrec.io import save_npz
from bilinrec.models.lrs import NON_PRIVATE, RELEASE_LABELS

CFG = {
    "train_sizes": [5, "all"], "background_fraction": 0.5, "test_fraction": 0.2, "validation_fraction": 0.1,
    "min_eval_users": 10, "intercept": True, "clip_predictions": True, "activity_buckets": [1, 30],
    "als": {"regularization": 0.1, "scale_regularization": True, "iterations": 5},
    "methods": ["user_embedding", "global", "local", "amht_lrs", "dp_amht_lrs"],
    "grid": {"alpha": [1.0, 10.0], "rank": [1, 2], "sparsity": [1], "ridge": [1.0]},
    "amht": {"max_rounds": 3, "u_solver": "exact"}, "fedrep": {}, "sparse_only": {},
    "dp": {"epsilons": [1.0], "delta": 1e-6, "max_rounds": 2, "accountant": "rdp", "clip_multiplier": 1.0,
           "response_scale": 1.0, "samples_cap_all": 50},
    "bootstrap": 200, "confidence_level": 0.9,
    "shared_background": True, "tuning_budget": 2, "feature_sets": ["embedding", "genres"],
}


def write_prepared(path, n_users):
    user, item, rating, n_items = planted_ratings(n_users=n_users, seed=3)
    save_npz(path, user=user, item=item, rating=rating, timestamp=np.zeros(user.size, np.int64),
             user_ids=np.arange(n_users) + 1, item_ids=np.arange(n_items) + 1)
    return path


def test_too_few_users_fail_before_any_output(tmp_path):
    ratings = write_prepared(tmp_path / "tiny" / "ratings.npz", n_users=12)
    with pytest.raises(ValueError, match="min_eval_users"):
        features_step(ratings, tmp_path / "f.npz", CFG, 4, seed=1)
    assert not (tmp_path / "f.npz").exists()


def test_m_larger_than_every_history_fails_before_any_output(tmp_path):
    ratings = write_prepared(tmp_path / "toy" / "ratings.npz", n_users=60)
    with pytest.raises(ValueError, match="exceed every user's history"):
        features_step(ratings, tmp_path / "f.npz", CFG | {"train_sizes": [5, 1000]}, 4, seed=1)
    assert not (tmp_path / "f.npz").exists()


def test_steps_chain_into_tables_and_figures(tmp_path):
    ratings = write_prepared(tmp_path / "toy" / "ratings.npz", n_users=80)
    outputs = {"metrics": [], "buckets": [], "per_user": []}
    for seed in (11, 12):
        features = tmp_path / f"f{seed}.npz"
        features_step(ratings, features, CFG, 4, seed)
        run_out = {name: tmp_path / f"{name}_{seed}.csv" for name in outputs}
        run_step(ratings, features, run_out, CFG, "toy", 4, seed)
        for name in outputs:
            outputs[name].append(run_out[name])
    tables = {name: tmp_path / "tables" / f"{name}.csv" for name in ("table", "buckets", "paired")}
    tables_step(outputs["metrics"], outputs["buckets"], outputs["per_user"], tables, CFG, seed=5)
    summary = pd.read_csv(tables["table"], dtype={"m": str})
    assert summary["rmse_count"].eq(2).all()
    assert set(summary["method"]) == set(CFG["methods"])
    assert (tmp_path / "tables" / "table.tex").exists() and (tmp_path / "tables" / "paired.md").exists()
    paired = pd.read_csv(tables["paired"], dtype={"m": str})
    assert list(dict.fromkeys(paired["m"])) == ["5", "all"]
    # the toy dataset has no genres: the genre feature set fell back to the embedding (run once)
    assert set(summary["features"]) == {"embedding"}
    assert summary["n_trials_mean"].le(2).all()
    # every row of every table says what it released: the DP rows are seeded simulations
    buckets = pd.read_csv(tables["buckets"], dtype={"m": str})
    for table in (summary, buckets):
        dp = table["method"] == "dp_amht_lrs"
        assert dp.any() and table.loc[dp, "release"].eq(RELEASE_LABELS["simulation"]).all()
        assert table.loc[~dp, "release"].eq(NON_PRIVATE).all()
    assert len(paired) and paired["release"].eq(NON_PRIVATE).all()
    for name in ("table", "buckets", "paired"):
        header = next(line for line in (tmp_path / "tables" / f"{name}.md").read_text().splitlines()
                      if line.startswith("|"))
        assert "release" in [cell.strip() for cell in header.split("|")], header


def test_tables_refuse_run_files_without_release_labels(tmp_path):
    """A run CSV written before the release column existed is an error naming it, not unlabelled DP rows."""
    old = tmp_path / "metrics_old.csv"
    pd.DataFrame({"dataset": ["toy"], "features": ["embedding"], "d": [4], "seed": [1], "m": ["5"],
                  "method": ["dp_amht_lrs"], "epsilon": [1.0]}).to_csv(old, index=False)
    with pytest.raises(ValueError, match=f"{old} has no release column"):
        tables_step([old], [old], [old], {}, CFG, seed=5)
