"""Forgetting in :class:`~.model.ALS`: exact unlearning, the deletion ledger, row residuals and ``forget``.

:class:`ForgettingMethods` holds the methods that remove data from a trained model:
:meth:`~ForgettingMethods.unlearn` (warm-started exact ALS on the modified objective, with the
deletion ledger), the row residuals of the normal equations that certify a result
(:meth:`~ForgettingMethods.row_residuals`, :meth:`~ForgettingMethods.max_row_residual`), and
:meth:`~ForgettingMethods.forget`, the shared forgetting interface (:mod:`.forget` holds its
certified method). It is a base class of :class:`~.model.ALS` only, kept apart so that the
estimator's API, the sweeps (:mod:`.sweeps`) and forgetting can each be read alone.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..forgetting import Forgetting, check_forget_method
from .cells import build_cells, weighted_mean
from .deletions import apply_deletions, as_deletions, pairs_digest, stored_pairs
from .options import MODES, SOLVERS, check_choice, check_iterations, check_tol
from .residuals import full_residuals, norms
from .weighting import as_weighting

if TYPE_CHECKING:
    from .model import ALS

log = logging.getLogger(__name__)


class ForgettingMethods:
    """Unlearning, the deletion ledger (``deleted_pairs_``, ``ledger_``), row residuals and
    ``forget`` of a fitted model. A base class of :class:`~.model.ALS`, which supplies the
    parameters, the factors and the sweeps (:class:`~.sweeps.SweepEngine`)."""

    def unlearn(
        self,
        C: Any,
        deletions: Any,
        mode: str = "retrain",
        max_iterations: int = 10,
        tol: float = 0.0,
        callback: Callable[[ALS, dict[str, Any]], Mapping[str, Any] | None] | None = None,
        show_progress: bool = False,
        *,
        mask: Any = None,
        negatives: Any = None,
        local_update: bool = True,
        frozen_weights: bool = False,
        solver: str = "cholesky",
    ) -> ALS:
        """Forget ``deletions`` from a model trained on ``C``: a NEW model; ``self``/``C`` unchanged.

        ``deletions`` is an ``(n, 2)`` integer array of (user, item) rows, each a stored cell of
        ``C``. The data are modified as :func:`apply_deletions` does for ``mode``; with a
        ``weighting`` the confidences are then recomputed on the reduced interactions, so in
        ``retrain`` mode the objective is exactly the one retraining from scratch on the reduced
        data minimises. ``frozen_weights=True`` keeps the confidences computed on ``C`` (the
        authors' shortcut; *not exact* for data-dependent weightings such as BM25).

        Deletion ledger: pairs forgotten earlier (``deleted_pairs_``) that ``C`` still holds are
        removed again, under ``mode``, so passing the original data never re-learns them;
        re-deleting a forgotten pair is an error. The result records this call in ``ledger_``.

        Exact ALS (Cholesky, whatever ``self.solver``) runs warm-started from the current
        factors; ``solver="cg"`` runs its conjugate-gradient counterpart instead (``cg_steps``
        steps per row, warm-started: not exact, for racing CG unlearning against CG retraining). With ``local_update`` the rows of the deleted cells are solved first (users,
        then items: history phase ``"local"``), then up to ``max_iterations`` full sweeps
        (stopping early when the relative objective change is below ``tol``). ``history_`` of
        the result starts with the objective of the original factors on the modified data; every
        record counts the row solves of its phase (``rows_solved``).
        """
        self._validate_params()
        check_iterations(max_iterations, "max_iterations")
        check_tol(tol)
        self._check_fitted("user_factors_", "unlearn (or use ALS.from_factors)")
        check_choice(mode, MODES, "mode")
        check_choice(solver, SOLVERS, "solver")
        from .cells import _as_csr

        X = _as_csr(C, "C")
        self._check_factors(X.shape)
        new, held, pairs = self._deletion_sets(X, as_deletions(deletions, X.shape))
        weighting = as_weighting(self.weighting)
        data = apply_deletions(self._confidences(X), pairs, mode, feedback=self.feedback, mask=mask,
                               negatives=negatives)
        recomputed = weighting is not None and not frozen_weights and len(pairs) > 0
        if recomputed:
            data = data._replace(C=weighting(apply_deletions(X, pairs, "retrain").C))
        model = self._copy_with_ledger(new, held, mode, frozen_weights, X)
        cells = build_cells(data.C, self.feedback, data.mask, data.negatives)
        if len(pairs) == 0:
            msg = "unlearn: empty deletion set; returning an unchanged copy of the model"
            warnings.warn(msg, stacklevel=2)
            log.warning(msg)
            model.history_ = [model._record(cells, 0, "start", 0.0, 0.0, None)]
            return model
        if model.use_bias:
            model.global_mean_ = weighted_mean(cells)
        if local_update:
            # recomputed data-dependent weights change every row: the local step is only a head start
            local = (np.unique(pairs[:, 0]), np.unique(pairs[:, 1]))
        else:
            local = None
        with model._threads():
            model._iterate(cells, max_iterations, tol, callback, show_progress, desc=f"unlearn ({mode})",
                           local=local, solver=solver)
        return model

    def _deletion_sets(self, X: Any, new: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(new, held, all) deletion pairs: ``new`` checked against the ledger (re-deleting a
        forgotten pair is an error), ``held`` the earlier deletions ``X`` still stores (removed
        again), ``all`` their union."""
        shape = X.shape
        earlier = self.deleted_pairs_
        again = stored_pairs(_pairs_matrix(earlier, shape), new) if len(earlier) and len(new) else new[:0]
        if len(again):
            u, i = again[0]
            raise ValueError(f"deletions: {len(again)} pair(s) were already forgotten by this model, e.g. ({u}, {i})")
        held = stored_pairs(X, earlier)  # earlier deletions the data still holds: removed again
        return new, held, as_deletions(np.vstack([new, held]), shape)

    def _copy_with_ledger(self, new: np.ndarray, held: np.ndarray, mode: str, frozen_weights: bool,
                          X: sp.csr_matrix, stacklevel: int = 3) -> ALS:
        """A copy of the model with ``new`` added to the deletion ledger (and an empty history).

        The entry says ``exact`` only when the solved objective is the retraining one: retrain
        mode, and confidences recomputed (or cell-wise, or all equal). Varying confidences given
        pre-computed (no ``weighting``) cannot be recomputed: recorded as ``"given"``, not
        exact, with a warning (:func:`.forget.warn_given_confidences`)."""
        from .forget import warn_given_confidences

        weighting = as_weighting(self.weighting)
        model = self.copy()
        model.history_ = []
        if len(new):
            given = warn_given_confidences(self, X, stacklevel + 1)
            if weighting is None:
                weights = "given (not recomputed)" if given else "none"
            else:
                weights = "frozen" if frozen_weights else "recomputed"
            model.deleted_pairs_ = as_deletions(np.vstack([self.deleted_pairs_, new]), self._shape)
            model.ledger_.append({
                "count": len(new), "sha256": pairs_digest(new), "mode": mode, "weights": weights,
                "weighting": None if weighting is None else weighting.to_dict(),
                "exact": bool(mode == "retrain" and not given
                              and (weighting is None or not frozen_weights or weighting.cellwise)),
                "reapplied": len(held),
            })
        return model

    # -- certified forgetting -------------------------------------------------------------
    def row_residuals(self, C: Any) -> tuple[np.ndarray, np.ndarray]:
        """Norms of every user's and every item's row residual on ``C`` (a fixed point: all 0).

        The row residual is ``A_row x_row - b_row`` of the row's normal equations, half the
        gradient of the objective with respect to the row; :mod:`.residuals` defines it for implicit
        and explicit feedback and biases. With a ``weighting``, ``C`` holds interactions."""
        from .cells import _as_csr

        X = _as_csr(C, "C", copy=False)
        self._check_factors(X.shape)
        R_U, R_I = self._full_residuals(self._confidences(X))
        return norms(R_U), norms(R_I)

    def max_row_residual(self, C: Any) -> float:
        """The largest row residual of the model on ``C`` (``O(nnz k)``). Computing it also caches
        the per-row residual state a certified :meth:`forget` from ``C`` starts from, keyed by
        content hashes of ``C`` and of the model (:mod:`.forget`), so it is never stale."""
        from .cells import _as_csr
        from .fingerprints import data_digest
        from .forget import residual_state

        self._validate_params()
        X = _as_csr(C, "C", copy=False)
        self._check_factors(X.shape)
        return residual_state(self, X, np.empty((0, 2), dtype=np.int64), data_digest(X))[0]["max"]

    def _full_residuals(self, conf: Any) -> tuple[np.ndarray, np.ndarray]:
        bias = (self.user_bias_, self.item_bias_, self.global_mean_) if self.use_bias else None
        return full_residuals(conf, self.user_factors_, self.item_factors_, base=float(self.feedback == "implicit"),
                              explicit=self.feedback == "explicit", regularization=self.regularization,
                              scaled=bool(self.scale_regularization), bias=bias, workers=self.num_threads or 1)

    def forget(
        self,
        C: Any,
        *,
        users: Any = None,
        pairs: Any = None,
        method: str = "certified",
        tolerance: float | None = None,
        max_iterations: int | None = None,
        tol: float | None = None,
        batch_rows: int | None = None,
        show_progress: bool = False,
    ) -> Forgetting:
        """Forget whole user histories (``users``) and/or (user, item) records (``pairs``) of ``C``.

        Deletion semantics are :meth:`unlearn`'s ``mode="retrain"`` (the retraining objective on
        the reduced data, confidences recomputed with a ``weighting``; the ledger is updated and
        earlier deletions ``C`` still holds are removed again). ``self`` and ``C`` are unchanged
        (only the residual cache of :meth:`max_row_residual` may be filled). Returns
        ``Forgetting(model, record)``. See :mod:`.forget` for the guarantee and the certificate.

        * ``method="certified"`` (default): every user and item of a deleted cell is solved
          exactly on the reduced data (a user left without cells becomes exactly zero, as after
          retraining). With ``tolerance``, rows are then re-solved, largest row residual first
          (rounds of at most ``batch_rows`` rows on one side; at most ``max_iterations`` rounds,
          default 100), until every row residual on the reduced data is at most ``tolerance``
          -- an absolute number, yours to choose -- and ``record.certified`` says whether it
          held; ``record.details["certificate"]`` names the model and data by content hash
          (:func:`.forget.verify_certificate` re-checks it). Without ``tolerance`` no bound is
          claimed (``record.certified`` is False). Not implemented with biases or a data-dependent
          weighting (BM25), whose deletion disturbs every row: use ``method="exact"``.
        * ``method="exact"``: :meth:`unlearn`, warm-started full sweeps to retraining's stopping rule
          (``max_iterations``/``tol`` default to ``iterations``/``tol``; ``tol`` and
          ``show_progress`` apply to this method only); certified against ``tolerance`` if given.

        ``record.gap`` is the largest row residual of the result on the reduced data, over every row.
        """
        from .cells import _as_csr
        from .forget import forget, forget_selection, forgotten_users

        check_forget_method(method, ("exact", "certified"))
        self._validate_params()
        self._check_fitted("user_factors_", "forget (or use ALS.from_factors)")
        if max_iterations is not None:
            check_iterations(max_iterations, "max_iterations")
        if tol is not None:
            check_tol(tol)
        if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.number))
                                      or not np.isfinite(tolerance) or tolerance <= 0):
            raise ValueError(f"tolerance must be a finite number > 0 (an absolute bound on every row residual) "
                             f"or None, got {tolerance!r}")
        if batch_rows is not None and (isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer))
                                       or batch_rows < 1):
            raise ValueError(f"batch_rows must be a positive integer or None, got {batch_rows!r}")
        X = _as_csr(C, "C", copy=False)
        self._check_factors(X.shape)
        chosen = forget_selection(X, users, pairs)
        return forget(self, X, chosen, forgotten_users(users), method,
                      tolerance=None if tolerance is None else float(tolerance), max_iterations=max_iterations,
                      tol=tol, batch_rows=batch_rows, show_progress=show_progress)



def _pairs_matrix(pairs: np.ndarray, shape: tuple[int, int]):
    return sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=shape)
