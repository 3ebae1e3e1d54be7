"""Training, unlearning and storing the ALS models of one experiment run.

A :class:`Trained` bundles factors with their convergence history (objective, compute time,
held-out AUC per sweep), so later steps never need to re-run anything to plot or time it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from bilinrec.experiments.unlearn.metrics import auc
from bilinrec.io import load_npz, save_npz
from bilinrec.models.als import ALS

#: Unlearning modes of :meth:`bilinrec.models.als.ALS.unlearn` and the model key of each.
MODE_KEYS = {"retrain": "unlearn_retrain", "frozen": "unlearn_frozen", "mask": "unlearn_mask", "naive": "naive"}
#: Fields of a :class:`Trained` stored by :func:`save_models`.
_FIELDS = ("user_factors", "item_factors", "objective", "seconds", "heldout_auc", "phase", "rows_solved")
_PHASES = ("start", "local", "sweep")


@dataclass
class Trained:
    """Factors plus per-record history (record 0 is the starting point)."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    objective: np.ndarray
    seconds: np.ndarray  # compute time of each record (0 for the start record)
    heldout_auc: np.ndarray
    phase: np.ndarray  # index into _PHASES
    rows_solved: np.ndarray  # row solves of each record (a full sweep solves every user and item row)

    @property
    def compute_seconds(self) -> np.ndarray:
        """Cumulative compute time at each record (objective evaluations excluded)."""
        return np.cumsum(self.seconds)

    @property
    def total_seconds(self) -> float:
        return float(self.seconds.sum())

    @property
    def sweeps(self) -> int:
        return int(np.sum(self.phase == _PHASES.index("sweep")))

    def sweep_equivalents(self, n_rows: int) -> np.ndarray:
        """Cumulative row solves per record in units of full sweeps (``n_rows`` = users + items):
        a deterministic cost measure (the local update of unlearning counts as a partial sweep)."""
        return np.cumsum(self.rows_solved) / float(n_rows)

    def model(self, params: Mapping[str, Any]) -> ALS:
        return ALS.from_factors(self.user_factors, self.item_factors, **params)

    def scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("nk,nk->n", self.user_factors[users], self.item_factors[items]).astype(np.float64)


class _Recorder:
    """ALS callback: held-out AUC after each sweep, and a factor snapshot at a fixed budget."""

    def __init__(self, heldout: tuple[np.ndarray, np.ndarray, np.ndarray] | None, budget: int | None):
        self.heldout = heldout
        self.budget = budget
        self.snapshot: tuple[np.ndarray, np.ndarray, int] | None = None

    def auc_of(self, model: ALS) -> float:
        if self.heldout is None:
            return float("nan")
        users, items, labels = self.heldout
        return auc(labels, model.predict(users, items))

    def __call__(self, model: ALS, record: Mapping[str, Any]) -> dict[str, float]:
        if self.budget is not None and record["iteration"] == self.budget:
            self.snapshot = (model.user_factors_.copy(), model.item_factors_.copy(), len(model.history_) + 1)
        return {"heldout_auc": self.auc_of(model)}


def _from_history(model: ALS, start_auc: float, n_records: int | None = None) -> Trained:
    """Convert ``model.history_`` (first ``n_records`` records) into a :class:`Trained`.

    Records without a callback value (the start and the local phase) get NaN AUC, except
    the start record, which gets ``start_auc``.
    """
    history = model.history_ if n_records is None else model.history_[:n_records]
    aucs = np.array([rec.get("heldout_auc", np.nan) for rec in history], dtype=np.float64)
    aucs[0] = start_auc
    return Trained(
        user_factors=model.user_factors_,
        item_factors=model.item_factors_,
        objective=np.array([rec["objective"] for rec in history], dtype=np.float64),
        seconds=np.array([rec["seconds"] for rec in history], dtype=np.float64),
        heldout_auc=aucs,
        phase=np.array([_PHASES.index(rec["phase"]) for rec in history], dtype=np.int8),
        rows_solved=np.array([rec.get("rows_solved", 0) for rec in history], dtype=np.int64),
    )


def fit(
    C: sp.csr_matrix,
    params: Mapping[str, Any],
    heldout: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Trained:
    """Train ALS (``params``: constructor arguments, iterations and tol included) from random
    factors seeded by ``params["random_state"]`` on confidences ``C``.

    The AUC of the random starting point is not recorded (NaN).
    """
    model = ALS(**params)
    model.fit(C, callback=_Recorder(heldout, budget=None))
    return _from_history(model, float("nan"))


def unlearn(
    original: Trained,
    C: sp.csr_matrix,
    deletions: np.ndarray,
    mode: str,
    params: Mapping[str, Any],
    max_iterations: int,
    tol: float,
    budget: int,
    heldout: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    frozen_weights: bool = False,
) -> tuple[Trained, Trained]:
    """Unlearn ``deletions`` (``(n, 2)`` user/item pairs of ``C``) with ALS ``mode``.

    Returns the model run to convergence (``tol``, at most ``max_iterations`` sweeps) and the
    model after exactly ``budget`` sweeps (a snapshot of the same run; if the run converged
    earlier, the converged model).
    """
    if budget < 1:
        raise ValueError(f"budget must be a positive number of sweeps, got {budget}")
    base = original.model({**params, "iterations": max(max_iterations, budget), "tol": tol})
    recorder = _Recorder(heldout, budget=budget)
    result = base.unlearn(C, deletions, mode=mode, max_iterations=max(max_iterations, budget), tol=tol,
                          callback=recorder, frozen_weights=frozen_weights)
    start_auc = recorder.auc_of(base)
    converged = _from_history(result, start_auc)
    if recorder.snapshot is None:
        return converged, replace(converged)
    U, V, n_records = recorder.snapshot
    return converged, replace(_from_history(result, start_auc, n_records), user_factors=U, item_factors=V)


def save_models(path: str | os.PathLike, models: Mapping[str, Trained]) -> None:
    """Store several :class:`Trained` models in one ``.npz`` (keys ``<name>__<field>``)."""
    arrays = {}
    for name, run in models.items():
        if "__" in name:
            raise ValueError(f"model name {name!r} must not contain '__'")
        for key in _FIELDS:
            arrays[f"{name}__{key}"] = getattr(run, key)
    save_npz(path, **arrays)


def load_models(path: str | os.PathLike) -> dict[str, Trained]:
    """Inverse of :func:`save_models`."""
    arrays = load_npz(path)
    names = sorted({key.split("__", 1)[0] for key in arrays})
    return {
        name: Trained(**{key: arrays[f"{name}__{key}"] for key in _FIELDS})
        for name in names
    }
