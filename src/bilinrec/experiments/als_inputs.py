"""What the parts that train ALS on implicit positives (unlearn, forget) share: the model's
constructor arguments from a ``model`` config section, the confidence weighting, and the matrices
of a split file (written by the unlearn part, read by both)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from bilinrec.io import load_npz
from bilinrec.models.als import Weighting


def als_params(cfg: Mapping[str, Any], seed: int, threads: int | None = None,
               weighting: Any = None) -> dict[str, Any]:
    """Constructor arguments of :class:`ALS` from the ``model`` config section (+ the confidence
    ``weighting``: the model then trains on binary positives and recomputes weights when forgetting)."""
    return {
        "factors": int(cfg["factors"]),
        "regularization": float(cfg["regularization"]),
        "feedback": "implicit",
        "solver": cfg["solver"],
        "cg_steps": int(cfg["cg_steps"]),
        "dtype": np.dtype(cfg["dtype"]),
        "iterations": int(cfg["iterations"]),
        "tol": float(cfg["tol"]),
        "random_state": int(seed),
        "num_threads": threads,
        "weighting": weighting,
        "acceleration": cfg.get("acceleration"),
        **({"anderson_mixing": float(cfg["anderson_mixing"])} if "anderson_mixing" in cfg else {}),
    }


def confidence_weighting(scheme: str = "bm25", scale: float = 5.0, K1: float = 100.0, B: float = 0.9,
                         bm25_rows: str = "items", alpha: float = 40.0) -> Weighting:
    """The confidence :class:`~bilinrec.models.als.Weighting` of positives: the model carries it,
    so unlearning recomputes confidences on the reduced data."""
    return Weighting(scheme=scheme, scale=float(scale), alpha=float(alpha), K1=float(K1), B=float(B),
                     bm25_rows=bm25_rows)


def csr_arrays(prefix: str, mat: sp.csr_matrix) -> dict[str, np.ndarray]:
    """The arrays of ``mat`` under ``prefix``, as a split file stores them."""
    return {f"{prefix}_data": mat.data, f"{prefix}_indices": mat.indices, f"{prefix}_indptr": mat.indptr,
            f"{prefix}_shape": np.array(mat.shape)}


def csr_from_arrays(prefix: str, arrays: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    """The matrix :func:`csr_arrays` stored under ``prefix``."""
    return sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                         shape=tuple(arrays[f"{prefix}_shape"]))


def load_training_positives(split_path: str | os.PathLike) -> sp.csr_matrix:
    """The training positives (binary) of a split file."""
    return csr_from_arrays("train", load_npz(split_path))
