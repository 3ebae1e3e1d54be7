"""Forgetting audit: can the forgotten data still be read from an ALS model's scores?

Two statistics, each an AUC (0.5: the scores say nothing), measured on the *original* data ``C``:

* **own-history AUC** (:func:`own_history_auc`), per user whose whole history was forgotten: rank
  every item by the model's scores for that user; the AUC of the user's forgotten items (their
  stored cells in ``C``) against the items the user never interacted with, ties counted one half;
  the mean over users. After retraining (implicit feedback), a user without cells has a zero
  right-hand side, hence a zero row, all scores tied and an AUC of exactly 0.5. A row that was
  only shrunk keeps its direction and ranks the history first as before.
* **membership-inference AUC** (:func:`membership_auc`): the threshold attack "member if the
  score exceeds t" over all t, with members the deleted (user, item) cells and non-members
  (:func:`nonmember_cells`) a seeded sample of cells the original model never trained on,
  *of the same users*, as many per user as that user has members. Matching users makes the
  attack compare each deleted cell with cells of the same row: a retrained model that has never
  seen the user scores both alike (exactly 0.5 for whole forgotten histories, whose rows are
  zero; near 0.5 for single records, up to what the remaining history predicts), while
  the original model scores its training cells higher. Non-members drawn from other users would
  instead measure how users' score scales differ, which retraining changes too.

Verdict (:class:`RetrainBand`): a model passes when each statistic lies within a tolerance of the
mean over ``K`` models retrained from scratch on the reduced data with different seeds, where

    tolerance = max(t_{K-1} * s * sqrt(1 + 1/K),  step / 2)

with ``s`` the retrains' seed standard deviation (``ddof=1``), ``t_{K-1}`` the two-sided
``level`` quantile of Student's t with K - 1 degrees of freedom, and ``step`` the smallest amount
the statistic can change on these cells (one tied pair: ``0.5 / (n+ n-)``; for the mean over
users the smallest such step of one user, over the number of users). The first term is a
prediction interval: if the statistic varies normally across seeds, one more retrain from a new
seed -- an ideal unlearner -- passes with probability ``level`` (0.95 by default; with K = 3,
t = 4.30). When every retrain gives the same value (a whole forgotten history: all exactly 0.5)
the band has zero width and only the second term is left: the forget must give the same AUC up to
rounding, as another retrain does; a forgotten row that is small but not zero still ranks the
history (the AUC does not depend on the row's norm) and fails. Non-members are shared by all the
models compared, so their sampling noise cancels in the comparison and is not added.

Config-free; imports only NumPy, SciPy and :mod:`bilinrec.models`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..ranking import auc
from .cells import _as_csr
from .deletions import as_deletions, user_history

#: Default confidence of the verdict: the probability that an ideal unlearner passes.
AUDIT_LEVEL = 0.95


def _user_scores(model: Any, user: int) -> np.ndarray:
    """The model's scores of every item for ``user`` (biases included)."""
    items = np.arange(model.item_factors_.shape[0], dtype=np.int64)
    return model.predict(np.full(items.size, user, dtype=np.int64), items)


def _histories(C, users) -> tuple[Any, np.ndarray]:
    """``C`` as CSR and ``users`` as sorted unique ids, each with at least one stored and one unstored cell."""
    X = _as_csr(C, "C", copy=False)
    users = np.unique(np.asarray(users, dtype=np.int64).reshape(-1))
    if users.size and (users.min() < 0 or users.max() >= X.shape[0]):
        raise ValueError(f"users: ids must lie in [0, {X.shape[0]})")
    counts = np.diff(X.indptr)[users]
    bad = (counts == 0) | (counts == X.shape[1])
    if bad.any():
        u = users[bad][0]
        raise ValueError(f"users: user {u} has {counts[bad][0]} of {X.shape[1]} items stored in C; "
                         "the own-history AUC needs both interacted and never-interacted items")
    return X, users


