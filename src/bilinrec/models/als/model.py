"""Alternating least squares for bi-linear recommenders, and exact unlearning (Unlearn-ALS).

Cells of a users x items matrix carry a confidence ``c`` (weight in the loss) and a target ``p``:

* **implicit feedback** (Hu, Koren & Volinsky 2008) minimises, over *all* cells,
  ``sum c_ui (p_ui - x_u . y_i)^2 + lambda (|X|^2 + |Y|^2)``. The input CSR matrix ``C`` stores the
  confidence of each observed cell (target 1); unstored cells have ``c = 1, p = 0`` -- the convention
  of the ``implicit`` library, so data and factors interchange with it.
* **explicit feedback** minimises ``sum over observed (r_ui - x_u . y_i)^2`` plus L2 regularisation;
  optionally with a global mean and user/item biases (``r_ui - mu - b_u - b_i - x_u . y_i``) and
  ALS-WR count-scaled regularisation; ``C`` stores the ratings.

Two further kinds of cell are given as separate sparse matrices, never as stored values of ``C``
(an explicitly stored 0 does not survive most scipy operations):

* ``mask``: cells with confidence 0 -- no influence at all ("block influence");
* ``negatives``: cells with target 0 and the stored confidence ("confident negatives").

:func:`apply_deletions` turns a deletion set into these matrices for the three unlearning modes, and
:meth:`ALS.unlearn` runs warm-started exact ALS on the modified objective::

    model = ALS(factors=100, regularization=0.01, iterations=150, random_state=seed).fit(C)
    forgotten = model.unlearn(C, pairs, mode="retrain", max_iterations=10)     # new model
    data = apply_deletions(C, pairs, "retrain")                                # the reference:
    retrained = ALS(factors=100, iterations=150, random_state=seed).fit(data.C, mask=data.mask, negatives=data.negatives)

:meth:`ALS.forget` is the shared forgetting interface (:mod:`bilinrec.models.forgetting`): exact
(``unlearn``) or certified (the rows of deleted cells solved exactly, then rows re-solved until
every row residual is within the caller's tolerance; :mod:`.forget`)::

    forgotten, record = model.forget(C, users=[u], tolerance=1e-3)   # record.certified: gap <= tolerance"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..base import Estimator, NotFittedError
from ..forgetting import Forgetting, check_forget_method
from .cells import Cells, build_cells
from .deletions import apply_deletions, as_deletions, pairs_digest, stored_pairs
from .io import read_model, write_model
from . import anderson
from .anderson import Anderson
from .balance import balance
from .options import DEFAULT_CHUNK_BYTES, FEEDBACKS, MODES, SOLVERS, check_choice
from .residuals import full_residuals, norms
from .scores import cell_terms, pair_scores
from .threads import kernel_workers
from .weighting import Weighting, as_weighting

log = logging.getLogger(__name__)

#: ``acceleration`` of :class:`ALS`: plain sweeps (None), safeguarded Anderson acceleration of the
#: item side, or balanced sweeps with guarded Anderson over users and items.
ACCELERATIONS = (None, "anderson", "balanced_anderson")


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
class ALS(Estimator):
    """Bi-linear recommender trained by alternating least squares, with exact unlearning.

    Parameters
    ----------
    factors : latent dimension.
    regularization : L2 weight ``lambda`` on user and item factors (and biases).
    feedback : ``"implicit"`` (confidence-weighted loss over all cells) or ``"explicit"``
        (squared error on observed ratings only).
    solver : ``"cholesky"`` (exact batched solve, the default) or ``"cg"`` (``cg_steps``
        conjugate-gradient steps per row and half-sweep, warm-started; as in ``implicit``; a
        Numba kernel, compiled on first use and cached on disk).
    dtype : ``np.float64`` or ``np.float32`` for factors and solves (objectives use float64).
    iterations : maximum number of full sweeps of :meth:`fit`.
    tol : :meth:`fit` stops once a sweep changes the objective by a relative amount below ``tol``.
    random_state : seed (or numpy ``Generator``) of the random initial factors (uniform on
        [0, 0.01), as in ``implicit``).
    use_bias : explicit feedback only: learn a global mean and user/item biases.
    scale_regularization : multiply ``lambda`` by each row's number of observed cells (ALS-WR).
    num_threads : worker threads over rows during fit/unlearn, with single-threaded BLAS
        (results do not depend on it); ``None``: one worker, BLAS threads as configured.
    chunk_bytes : memory budget of one chunk of normal matrices or residuals (certified
        :meth:`forget`).
    acceleration : ``None`` (plain ALS sweeps) or ``"anderson"``: each sweep starts from the
        Anderson extrapolation of the last ``anderson_memory + 1`` sweeps, with a safeguard that
        rejects a start whose sweep raises the objective (:mod:`.anderson`); the same fixed
        points, a monotone objective, in far fewer sweeps at small regularization. Or
        ``"balanced_anderson"``: after each sweep the factors are balanced (:mod:`.balance`, the
        regulariser's minimum over factorisations of ``X Y^T``), users and items are extrapolated
        together, and the extrapolation is kept only if its objective is at most the sweep's
        (fewer sweeps still). Applies to :meth:`fit` and :meth:`unlearn`.
    anderson_memory : sweeps remembered by the Anderson extrapolation.
    weighting : ``None`` (``C`` holds the confidences) or a :class:`Weighting` (or a mapping of
        its fields, or a scheme name): ``C`` then holds raw interactions and the model computes
        the confidences itself -- in :meth:`fit`, :meth:`objective` and :meth:`unlearn`, which
        recomputes them on the reduced data (what retraining from scratch does).

    Parameters are stored as given and checked by :meth:`fit`/:meth:`unlearn` (scikit-learn
    convention). Fitted attributes end in ``_``: ``user_factors_``, ``item_factors_``,
    ``history_``, ``train_iterations_``, ``sweep_seconds_`` (and ``user_bias_``, ``item_bias_``,
    ``global_mean_`` with ``use_bias``), and the deletion ledger: ``deleted_pairs_`` (every
    (user, item) pair forgotten so far) and ``ledger_`` (one record per :meth:`unlearn` call).
    """

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        feedback: str = "implicit",
        solver: str = "cholesky",
        cg_steps: int = 3,
        dtype: Any = np.float64,
        iterations: int = 15,
        tol: float = 0.0,
        random_state: Any = 0,
        use_bias: bool = False,
        scale_regularization: bool = False,
        num_threads: int | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        weighting: Any = None,
        acceleration: str | None = None,
        anderson_memory: int = 5,
    ):
        # scikit-learn convention: store the parameters as given; validation happens in fit/unlearn
        self.factors = factors
        self.regularization = regularization
        self.feedback = feedback
        self.solver = solver
        self.cg_steps = cg_steps
        self.dtype = dtype
        self.iterations = iterations
        self.tol = tol
        self.random_state = random_state
        self.use_bias = use_bias
        self.scale_regularization = scale_regularization
        self.num_threads = num_threads
        self.chunk_bytes = chunk_bytes
        self.weighting = weighting
        self.acceleration = acceleration
        self.anderson_memory = anderson_memory

    # -- configuration (get_params, set_params, clone, repr: :class:`~bilinrec.models.base.Estimator`)
    def _json_params(self) -> dict[str, Any]:
        """The parameters in JSON-serialisable form (for model files)."""
        params = self.get_params()
        params["dtype"] = np.dtype(params["dtype"]).name
        rs = params["random_state"]
        params["random_state"] = int(rs) if isinstance(rs, (int, np.integer)) else None
        w = as_weighting(params["weighting"])
        params["weighting"] = None if w is None else w.to_dict()
        return params

    def _validate_params(self) -> None:
        """Check every parameter (called by fit, unlearn and forget); errors name the parameter."""
        factors, cg_steps = self.factors, self.cg_steps
        if isinstance(factors, bool) or not isinstance(factors, (int, np.integer)) or factors < 1:
            raise ValueError(f"factors must be a positive integer, got {factors!r}")
        if not isinstance(self.regularization, (int, float, np.number)) or not np.isfinite(self.regularization) \
                or self.regularization < 0:
            raise ValueError(f"regularization must be a finite number >= 0, got {self.regularization!r}")
        check_choice(self.feedback, FEEDBACKS, "feedback")
        check_choice(self.solver, SOLVERS, "solver")
        if isinstance(cg_steps, bool) or not isinstance(cg_steps, (int, np.integer)) or cg_steps < 1:
            raise ValueError(f"cg_steps must be a positive integer, got {cg_steps!r}")
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as err:
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}") from err
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        _check_iterations(self.iterations, "iterations")
        _check_tol(self.tol)
        rs = self.random_state
        if not (rs is None or isinstance(rs, np.random.Generator)
                or (isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) and rs >= 0)):
            raise ValueError(f"random_state must be a non-negative integer, a numpy Generator or None, got {rs!r}")
        if self.use_bias and self.feedback != "explicit":
            raise ValueError("use_bias is only available with feedback='explicit'")
        if self.num_threads is not None and (isinstance(self.num_threads, bool) or self.num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {self.num_threads!r}")
        if isinstance(self.chunk_bytes, bool) or not isinstance(self.chunk_bytes, (int, np.integer)) \
                or self.chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be a positive integer, got {self.chunk_bytes!r}")
        if self.acceleration not in ACCELERATIONS:
            raise ValueError(f"acceleration must be one of {ACCELERATIONS}, got {self.acceleration!r}")
        if isinstance(self.anderson_memory, bool) or not isinstance(self.anderson_memory, (int, np.integer)) \
                or self.anderson_memory < 1:
            raise ValueError(f"anderson_memory must be a positive integer, got {self.anderson_memory!r}")
        if as_weighting(self.weighting) is not None and self.feedback != "implicit":
            raise ValueError("weighting is only available with feedback='implicit'")

    def _confidences(self, X: Any) -> Any:
        """Confidences of the interactions ``X`` under ``weighting`` (``X`` itself without one)."""
        w = as_weighting(self.weighting)
        if w is None:
            return X
        from .cells import _as_csr

        return w(_as_csr(X, "C"))

    @property
    def _shape(self) -> tuple[int, int]:
        """(users, items) of the fitted factors."""
        return self.user_factors_.shape[0], self.item_factors_.shape[0]

    @property
    def _dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "user_factors_", None) is not None and getattr(self, "item_factors_", None) is not None

    @classmethod
    def from_factors(
        cls,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        *,
        user_bias: np.ndarray | None = None,
        item_bias: np.ndarray | None = None,
        global_mean: float = 0.0,
        train_iterations: int = 0,
        sweep_seconds: float = float("nan"),
        **params: Any,
    ) -> ALS:
        """A model holding given factors (e.g. from an ``implicit`` model), ready to unlearn.

        ``params`` are constructor arguments; ``factors`` and ``dtype`` default to the factors'.
        """
        U, V = np.asarray(user_factors), np.asarray(item_factors)
        for name, F in (("user_factors", U), ("item_factors", V)):
            if F.ndim != 2 or not np.issubdtype(F.dtype, np.floating) or not np.all(np.isfinite(F)):
                raise ValueError(f"{name} must be a finite 2-D float array, got {F.dtype} {F.shape}")
        if U.shape[1] != V.shape[1]:
            raise ValueError(
                f"user_factors and item_factors differ in width ({U.shape[1]} vs {V.shape[1]})"
            )
        params.setdefault("factors", U.shape[1])
        params.setdefault("dtype", U.dtype if U.dtype in (np.float32, np.float64) else np.float64)
        model = cls(**params)
        model._validate_params()
        if model.factors != U.shape[1]:
            raise ValueError(f"factors={model.factors} does not match the factors' width {U.shape[1]}")
        model._set_fitted(np.array(U, dtype=model._dtype), np.array(V, dtype=model._dtype))
        if model.use_bias:
            model.user_bias_ = _bias(user_bias, U.shape[0], "user_bias", model._dtype)
            model.item_bias_ = _bias(item_bias, V.shape[0], "item_bias", model._dtype)
            model.global_mean_ = float(global_mean)
        elif user_bias is not None or item_bias is not None:
            raise ValueError("user_bias/item_bias need use_bias=True (and feedback='explicit')")
        model.train_iterations_ = int(train_iterations)
        model.sweep_seconds_ = float(sweep_seconds)
        return model

    @classmethod
    def from_implicit(cls, model: Any, *, alpha: float | None = None, **params: Any) -> ALS:
        """An exact copy of an ``implicit`` ALS model (``implicit.als.AlternatingLeastSquares``,
        CPU or GPU), ready to unlearn with the interactions it was fitted on.

        ``implicit`` (>= 0.5) multiplies the interactions by ``alpha`` before training: the model
        gets ``weighting=Weighting("scale", scale=alpha)`` so :meth:`objective` and
        :meth:`unlearn` take the same ``user_items`` matrix and minimise the same objective.
        ``alpha`` defaults to ``model.alpha`` (1 for versions without it); pass it explicitly
        if you scaled the matrix yourself. Factors, regularization, dtype, iterations and the
        solver (CG with ``cg_steps`` or exact) are taken from the model; ``params`` override them.
        """
        if hasattr(model, "to_cpu") and not hasattr(model, "XtX"):
            try:
                model = model.to_cpu()
            except Exception as err:  # noqa: BLE001 - CPU models of some versions also have to_cpu
                log.debug("from_implicit: to_cpu() failed (%s); using the model as is", err)
        U, V = getattr(model, "user_factors", None), getattr(model, "item_factors", None)
        if U is None or V is None:
            raise ValueError("from_implicit needs a fitted implicit model (user_factors/item_factors)")
        U, V = np.asarray(U), np.asarray(V)
        if alpha is None:
            alpha = float(getattr(model, "alpha", 1.0))
        if not np.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        defaults = {
            "regularization": float(model.regularization),
            "iterations": int(getattr(model, "iterations", 15)),
            "solver": "cg" if getattr(model, "use_cg", False) else "cholesky",
            "cg_steps": int(getattr(model, "cg_steps", 3)),
            "weighting": Weighting(scheme="scale", scale=float(alpha)),
        }
        rs = getattr(model, "random_state", None)
        if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool):
            defaults["random_state"] = int(rs)
        return cls.from_factors(U, V, **{**defaults, **params})

    def _set_fitted(self, U: np.ndarray, V: np.ndarray) -> None:
        """Fresh fitted state around the factors ``U``, ``V``."""
        self.user_factors_ = U
        self.item_factors_ = V
        self.user_bias_ = None
        self.item_bias_ = None
        self.global_mean_ = 0.0
        self.history_ = []
        #: Full sweeps of the training that produced the factors, and their mean wall time.
        self.train_iterations_ = 0
        self.sweep_seconds_ = float("nan")
        self.deleted_pairs_ = np.empty((0, 2), dtype=np.int64)
        self.ledger_: list[dict[str, Any]] = []
        self._residuals: tuple | None = None  # (content-hash key, residual state): see .forget.residual_state

    @property
    def forgotten_(self) -> dict[str, Any]:
        """Summary of the deletion ledger: count and SHA-256 of all forgotten pairs, and the events."""
        return {"count": len(self.deleted_pairs_), "sha256": pairs_digest(self.deleted_pairs_),
                "events": [dict(e) for e in self.ledger_]}

    def copy(self) -> ALS:
        """A deep copy (parameters, factors, biases, history)."""
        model = type(self)(**self.get_params())
        if not self.is_fitted:
            return model
        model._set_fitted(self.user_factors_.copy(), self.item_factors_.copy())
        for name in ("user_bias_", "item_bias_"):
            value = getattr(self, name, None)
            setattr(model, name, None if value is None else value.copy())
        model.global_mean_ = self.global_mean_
        model.history_ = [dict(rec) for rec in self.history_]
        model.train_iterations_ = self.train_iterations_
        model.sweep_seconds_ = self.sweep_seconds_
        model.deleted_pairs_ = self.deleted_pairs_.copy()
        model.ledger_ = [dict(e) for e in self.ledger_]
        model._residuals = self._residuals  # keyed by content hashes: never stale
        return model

    # -- training ------------------------------------------------------------------------
    def fit(
        self,
        C: Any,
        *,
        mask: Any = None,
        negatives: Any = None,
        warm_start: bool = False,
        callback: Callable[[ALS, dict[str, Any]], Mapping[str, Any] | None] | None = None,
        show_progress: bool = False,
    ) -> ALS:
        """Train on ``C`` (users x items CSR of confidences, or ratings for explicit feedback).

        Runs full sweeps (users, then items) until ``iterations`` sweeps are done or the relative
        objective change of a sweep falls below ``tol``. ``warm_start=True`` starts from the
        current factors instead of random ones. ``callback(model, record)`` is called after every
        sweep; a returned mapping (e.g. ``{"test_auc": ...}``) is added to that sweep's record.
        ``history_`` holds one record per sweep (plus record 0, phase ``"start"``: the starting
        point) with ``iteration``, ``phase``, ``objective``, ``rel_change`` (None at the start),
        ``seconds`` (the sweep alone), ``elapsed`` (since the start, objectives included) and, for
        sweeps, ``cpu_seconds`` (the sweep's CPU time over all threads of the process).
        """
        self._validate_params()
        cells = build_cells(self._confidences(C), self.feedback, mask, negatives)
        if warm_start:
            self._check_factors(cells.shape)
            held = stored_pairs(C, self.deleted_pairs_)
            if len(held):
                u, i = held[0]
                raise ValueError(
                    f"C holds {len(held)} pair(s) this model has forgotten, e.g. ({u}, {i}); warm-started "
                    "training on them would re-learn them. Remove them from C (see deleted_pairs_) or "
                    "train from scratch (warm_start=False)")
            U, V = self.user_factors_, self.item_factors_
            ub, ib = getattr(self, "user_bias_", None), getattr(self, "item_bias_", None)
            pairs, ledger = self.deleted_pairs_, self.ledger_
            self._set_fitted(U, V)
            self.user_bias_, self.item_bias_ = ub, ib
            self.deleted_pairs_, self.ledger_ = pairs, ledger
            if self.use_bias and (ub is None or ib is None):
                self.user_bias_ = np.zeros(cells.shape[0], self._dtype)
                self.item_bias_ = np.zeros(cells.shape[1], self._dtype)
        else:
            self._init_factors(cells.shape)
        if self.use_bias:
            self.global_mean_ = _weighted_mean(cells)
        with self._threads():
            self._iterate(cells, int(self.iterations), float(self.tol), callback, show_progress, desc="ALS fit")
        sweeps = [r["seconds"] for r in self.history_ if r.get("phase") == "sweep"]
        self.train_iterations_ = len(sweeps)
        self.sweep_seconds_ = float(np.mean(sweeps)) if sweeps else float("nan")
        return self

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
        _check_iterations(max_iterations, "max_iterations")
        _check_tol(tol)
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
            model.global_mean_ = _weighted_mean(cells)
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
            _check_iterations(max_iterations, "max_iterations")
        if tol is not None:
            _check_tol(tol)
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

    def _iterate(self, cells, iterations, tol, callback, show_progress, desc, local=None, solver=None):
        """Sweeps until ``iterations`` or ``tol`` (after the ``local`` rows first), appending to
        ``history_``; ``solver`` overrides the ``solver`` parameter (unlearn chooses its own)."""
        from tqdm.auto import tqdm

        start = time.perf_counter()
        record = self._record(cells, 0, "start", 0.0, 0.0, None)
        self.history_.append(record)
        previous = record["objective"]
        full = cells.shape[0] + cells.shape[1]
        if local is not None:
            t0 = time.perf_counter()
            self._half_sweep(cells, users=local[0], solver=solver)
            self._half_sweep(cells, items=local[1], solver=solver)
            record = self._record(cells, 0, "local", time.perf_counter() - t0,
                                  time.perf_counter() - start, previous)
            record["rows_solved"] = int(local[0].size + local[1].size)
            self.history_.append(record)
            previous = record["objective"]
        balanced = self.acceleration == "balanced_anderson"
        accel = Anderson(self.anderson_memory) if self.acceleration is not None else None
        proposal = None  # the extrapolated start of the next sweep (acceleration="anderson")
        bar = tqdm(range(1, iterations + 1), desc=desc, disable=not show_progress, leave=False)
        for it in bar:
            t0, cpu0 = time.perf_counter(), time.process_time()
            if balanced:
                record = self._balanced_step(cells, accel, it, previous, solver)
                record.update(elapsed=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu0)
            else:
                accepted = self._item_state() if proposal is not None else None
                if proposal is not None:
                    self._set_item_state(proposal)
                begin = self._item_state() if accel is not None else None
                self._sweep(cells, solver)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                record = self._record(cells, it, "sweep", seconds, time.perf_counter() - start, previous)
                record["rows_solved"], record["cpu_seconds"] = full, cpu
            if accel is not None and not balanced:
                record["rejected"] = 0
                if accepted is not None and not anderson.accept(record["objective"], previous):
                    # safeguard: the extrapolated start raised the objective; a plain sweep from
                    # the last accepted point instead (its cost is counted in this record)
                    t1, cpu1 = time.perf_counter(), time.process_time()
                    self._set_item_state(accepted)
                    accel.reset()
                    begin = accepted
                    self._sweep(cells, solver)
                    seconds += time.perf_counter() - t1
                    cpu += time.process_time() - cpu1
                    record = self._record(cells, it, "sweep", seconds, time.perf_counter() - start, previous)
                    record.update(rows_solved=2 * full, cpu_seconds=cpu, rejected=1, objectives=2)
                proposal = accel.propose(begin, self._item_state())
            if callback is not None:
                extra = callback(self, record)
                if extra:
                    record.update(extra)
            self.history_.append(record)
            bar.set_postfix(objective=f"{record['objective']:.6g}", rel=f"{record['rel_change']:.2e}")
            previous = record["objective"]
            if record["rel_change"] < tol:
                break
        bar.close()

    def _balanced_step(self, cells, accel, it, previous, solver=None):
        """One iteration of ``acceleration="balanced_anderson"``: a sweep, then gauge balancing
        (:mod:`.balance`), then the Anderson extrapolation over users and items together, kept
        only if its objective is at most the sweep's (the safeguard, :func:`.anderson.accept`:
        checked before any sweep starts from it, so a rejection costs one objective evaluation)."""
        t0 = time.perf_counter()
        begin = self._state()
        self._sweep(cells, solver)
        balanced = balance(self.user_factors_, self.item_factors_, self._reg(cells, 0), self._reg(cells, 1))
        image = self._state()
        record = self._record(cells, it, "sweep", 0.0, 0.0, previous)
        record.update(rows_solved=sum(cells.shape), balanced=int(balanced), rejected=0)
        proposal = accel.propose(begin, image)
        if proposal is not None:
            self._set_state(proposal)
            extrapolated = self._objective(cells)
            record["objectives"] += 1
            if anderson.accept(extrapolated, record["objective"]):
                record["objective"] = extrapolated
                record["rel_change"] = abs(previous - extrapolated) / max(abs(previous), 1e-300)
            else:
                self._set_state(image)
                accel.reset()
                record["rejected"] = 1
        record["seconds"] = time.perf_counter() - t0
        return record

    def _sweep(self, cells: Cells, solver: str | None = None) -> None:
        """One full ALS sweep: every user row, then every item row."""
        self._half_sweep(cells, users=slice(None), solver=solver)
        self._half_sweep(cells, items=slice(None), solver=solver)

    def _state(self) -> np.ndarray:
        """Users' then items' parameters (factors, and biases with ``use_bias``), float64."""
        return np.vstack([self._side_state(self.user_factors_, self.user_bias_),
                          self._side_state(self.item_factors_, self.item_bias_)])

    def _side_state(self, F: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        F = F.astype(np.float64)
        return np.column_stack([F, bias]) if self.use_bias else F

    def _set_state(self, state: np.ndarray) -> None:
        n_users, k = self.user_factors_.shape
        self.user_factors_[:] = state[:n_users, :k]
        if self.use_bias:
            self.user_bias_[:] = state[:n_users, k]
        self._set_item_state(state[n_users:])

    def _item_state(self) -> np.ndarray:
        """The item side's parameters (factors, and biases with ``use_bias``), float64: the
        state a sweep maps (users are solved from it)."""
        return self._side_state(self.item_factors_, self.item_bias_)

    def _set_item_state(self, state: np.ndarray) -> None:
        k = self.item_factors_.shape[1]
        self.item_factors_[:] = state[:, :k]
        if self.use_bias:
            self.item_bias_[:] = state[:, k]

    def _record(self, cells, iteration, phase, seconds, elapsed, previous):
        objective = self._objective(cells)
        rel = None if previous is None else abs(previous - objective) / max(abs(previous), 1e-300)
        return {"iteration": iteration, "phase": phase, "objective": objective, "rel_change": rel,
                "seconds": seconds, "elapsed": elapsed, "rows_solved": 0, "objectives": 1}

    def _half_sweep(self, cells: Cells, users: Any = None, items: Any = None, solver: str | None = None) -> None:
        """Re-solve all (``slice(None)``) or the given users' (or items') rows, the other side fixed,
        with ``solver`` (default: the ``solver`` parameter)."""
        axis = 0 if users is not None else 1
        which = users if axis == 0 else items
        rows = None if isinstance(which, slice) else np.asarray(which, dtype=np.int64)
        own, other = (self.user_factors_, self.item_factors_) if axis == 0 else (self.item_factors_, self.user_factors_)
        reg = self._reg(cells, axis)
        workers = self.num_threads or 1

        def solve(own, other, target_shift=None):
            solved = np.arange(cells.shape[axis]) if rows is None else rows
            if (solver or self.solver) == "cg":
                from .cg import (
                    cg_solve_rows,  # compiles on first use (cached on disk)
                )

                cg_solve_rows(own, solved, cells.csr(axis), other, cells.base, reg, self.cg_steps,
                              target_shift, workers)
            else:
                from .chol import (
                    cholesky_solve_rows,  # compiles on first use (cached on disk)
                )

                cholesky_solve_rows(own, solved, cells.csr(axis), other, cells.base, reg, target_shift, workers)

        if not self.use_bias:
            solve(own, other)
            return
        # biases: solve [x_u, b_u] against [y_i, 1] with targets r - mu - b_i
        own_bias = self.user_bias_ if axis == 0 else self.item_bias_
        other_bias = self.item_bias_ if axis == 0 else self.user_bias_
        ext_other = np.column_stack([other, np.ones(other.shape[0], self._dtype)])
        ext_own = np.column_stack([own, own_bias])
        solve(ext_own, ext_other, self.global_mean_ + other_bias)
        own[:] = ext_own[:, :-1]
        own_bias[:] = ext_own[:, -1]

    def _reg(self, cells: Cells, axis: int) -> np.ndarray:
        n = cells.shape[axis]
        if not self.scale_regularization:
            return np.full(n, self.regularization)
        return self.regularization * np.maximum(cells.counts(axis), 1.0)

    # -- objective and prediction ---------------------------------------------------------
    def objective(self, C: Any, *, mask: Any = None, negatives: Any = None) -> float:
        """The training objective (float64) of the current factors on ``C`` (+ mask/negatives);
        with a ``weighting``, ``C`` holds interactions and is weighted first."""
        cells = build_cells(self._confidences(C), self.feedback, mask, negatives)
        self._check_factors(cells.shape)
        return self._objective(cells)

    def _objective(self, cells: Cells) -> float:
        X = self.user_factors_.astype(np.float64)
        Y = self.item_factors_.astype(np.float64)
        total = 0.0
        if cells.base:
            total += cells.base * float(np.sum((X.T @ X) * (Y.T @ Y)))
        shift_u = shift_i = None
        if self.use_bias:
            shift_u = self.global_mean_ + self.user_bias_.astype(np.float64)
            shift_i = self.item_bias_.astype(np.float64)
        with kernel_workers(self.num_threads or 1):
            total += cell_terms(cells.csr(0), self.user_factors_, self.item_factors_, cells.base, shift_u, shift_i)
        reg_u, reg_i = self._reg(cells, 0), self._reg(cells, 1)
        sq_u, sq_i = np.sum(X**2, axis=1), np.sum(Y**2, axis=1)
        if self.use_bias:
            sq_u = sq_u + self.user_bias_.astype(np.float64) ** 2
            sq_i = sq_i + self.item_bias_.astype(np.float64) ** 2
        return total + float(reg_u @ sq_u + reg_i @ sq_i)

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Scores (float64) of the (user, item) pairs ``zip(users, items)``."""
        self._check_fitted("user_factors_", "predict")
        users, items = np.asarray(users), np.asarray(items)
        if users.shape != items.shape:
            raise ValueError(f"users and items must have the same shape, got {users.shape} and {items.shape}")
        for name, ids, n in (("users", users, self.user_factors_.shape[0]),
                             ("items", items, self.item_factors_.shape[0])):
            if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= n):
                raise ValueError(f"{name} must be integer ids in [0, {n})")
        flat = self._predict_pairs(users.ravel().astype(np.int64), items.ravel().astype(np.int64))
        return flat.reshape(users.shape)

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Float64 scores of (user, item) pairs (compiled, no gathered factor copies)."""
        with kernel_workers(self.num_threads or 1):
            out = pair_scores(self.user_factors_, self.item_factors_, users, items)
        if self.use_bias:
            out += self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]
        return out

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write the model to ``path`` (``.npz``, no pickles): factors, biases, parameters, history."""
        self._check_fitted("user_factors_", "save")
        write_model(self, path)

    @classmethod
    def load(cls, path: Any) -> ALS:
        """Read a model written by :meth:`save` (files of older versions included); a bad file raises
        ``ModelFileError`` (a ``ValueError``) naming the file and the entry or key (format tag, shapes,
        dtypes and metadata are checked; nothing is unpickled)."""
        return read_model(cls, path)

    # -- helpers --------------------------------------------------------------------------
    def _init_factors(self, shape: tuple[int, int]) -> None:
        rng = np.random.default_rng(self.random_state)
        self._set_fitted((rng.random((shape[0], self.factors)) * 0.01).astype(self._dtype),
                         (rng.random((shape[1], self.factors)) * 0.01).astype(self._dtype))
        if self.use_bias:
            self.user_bias_ = np.zeros(shape[0], self._dtype)
            self.item_bias_ = np.zeros(shape[1], self._dtype)

    def _check_factors(self, shape: tuple[int, int]) -> None:
        if not self.is_fitted:
            raise NotFittedError("this ALS instance has no factors yet; fit it or use ALS.from_factors")
        if self.user_factors_.shape[0] != shape[0] or self.item_factors_.shape[0] != shape[1]:
            raise ValueError(
                f"C has shape {shape} but the model has {self.user_factors_.shape[0]} users and "
                f"{self.item_factors_.shape[0]} items"
            )

    def _threads(self):
        """Single-threaded BLAS while fitting when ``num_threads`` is set (the batches run in parallel)."""
        from contextlib import nullcontext

        if self.num_threads is None:
            return nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")


def _pairs_matrix(pairs: np.ndarray, shape: tuple[int, int]):
    return sp.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=shape)


def _weighted_mean(cells: Cells) -> float:
    weight = cells.conf.sum()
    return float(cells.conf @ cells.target / weight) if weight > 0 else 0.0


def _bias(value: Any, n: int, name: str, dtype: np.dtype) -> np.ndarray:
    if value is None:
        return np.zeros(n, dtype)
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite array of shape ({n},), got {arr.shape}")
    return arr.copy()


def _check_iterations(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _check_tol(tol: Any) -> None:
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
