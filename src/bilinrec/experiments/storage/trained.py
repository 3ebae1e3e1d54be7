"""Storage of TRAINED models: fit AMHT-LRS and full per-user fine-tuning, serialize both, count bytes.

For every model size d (a linear per-user model has P = d parameters per user) a synthetic
low-rank + sparse problem is drawn, AMHT-LRS and :class:`~bilinrec.models.lrs.baselines.FineTune`
are fitted on it, and their fitted parameters are serialized as ``.npz`` (float32 values;
uncompressed and deflate-compressed):

- AMHT-LRS: shared store ``U_`` (d x r); per-user store ``W_`` (t x r) and the fitted sparse
  part ``B_`` in CSR form (values, column indices in the smallest unsigned type that addresses d,
  row pointers) -- whatever the fit produced, not an assumed k per user;
- fine-tuning: shared store ``global_coef_`` (d); per-user store ``theta_`` (t x d);
- ``amht_lrs_dense_b`` (negative control of claim A4): the same fitted AMHT-LRS model with its
  per-user part stored dense (``W_`` and ``B_`` as a t x d array), as a naive store would;
- ``oracle`` (planted control of claim A4): the oracle fit (``U*`` and every user's support given,
  ``w_i`` and ``b_i`` by least squares) stored in AMHT-LRS's format -- a trained model whose
  per-user part is by construction exactly ``r`` + ``k`` numbers and whose test MSE is the floor.

Bytes per user are the marginal cost of a user -- the per-user store of all t users minus the store
of the first t/2 users, over t/2 (the container's constant overhead cancels) -- plus the shared
store spread over ``amortize_users`` users (the paper's storage example: 1M). ``ratio`` is the
fine-tuning bytes per user over the scheme's (``ratio_compressed``: both deflate-compressed). The
test MSE of every fitted model is recorded, so the storage comparison is between models that were
actually trained and how well they predict.
"""

from __future__ import annotations

import io
import time
from typing import Any, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bilinrec.experiments.methods import build
from bilinrec.experiments.serialized import VALUE_DTYPE, index_dtype
from bilinrec.models.lrs.metrics import mse, normalized_error
from bilinrec.models.lrs.synthetic import make_problem
from bilinrec.seeds import derive_seed

__all__ = ["SCHEMES", "crossing_size", "npz_bytes", "per_user_stores", "trained_storage_table"]

#: Schemes of the trained-storage table (``finetune`` is the reference every ratio divides).
SCHEMES = ("finetune", "amht_lrs", "amht_lrs_dense_b", "oracle")

#: The fitted model each scheme stores.
_MODEL_OF_SCHEME = {"finetune": "finetune", "amht_lrs": "amht_lrs", "amht_lrs_dense_b": "amht_lrs", "oracle": "oracle"}


def npz_bytes(arrays: Mapping[str, np.ndarray], compressed: bool = False) -> int:
    """Length in bytes of ``arrays`` serialized as ``.npz`` (deflate-compressed if ``compressed``)."""
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getbuffer().nbytes


def _csr_arrays(B: sp.csr_matrix, prefix: str, max_nonzeros: int) -> dict[str, np.ndarray]:
    """CSR arrays of ``B``; row pointers in the smallest type addressing ``max_nonzeros`` (the whole
    model's, so a store of some users has the same types as the store of all)."""
    B = sp.csr_matrix(B)
    B.eliminate_zeros()
    return {f"{prefix}_values": B.data.astype(VALUE_DTYPE),
            f"{prefix}_columns": B.indices.astype(index_dtype(B.shape[1])),
            f"{prefix}_rowptr": B.indptr.astype(index_dtype(max_nonzeros + 1))}