def own_history_aucs(model: Any, C: Any, users: Any) -> np.ndarray:
    """Per user of ``users`` (sorted, unique): AUC of the model's scores of the user's stored
    items in ``C`` against the items the user never interacted with (ties one half)."""
    X, users = _histories(C, users)
    out = np.empty(users.size)
    for n, u in enumerate(users):
        labels = np.zeros(X.shape[1], dtype=bool)
        labels[X.indices[X.indptr[u]:X.indptr[u + 1]]] = True
        out[n] = auc(labels, _user_scores(model, int(u)))
    return out


def own_history_auc(model: Any, C: Any, users: Any) -> float:
    """Mean over ``users`` of :func:`own_history_aucs`: 0.5 when the model has forgotten them."""
    return float(np.mean(own_history_aucs(model, C, users)))


def nonmember_cells(C: Any, members: Any, seed: int) -> np.ndarray:
    """Cells never trained on, matched to ``members`` by user: for each member user as many
    items without a stored cell in ``C`` as it has members, uniformly without replacement (with
    replacement for a user with fewer such items than members). Sorted ``(n, 2)``; deterministic
    given ``seed``."""
    X = _as_csr(C, "C", copy=False)
    members = as_deletions(members, X.shape)
    if len(members) == 0:
        raise ValueError("members is empty: no deleted cells to audit")
    rng = np.random.default_rng(seed)
    users, counts = np.unique(members[:, 0], return_counts=True)
    drawn = []
    for u, k in zip(users, counts):
        unstored = np.setdiff1d(np.arange(X.shape[1]), X.indices[X.indptr[u]:X.indptr[u + 1]])
        if unstored.size == 0:
            raise ValueError(f"members: user {u} has every item stored in C; no non-member cell to match")
        items = rng.choice(unstored, size=int(k), replace=bool(k > unstored.size))
        drawn.append(np.column_stack([np.full(items.size, u), items]))
    out = np.vstack(drawn).astype(np.int64)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def membership_auc(model: Any, members: Any, nonmembers: Any) -> float:
    """AUC of the threshold attack on the model's scores: ``members`` (deleted cells) against
    ``nonmembers`` (cells never trained on), both ``(n, 2)`` arrays of (user, item)."""
    members, nonmembers = (np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in (members, nonmembers))
    if len(members) == 0 or len(nonmembers) == 0:
        raise ValueError(f"membership_auc needs members and non-members, got {len(members)} and {len(nonmembers)}")
    scores = model.predict(np.r_[members[:, 0], nonmembers[:, 0]], np.r_[members[:, 1], nonmembers[:, 1]])
    return auc(np.r_[np.ones(len(members), bool), np.zeros(len(nonmembers), bool)], scores)


@dataclass(frozen=True)
class AuditCells:
    """What an audit reads: the original data ``C``, the users whose whole history was forgotten,
    the deleted cells (``members``) and the matched never-trained cells (``nonmembers``)."""

    C: Any
    users: np.ndarray
    members: np.ndarray
    nonmembers: np.ndarray

    @classmethod
    def of(cls, C: Any, *, users: Any = None, pairs: Any = None, seed: int = 0) -> AuditCells:
        """The cells of forgetting ``users`` (whole histories) and/or ``pairs`` (records) of ``C``."""
        X = _as_csr(C, "C", copy=False)
        if users is None and pairs is None:
            raise ValueError("forget audit needs users= (whole histories) and/or pairs= ((user, item) records)")
        ids = np.empty(0, np.int64) if users is None else _histories(X, users)[1]
        chosen = [user_history(X, ids)]
        if pairs is not None:
            chosen.append(as_deletions(pairs, X.shape))
        members = np.unique(np.vstack(chosen).astype(np.int64), axis=0)
        return cls(X, ids, members, nonmember_cells(X, members, seed))

    def scores(self, model: Any) -> AuditScores:
        """The audit statistics of ``model`` (own-history AUC NaN without whole users)."""
        own = own_history_auc(model, self.C, self.users) if self.users.size else math.nan
        return AuditScores(own, membership_auc(model, self.members, self.nonmembers))

    def step(self) -> AuditScores:
        """The smallest change of each statistic on these cells (one tied pair; NaN without users)."""
        stored = np.diff(self.C.indptr)[self.users].astype(np.float64)
        own = float(np.min(0.5 / (stored * (self.C.shape[1] - stored)))) / self.users.size \
            if self.users.size else math.nan
        return AuditScores(own, 0.5 / (len(self.members) * len(self.nonmembers)))


