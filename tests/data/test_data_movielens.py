"""The real MovieLens 100K from a local copy (BILINREC_DATA_DIR); skipped when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bilinrec.data import fetch, get_spec, load_prepared, prepare

DATA_DIR = os.environ.get("BILINREC_DATA_DIR")
pytestmark = pytest.mark.skipif(
    not DATA_DIR or not any((Path(DATA_DIR) / p).exists() for p in ("ml-100k.zip", "ml-100k")),
    reason="set BILINREC_DATA_DIR to a directory with ml-100k.zip or ml-100k/ to run the real-data test",
)


def test_real_ml100k_counts(tmp_path):
    spec = get_spec("ml-100k")
    record = fetch(spec, tmp_path / "res", local_dir=DATA_DIR, allow_download=False)
    assert record["check"] in ("archive-sha256", "ratings-sha256")
    assert record["ratings_sha256"] == spec.ratings_sha256
    summary = prepare(spec, tmp_path / "out", tmp_path / "res")
    assert (summary["n_ratings"], summary["n_users"], summary["n_items"]) == (100_000, 943, 1_682)
    data = load_prepared(tmp_path / "out")
    assert data.user_ids[0] == 1 and data.item_ids[-1] == 1682
    assert np.bincount(data.user).min() == 20  # every ML-100K user has at least 20 ratings
    assert summary["rating_histogram"] == {"1": 6110, "2": 11370, "3": 27145, "4": 34174, "5": 21201}
