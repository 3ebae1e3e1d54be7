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

    forgotten, record = model.forget(C, users=[u], tolerance=1e-3)   # record.certified: gap <= tolerance

This module holds the estimator's API; its sweeps live in :mod:`.sweeps` (:class:`SweepEngine`)
and its forgetting in :mod:`.forgetting` (:class:`ForgettingMethods`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..base import Estimator, NotFittedError
from .cells import build_cells, weighted_mean
from .deletions import pairs_digest, stored_pairs
from .forgetting import ForgettingMethods
from .io import read_model, write_model
from .options import DEFAULT_CHUNK_BYTES, FEEDBACKS, SOLVERS, check_choice, check_iterations, check_tol
from .scores import pair_scores
from .sweeps import SweepEngine
from .threads import kernel_workers
from .weighting import Weighting, as_weighting

log = logging.getLogger(__name__)

#: ``acceleration`` of :class:`ALS`: plain sweeps (None), safeguarded Anderson acceleration of the
#: item side, balanced sweeps with guarded Anderson over users and items, or ALS-NCG.
ACCELERATIONS = (None, "anderson", "balanced_anderson", "ncg")


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
class ALS(ForgettingMethods, SweepEngine, Estimator):
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
    tol : :meth:`fit` stops once a sweep changes the objective by a relative amount below ``tol``
        (with ``acceleration``, once an accelerated iteration does and then one plain sweep, counted
        in ``history_`` with ``confirming=1``, confirms it).
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
        together, and the extrapolation is kept only if its objective is at most the sweep's;
        a rejected one is replaced by the sweep's step stretched, under the same guard (fewer
        sweeps still). Or ``"ncg"`` (ALS-NCG, :mod:`.ncg`): nonlinear conjugate gradients
        preconditioned by the balanced sweep, the step chosen by an exact search over the plane of
        the sweep's step and the last step (the objective is a quartic there), kept only if its
        objective is at most the balanced sweep's; the fewest
        sweep equivalents to the fixed point on ml-100k at 100 factors (``docs/benchmarks.md``).
        Applies to :meth:`fit` and :meth:`unlearn`.
    anderson_memory : sweeps remembered by the Anderson extrapolation.
    anderson_mixing : the extrapolation's mixing parameter ``beta`` (:mod:`.anderson`; 1: the plain
        combination of images, > 1: over-relaxed, which the slow drift of ALS at small
        regularization rewards; the safeguard keeps the objective monotone either way).
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
        anderson_mixing: float = 1.0,
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
        self.anderson_mixing = anderson_mixing

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
        check_iterations(self.iterations, "iterations")
        check_tol(self.tol)
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
        mixing = self.anderson_mixing
        if isinstance(mixing, bool) or not isinstance(mixing, (int, float, np.number)) or not np.isfinite(mixing) \
                or mixing <= 0:
            raise ValueError(f"anderson_mixing must be a finite number > 0, got {mixing!r}")
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
            self.global_mean_ = weighted_mean(cells)
        with self._threads():
            self._iterate(cells, int(self.iterations), float(self.tol), callback, show_progress, desc="ALS fit")
        sweeps = [r["seconds"] for r in self.history_ if r.get("phase") == "sweep"]
        self.train_iterations_ = len(sweeps)
        self.sweep_seconds_ = float(np.mean(sweeps)) if sweeps else float("nan")
        return self

    # -- objective and prediction ---------------------------------------------------------
    def objective(self, C: Any, *, mask: Any = None, negatives: Any = None) -> float:
        """The training objective (float64) of the current factors on ``C`` (+ mask/negatives);
        with a ``weighting``, ``C`` holds interactions and is weighted first."""
        cells = build_cells(self._confidences(C), self.feedback, mask, negatives)
        self._check_factors(cells.shape)
        return self._objective(cells)

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



def _bias(value: Any, n: int, name: str, dtype: np.dtype) -> np.ndarray:
    if value is None:
        return np.zeros(n, dtype)
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite array of shape ({n},), got {arr.shape}")
    return arr.copy()

