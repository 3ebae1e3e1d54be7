"""Prepared form of a dataset: ``ratings.npz`` (0-based contiguous ids) plus ``summary.json``.

Rows are sorted by (user, item). ``user_ids``/``item_ids`` map the 0-based indices back to the
original ids. The synthetic dataset also stores its planted ground truth (keys ``gt_*``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from bilinrec.data.acquire import ratings_file_of
from bilinrec.data.parsers import RawRatings, parse_ratings
from bilinrec.data.registry import SYNTHETIC, DatasetSpec
from bilinrec.data.synthetic import GroundTruth, SyntheticConfig, generate
from bilinrec.io import load_npz, read_json, save_npz, write_json
from bilinrec.seeds import derive_seed

if TYPE_CHECKING:  # SciPy is imported where a matrix is built: reading the registry stays light
    import scipy.sparse as sp

log = logging.getLogger(__name__)

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
_BASE_KEYS = ("user", "item", "rating", "timestamp", "user_ids", "item_ids")


@dataclass(frozen=True)
class Ratings:
    """A prepared dataset: one row per rating, users and items indexed 0..n-1."""

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    truth: GroundTruth | None = None
    name: str = ""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        return len(self.rating)

    def to_csr(self, values: np.ndarray | str | None = "rating", dtype=np.float64) -> sp.csr_matrix:
        """Users x items CSR matrix of ``values``: "rating", "ones", or an array with one value per row."""
        import scipy.sparse as sp

        if isinstance(values, str) or values is None:
            if values in (None, "ones"):
                data = np.ones(self.n_ratings, dtype=dtype)
            elif values == "rating":
                data = self.rating.astype(dtype)
            else:
                raise ValueError(f"values must be 'rating', 'ones' or an array, got {values!r}")
        else:
            data = np.asarray(values, dtype=dtype)
            if data.shape != (self.n_ratings,):
                raise ValueError(f"values must have shape ({self.n_ratings},), got {data.shape}")
        return sp.csr_matrix((data, (self.user, self.item)), shape=(self.n_users, self.n_items))


def index_ratings(raw: RawRatings) -> dict[str, np.ndarray]:
    """Map original ids to 0-based contiguous indices (sorted by id) and sort rows by (user, item)."""
    user_ids, user = np.unique(raw.user_ids, return_inverse=True)
    item_ids, item = np.unique(raw.item_ids, return_inverse=True)
    order = np.lexsort((item, user))
    return {
        "user": user[order].astype(np.int64),
        "item": item[order].astype(np.int64),
        "rating": raw.rating[order].astype(np.float64),
        "timestamp": raw.timestamp[order].astype(np.int64),
        "user_ids": user_ids,
        "item_ids": item_ids,
    }


def _quantiles(counts: np.ndarray) -> dict[str, float]:
    return {f"q{int(q * 100):02d}": float(np.quantile(counts, q)) for q in QUANTILES}


def summarize_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Counts, density, rating histogram and activity/popularity quantiles of prepared arrays."""
    n_users, n_items, n = len(arrays["user_ids"]), len(arrays["item_ids"]), len(arrays["rating"])
    values, freq = np.unique(arrays["rating"], return_counts=True)
    user_counts = np.bincount(arrays["user"], minlength=n_users)
    item_counts = np.bincount(arrays["item"], minlength=n_items)
    return {
        "n_ratings": n,
        "n_users": n_users,
        "n_items": n_items,
        "density": n / (n_users * n_items),
        "rating_mean": float(arrays["rating"].mean()),
        "rating_std": float(arrays["rating"].std()),
        "rating_histogram": {f"{v:g}": int(c) for v, c in zip(values, freq)},
        "user_activity": _quantiles(user_counts),
        "item_popularity": _quantiles(item_counts),
        "timestamp_range": [int(arrays["timestamp"].min()), int(arrays["timestamp"].max())],
    }


def prepare(
    spec: DatasetSpec,
    out_dir: str | os.PathLike,
    resources: str | os.PathLike = "resources",
    root_seed: int | None = None,
    synthetic: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/ratings.npz`` and ``out_dir/summary.json`` for ``spec``; return the summary.

    Real datasets are read from their fetched copy (see :func:`bilinrec.data.acquire.fetch`);
    ``synthetic-ml`` is generated with seed ``derive_seed(root_seed, "synthetic-ml")``.
    """
    out_dir = Path(out_dir)
    if spec.kind == "synthetic":
        if root_seed is None:
            raise ValueError("root_seed is required to generate synthetic-ml")
        cfg = SyntheticConfig.from_mapping(synthetic)
        seed = derive_seed(root_seed, SYNTHETIC)
        data = generate(cfg, seed)
        arrays = {
            "user": data.user,
            "item": data.item,
            "rating": data.rating,
            "timestamp": data.timestamp,
            "user_ids": np.arange(1, cfg.n_users + 1, dtype=np.int64),
            "item_ids": data.item_ids,
        }
        arrays = {**_sorted(arrays), **data.truth.to_arrays()}
        source = {"kind": "synthetic", "seed": seed, "root_seed": root_seed, "config": cfg.__dict__}
    else:
        ratings_file, record = ratings_file_of(resources, spec.name)
        origin = record.get("origin")
        raw = parse_ratings(ratings_file, spec.fmt,
                            source=f"{ratings_file} (copy of {origin})" if origin and origin != str(ratings_file) else None)
        arrays = index_ratings(raw)
        source = {k: record.get(k) for k in ("kind", "source", "origin", "check", "ratings_sha256", "archive_sha256")}
        source["has_timestamp"] = raw.has_timestamp
    summary = {"dataset": spec.name, **summarize_arrays(arrays), "source": source}
    save_npz(out_dir / "ratings.npz", **arrays)
    write_json(out_dir / "summary.json", summary)
    log.info("%s: %d ratings, %d users, %d items -> %s", spec.name, summary["n_ratings"], summary["n_users"],
             summary["n_items"], out_dir)
    return summary


def _sorted(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.lexsort((arrays["item"], arrays["user"]))
    return {k: (v[order] if k in ("user", "item", "rating", "timestamp") else v) for k, v in arrays.items()}


def load_prepared(path: str | os.PathLike) -> Ratings:
    """Load ``ratings.npz`` (or the directory holding it) into :class:`Ratings`."""
    path = Path(path)
    if path.is_dir():
        path = path / "ratings.npz"
    if not path.is_file():
        raise FileNotFoundError(f"prepared dataset not found: {path}")
    arrays = load_npz(path)
    missing = [k for k in _BASE_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: not a prepared dataset, missing arrays {missing}")
    return Ratings(**{k: arrays[k] for k in _BASE_KEYS}, truth=GroundTruth.from_arrays(arrays), name=path.parent.name)


def read_summary(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    return read_json(path / "summary.json" if path.is_dir() else path)