def per_user_stores(scheme: str, model: Any, users: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(shared store, per-user store of the first ``users`` users) of a fitted model under ``scheme``."""
    if scheme == "finetune":
        return ({"global_coef": model.global_coef_.astype(VALUE_DTYPE)},
                {"theta": model.theta_[:users].astype(VALUE_DTYPE)})
    if scheme in ("amht_lrs", "oracle"):
        return ({"U": model.U_.astype(VALUE_DTYPE)},
                {"W": model.W_[:users].astype(VALUE_DTYPE), **_csr_arrays(model.B_[:users], "B", model.B_.nnz)})
    if scheme == "amht_lrs_dense_b":
        return ({"U": model.U_.astype(VALUE_DTYPE)},
                {"W": model.W_[:users].astype(VALUE_DTYPE), "B": model.B_[:users].toarray().astype(VALUE_DTYPE)})
    raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")


def _measure(scheme: str, model: Any, n_users: int, amortize_users: int) -> dict[str, float]:
    half = n_users // 2
    out = {}
    for compressed, tag in ((False, ""), (True, "_compressed")):
        shared, full = per_user_stores(scheme, model, n_users)
        _, part = per_user_stores(scheme, model, half)
        whole, first = npz_bytes(full, compressed), npz_bytes(part, compressed)
        out[f"shared_bytes{tag}"] = npz_bytes(shared, compressed)
        out[f"bytes_per_user{tag}"] = (whole - first) / (n_users - half) + out[f"shared_bytes{tag}"] / amortize_users
        out[f"total_bytes{tag}"] = out[f"shared_bytes{tag}"] + whole
    return out


def trained_storage_table(cfg: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """Fit AMHT-LRS and fine-tuning at every ``cfg['dims']``; one row per (d, scheme) with measured bytes."""
    t, r, k, m = (int(cfg[key]) for key in ("n_users", "rank", "sparsity", "samples"))
    if t < 2:
        raise ValueError("n_users must be at least 2 (bytes per user are a difference of two stores)")
    rows = []
    for d in sorted(int(d) for d in cfg["dims"]):
        problem = make_problem(t, d, r, k, m, noise=float(cfg["noise"]), seed=derive_seed(seed, "storage_trained", d))
        test_rng = np.random.default_rng(derive_seed(seed, "test", d))
        X_test, y_test, users_test = problem.sample(int(cfg["n_test"]), test_rng)
        fitted, seconds = {}, {}
        for key, params in (("amht_lrs", dict(rank=r, sparsity=k, max_rounds=int(cfg["max_rounds"]),
                                                robust_cutoff=10.0)),
                            ("finetune", dict(alpha=float(cfg["finetune_alpha"]))),
                            ("oracle", dict(U=problem.U, supports=problem.supports))):
            start = time.perf_counter()
            fitted[key] = build(key, **params).fit(problem.X, problem.y, problem.users, n_users=t)
            seconds[key] = time.perf_counter() - start
        for scheme in SCHEMES:
            key = _MODEL_OF_SCHEME[scheme]
            model = fitted[key]
            rows.append({
                "dim": d, "parameters": d, "scheme": scheme, "n_users": t, "rank": r, "sparsity": k, "samples": m,
                "nonzeros_per_user": (model.B_.nnz / t) if scheme != "finetune" else float(d),
                "test_mse": mse(model.predict(X_test, users_test), y_test),
                "error": normalized_error(model.theta_, problem.theta),
                "fit_seconds": seconds[key],
                **_measure(scheme, model, t, int(cfg["amortize_users"])),
            })
    table = pd.DataFrame(rows)
    reference = table[table["scheme"] == "finetune"].set_index("dim")
    for tag in ("", "_compressed"):
        table[f"ratio{tag}"] = (table["dim"].map(reference[f"bytes_per_user{tag}"])
                                / table[f"bytes_per_user{tag}"])
        table[f"total_ratio{tag}"] = table["dim"].map(reference[f"total_bytes{tag}"]) / table[f"total_bytes{tag}"]
    return table


def crossing_size(sizes: np.ndarray, ratios: np.ndarray, target: float) -> float:
    """Smallest model size where ``ratios`` reaches ``target``, interpolated linearly in log-log
    between measured sizes; NaN if never reached (the first size if already reached there)."""
    order = np.argsort(sizes)
    sizes, ratios = np.asarray(sizes, float)[order], np.asarray(ratios, float)[order]
    above = np.flatnonzero(ratios >= target)
    if len(above) == 0:
        return float("nan")
    i = above[0]
    if i == 0:
        return float(sizes[0])
    x0, x1, y0, y1 = np.log(sizes[i - 1]), np.log(sizes[i]), np.log(ratios[i - 1]), np.log(ratios[i])
    return float(np.exp(x0 + (np.log(target) - y0) * (x1 - x0) / (y1 - y0)))
