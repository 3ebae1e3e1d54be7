"""Tests of the serialized storage measurements."""

import numpy as np
import pytest

from bilinrec.experiments.serialized import index_dtype, serialized_nbytes
from bilinrec.experiments.storage.measure import (
    LRSSpec,
    ModelSpec,
    measure_layout,
    storage_table,
    user_layout,
)
from bilinrec.experiments.storage.steps import human_bytes, storage_step


def test_serialized_nbytes_is_the_file_size(tmp_path):
    arrays = {"a": np.zeros((10, 3), np.float32), "b": np.arange(7, dtype=np.uint16)}
    np.savez(tmp_path / "x.npz", **arrays)
    assert serialized_nbytes(arrays) == (tmp_path / "x.npz").stat().st_size


def test_extrapolation_matches_a_full_measurement():
    layout = user_layout("amht_lrs", ModelSpec("m", 1000, 4), 5000, 8, LRSSpec("lrs", 4, 3))
    exact, measured = measure_layout(layout, np.random.default_rng(0), max_bytes=10**9)
    estimate, measured_small = measure_layout(layout, np.random.default_rng(0), max_bytes=20_000)
    assert measured and not measured_small
    assert estimate == exact


def test_index_dtype_is_the_smallest_that_fits():
    assert index_dtype(256) == np.uint8 and index_dtype(257) == np.uint16
    assert index_dtype(2**32) == np.uint32 and index_dtype(2**32 + 1) == np.uint64


def test_storage_table_bytes_and_ratios():
    models = [ModelSpec("small", 1000, 2, 100), ModelSpec("1 GB model", 250_000_000, 24, 10**6)]
    variants = [LRSSpec("LRS k=8", 4, sparsity=8), LRSSpec("LRS 1%", 4, sparsity_fraction=0.01)]
    table = storage_table(models, [100, 10**6], 16, variants, np.random.default_rng(0), max_bytes=2**20)
    row = table.set_index(["model", "variant", "n_users"])
    # per-user payloads: P floats; last layer; r floats; per layer r floats + k (index, value) pairs
    assert row.loc[("small", "finetune", 100), "bytes_per_user"] == pytest.approx(4000)
    assert row.loc[("small", "last_layer", 100), "bytes_per_user"] == pytest.approx(400)
    assert row.loc[("small", "user_embedding", 100), "bytes_per_user"] == pytest.approx(64)
    assert row.loc[("small", "LRS k=8", 100), "bytes_per_user"] == pytest.approx(2 * (4 * 4 + 8 * (2 + 4)))
    assert row.loc[("small", "LRS 1%", 100), "bytes_per_user"] == pytest.approx(2 * (4 * 4 + 5 * (2 + 4)))
    # the paper's example: a 1 GB model fine-tuned for 1M users is 1 PB
    full = row.loc[("1 GB model", "finetune", 10**6)]
    assert full["total_bytes"] == pytest.approx(1e15, rel=1e-3) and not full["measured"]
    assert human_bytes(full["total_bytes"]) == "1 PB"
    # shared parameters are counted once: the LRS bases make the shared part larger
    assert row.loc[("small", "LRS k=8", 100), "shared_bytes"] > row.loc[("small", "finetune", 100), "shared_bytes"]
    lrs = row.loc[("1 GB model", "LRS 1%", 10**6)]
    assert lrs["full_over_scheme"] == pytest.approx(full["total_bytes"] / lrs["total_bytes"])
    assert 10 < lrs["full_over_scheme"] < 1000
    assert row.loc[("small", "finetune", 100), "measured"]