@dataclass(frozen=True)
class AuditScores:
    """The two audit statistics of one model."""

    own_history_auc: float
    mia_auc: float


@dataclass(frozen=True)
class RetrainBand:
    """Retraining's seed band of both statistics and the tolerance a forget must meet (module
    docstring): ``mean``, ``std`` (seed standard deviation, ``ddof=1``) and ``tolerance``."""

    mean: AuditScores
    std: AuditScores
    tolerance: AuditScores
    retrains: int
    level: float

    @classmethod
    def of(cls, retrained: Sequence[AuditScores], cells: AuditCells, level: float = AUDIT_LEVEL) -> RetrainBand:
        """The band of ``retrained`` (the statistics of >= 2 retrains with different seeds)."""
        from scipy.special import stdtrit

        k = len(retrained)
        if k < 2:
            raise ValueError(f"retrains: the band needs at least 2 retrained models (a seed spread), got {k}")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {level!r}")
        q = (1.0 + level) / 2.0
        values = np.array([[s.own_history_auc, s.mia_auc] for s in retrained])
        mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
        step = cells.step()
        floor = 0.5 * np.array([step.own_history_auc, step.mia_auc])
        tolerance = np.maximum(stdtrit(k - 1, q) * std * math.sqrt(1.0 + 1.0 / k), floor)
        return cls(AuditScores(*map(float, mean)), AuditScores(*map(float, std)),
                   AuditScores(*map(float, tolerance)), k, float(level))

    def passes(self, scores: AuditScores) -> bool:
        """Whether each statistic of ``scores`` lies within ``tolerance`` of retraining's mean
        (a statistic that is NaN for the band -- no whole users -- is not judged)."""
        ok = True
        for name in ("own_history_auc", "mia_auc"):
            mean, tol, value = (getattr(s, name) for s in (self.mean, self.tolerance, scores))
            if not math.isnan(mean):
                ok &= bool(abs(value - mean) <= tol)
        return ok


def forget_audit(original: Any, forgotten: Any, C: Any, *, retrains: Sequence[Any], users: Any = None,
                 pairs: Any = None, seed: int = 0, level: float = AUDIT_LEVEL) -> dict[str, Any]:
    """Audit a forget of ``users`` (whole histories) and/or ``pairs`` (records) of ``C``.

    ``original``: the model trained on ``C``; ``forgotten``: the model after forgetting;
    ``retrains``: >= 2 models retrained from scratch on the reduced data with different seeds.
    Non-members are drawn with ``seed``. Returns a JSON-ready dict: the forgotten model's
    ``own_history_auc`` and ``mia_auc``, retraining's mean (``retrain_*``), seed std
    (``retrain_*_std``) and ``tolerance_*``, the untouched original's (``original_*``), and
    ``passed`` (:meth:`RetrainBand.passes`) with ``original_passed`` (the negative control: a
    meaningful audit has it False)."""
    cells = AuditCells.of(C, users=users, pairs=pairs, seed=seed)
    band = RetrainBand.of([cells.scores(m) for m in retrains], cells, level)
    mine, control = cells.scores(forgotten), cells.scores(original)
    out: dict[str, Any] = {**asdict(mine)}
    for prefix, s in (("retrain_", band.mean), ("original_", control)):
        out.update({prefix + k: v for k, v in asdict(s).items()})
    out.update({f"retrain_{k}_std": v for k, v in asdict(band.std).items()})
    out.update({f"tolerance_{k}": v for k, v in asdict(band.tolerance).items()})
    out.update(passed=band.passes(mine), original_passed=band.passes(control), retrains=band.retrains,
               level=band.level, members=len(cells.members), users=cells.users.tolist())
    return out