@pytest.mark.parametrize(
    "factory, message",
    [
        (lambda: ModelSpec("m", 0), "parameters"),
        (lambda: ModelSpec("m", 10, layers=11), "layers"),
        (lambda: LRSSpec("l", 2), "exactly one"),
        (lambda: LRSSpec("l", 2, sparsity=1, sparsity_fraction=0.1), "exactly one"),
        (lambda: user_layout("magic", ModelSpec("m", 10), 1, 2), "unknown storage scheme"),
        (lambda: storage_table([ModelSpec("m", 10)], [0], 2, [], np.random.default_rng(0), 1024), "n_users"),
    ],
)
def test_bad_storage_input(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_storage_step_writes_tables(tmp_path):
    cfg = {"n_users": [10, 1000], "max_measured_bytes": 2**16, "embedding_dim": 8,
           "lrs_variants": [{"name": "LRS", "rank": 2, "sparsity": 2}],
           "models": [{"name": "net", "parameters": 5000, "layers": 2, "last_layer_parameters": 500}]}
    storage_step(tmp_path / "storage.csv", cfg, [4], seed=1)
    text = (tmp_path / "storage.md").read_text()
    assert "linear MovieLens model (d=4)" in text and "extrapolated" in text and "measured" in text
    assert (tmp_path / "storage.csv").read_text().count("\n") == 1 + 2 * 4 * 2


def test_trained_storage_is_measured_from_fitted_models(tmp_path):
    """Bytes come from serializing the fitted models: fine-tuning stores d float32 per user, AMHT-LRS
    r float32 plus its fitted sparse part in CSR; the dense-per-user-part control costs about as much as
    fine-tuning; the oracle fit (A4's planted control) costs r + k numbers per user; the ratio grows with
    d and the crossing size is interpolated."""
    import pandas as pd

    from bilinrec.experiments.storage.steps import trained_storage_step
    from bilinrec.experiments.storage.trained import crossing_size

    cfg = dict(dims=[16, 64], n_users=20, rank=1, sparsity=1, samples=12, noise=0.0, n_test=4, max_rounds=3,
               finetune_alpha=0.1, amortize_users=1000)
    table = trained_storage_step(tmp_path / "storage_trained.csv", cfg, seed=1, min_ratio=10)
    assert (tmp_path / "storage_trained.md").is_file()
    rows = table.set_index(["dim", "scheme"])
    for d in (16, 64):
        # the shared store is spread over amortize_users users
        shared = {scheme: rows.loc[(d, scheme), "shared_bytes"] / 1000 for scheme in ("finetune", "amht_lrs")}
        assert rows.loc[(d, "finetune"), "bytes_per_user"] == pytest.approx(4 * d + shared["finetune"])
        nnz = rows.loc[(d, "amht_lrs"), "nonzeros_per_user"]
        assert 0 < nnz <= 1
        # r float32 + nnz (float32 value + uint8 column) + one row pointer (uint8 for <= 255 non-zeros)
        assert rows.loc[(d, "amht_lrs"), "bytes_per_user"] == pytest.approx(4 + 5 * nnz + 1 + shared["amht_lrs"])
        assert rows.loc[(d, "amht_lrs_dense_b"), "ratio"] < 1
        # the planted oracle store: exactly k = 1 non-zero per user, in AMHT-LRS's format, the best test MSE
        assert rows.loc[(d, "oracle"), "nonzeros_per_user"] == 1
        assert rows.loc[(d, "oracle"), "bytes_per_user"] == pytest.approx(4 + 5 + 1 + shared["amht_lrs"])
        assert rows.loc[(d, "oracle"), "test_mse"] <= rows.loc[(d, "finetune"), "test_mse"]
        assert rows.loc[(d, "amht_lrs"), "ratio"] == pytest.approx(
            rows.loc[(d, "finetune"), "bytes_per_user"] / rows.loc[(d, "amht_lrs"), "bytes_per_user"])
    assert rows.loc[(64, "amht_lrs"), "ratio"] > rows.loc[(16, "amht_lrs"), "ratio"]
    assert np.isfinite(table["test_mse"]).all()
    assert crossing_size(np.array([10, 100]), np.array([1.0, 100.0]), 10) == pytest.approx(31.6227766)
    assert np.isnan(crossing_size(np.array([10, 100]), np.array([1.0, 5.0]), 10))
    assert isinstance(pd.read_csv(tmp_path / "storage_trained.csv"), pd.DataFrame)
    # A4 through the claims engine on this measured table: its planted oracle store passes A4's rule
    from bilinrec.experiments.storage.claims import CLAIMS as STORAGE_CLAIMS
    from bilinrec.experiments.verdict import evaluate_claims

    row = evaluate_claims(STORAGE_CLAIMS, {"storage_trained": table}, {"a4_min_ratio": 10}).iloc[0]
    assert "oracle fit (U* and supports known) in AMHT-LRS's format (planted, must hold): holds" in row["controls"]
    # the figure draws AMHT-LRS, the near miss and the planted control
    from bilinrec.experiments.storage.plots import plot_storage_trained

    labels = plot_storage_trained(table, 10).axes[0].get_legend_handles_labels()[1]
    assert {"dense per-user part (near miss)", "oracle fit, AMHT-LRS format (planted)"} <= set(labels)
