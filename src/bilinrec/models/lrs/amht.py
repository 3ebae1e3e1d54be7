"""AMHT-LRS: alternating minimisation with hard thresholding for low-rank + sparse users.

Model (Paper A, linear setting): user ``i`` has parameters ``theta_i = U w_i + b_i`` with a
shared orthonormal ``U`` (d x r), a user head ``w_i`` (r) and a user-specific ``b_i`` with at
most ``k`` non-zeros; sample ``j`` of user ``i`` is ``y_ij = <x_ij, theta_i> + noise``.

Only two quantities combine data of different users: the initialisation moment and the
U-step normal equations. They are built in :mod:`bilinrec.models.lrs.statistics` and combined by
an *aggregator* (the hook where the private variant, :mod:`bilinrec.models.lrs.dp_amht`, clips and
adds noise); each user's ``w_i`` and ``b_i`` are computed from that user's own data only
(:mod:`bilinrec.models.lrs.user_step`), which is what joint ("billboard") differential privacy needs.

Every per-user computation is batched: rows are sorted by user, per-user sums are sparse
indicator products, per-user Gram matrices are batched matmuls over users grouped by
sample count, and per-user solves are stacked ``(t, p, p)`` solves."""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..base import Estimator
from ..forgetting import ForgetRecord, Forgetting, check_forget_method
from .data import LRSData, _as_user_ids, prepare_data
from .forget import (
    GAP_MEASURE,
    clear_users,
    copy_heads,
    fixed_point_gap,
    refit_distances,
    remaining_samples,
)
from .statistics import SumAggregator
from .user_parameters import UserParameters
from .user_step import (
    fit_user_parameters,
    initial_subspace,
    keep_better_fit,
    residual_weights,
    solve_shared_factor,
)


# --------------------------------------------------------------------------------------
# Estimator
# --------------------------------------------------------------------------------------
@dataclass
class UserFit:
    """Parameters of one (new) user given the shared ``U``: ``theta = U w + b``."""

    w: np.ndarray
    b: np.ndarray
    theta: np.ndarray


class AMHTLRS(Estimator):
    """Low-rank + sparse per-user linear models by alternating minimisation with hard thresholding.

    Parameters
    ----------
    rank, sparsity:
        ``r`` (columns of the shared ``U``) and ``k`` (non-zeros of each ``b_i``; 0 gives AltMin).
    max_rounds, tol, min_loss:
        Stop after ``max_rounds`` rounds, when the training loss changes by less than ``tol``
        relative to the previous round, or when it falls below ``min_loss`` times the mean
        of ``y^2`` (a numerically exact fit; parameter errors are then about ``sqrt(min_loss)``).
    inner_iters:
        Hard-thresholding iterations per user and round (stops early once no support changes).
    step, step_scale:
        Gradient step of the thresholding: ``"inverse_count"`` (``step_scale / m_i``) or
        ``"spectral"`` (``step_scale / ||X_i||_2^2``, the conservative choice).
    threshold, threshold_init, threshold_decay:
        ``"topk"`` keeps the ``k`` largest magnitudes; ``"value"`` (the theory's schedule) also
        drops entries below ``threshold_init * threshold_decay**round`` (default initial value:
        the root mean square of ``y``).
    pursuit:
        ``"htp"`` (gradient step, top-``k``, refit) or ``"subspace"`` (subspace pursuit: refit
        on the support merged with the ``k`` largest off-support gradient entries, keep the
        ``k`` largest); see :func:`fit_user_parameters`.
    sample_splitting:
        ``None`` uses all samples every round; an integer ``K >= 2`` splits every user's samples
        into ``K`` disjoint folds: fold 0 for the initialisation, folds ``1..K-1`` in turn for
        the rounds; the final per-user fit uses all samples.
    restarts:
        Every round also fit each user from scratch (``b = 0``) and keep, per user, the fit
        with the smaller residual; lets users leave a wrong support found under an early ``U``.
    robust_cutoff:
        ``None`` weighs every user equally in the U step; a number ``c`` down-weights users
        whose mean squared residual exceeds ``c`` times the median (see :func:`residual_weights`).
        Off by default because the median combines all users' data outside the aggregator
        (not allowed under privacy); the synthetic experiments set 10.
    u_solver:
        ``"exact"`` (dense ``dr x dr`` normal equations) or ``"cg"`` (preconditioned conjugate
        gradients, matrix-free). Ignored when ``aggregator`` is given.
    aggregator:
        Combines the per-user shared statistics (see the module docstring); default
        ``SumAggregator(u_solver)``, plain sums (the initial moment from float32 block products;
        ``SumAggregator(u_solver, moment_precision="double")`` keeps it in float64).
    ridge:
        Relative ridge of the per-user solves (keeps users with few samples well posed).
    fixed_rounds:
        Data-independent control flow (what a private fit needs): run exactly ``max_rounds``
        rounds (``tol`` and ``min_loss`` are ignored), never abort on the data (users with
        fewer samples than ``rank + sparsity`` are fit with the per-user ridge instead of the
        identifiability check refusing the data set) and do not warn about users without
        samples (which user ids have data is itself private).
    random_state:
        Seed of the sample-splitting folds.
    callback:
        ``callback(U, W, B) -> dict`` called after every round's per-user step; its entries
        are added to ``history_`` (used to track errors against a known truth).
    """

    def __init__(
        self,
        rank: int,
        sparsity: int,
        *,
        max_rounds: int = 50,
        tol: float = 1e-6,
        min_loss: float = 1e-12,
        inner_iters: int = 10,
        step: str = "inverse_count",
        step_scale: float = 1.0,
        threshold: str = "topk",
        threshold_init: float | None = None,
        threshold_decay: float = 0.7,
        pursuit: str = "subspace",
        sample_splitting: int | None = None,
        restarts: bool = False,
        robust_cutoff: float | None = None,
        u_solver: str = "cg",
        aggregator=None,
        ridge: float = 1e-10,
        random_state: int | None = None,
        callback: Callable | None = None,
        fixed_rounds: bool = False,
    ) -> None:
        self.rank = rank
        self.sparsity = sparsity
        self.max_rounds = max_rounds
        self.tol = tol
        self.min_loss = min_loss
        self.inner_iters = inner_iters
        self.step = step
        self.step_scale = step_scale
        self.threshold = threshold
        self.threshold_init = threshold_init
        self.threshold_decay = threshold_decay
        self.pursuit = pursuit
        self.sample_splitting = sample_splitting
        self.restarts = restarts
        self.robust_cutoff = robust_cutoff
        self.u_solver = u_solver
        self.aggregator = aggregator
        self.ridge = ridge
        self.random_state = random_state
        self.callback = callback
        self.fixed_rounds = fixed_rounds

    # -- validation ------------------------------------------------------------------
    def _check_params(self, dim: int) -> None:
        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if not is_int(self.rank) or not 1 <= self.rank <= dim:
            raise ValueError(f"rank must be an integer in [1, d={dim}], got {self.rank!r}")
        if not is_int(self.sparsity) or not 0 <= self.sparsity <= dim:
            raise ValueError(f"sparsity must be an integer in [0, d={dim}], got {self.sparsity!r}")
        if not is_int(self.max_rounds) or self.max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer, got {self.max_rounds!r}")
        if not is_int(self.inner_iters) or self.inner_iters < 1:
            raise ValueError(f"inner_iters must be a positive integer, got {self.inner_iters!r}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be non-negative, got {self.tol!r}")
        if not self.min_loss >= 0:
            raise ValueError(f"min_loss must be non-negative, got {self.min_loss!r}")
        if self.step not in ("inverse_count", "spectral"):
            raise ValueError(f"step must be 'inverse_count' or 'spectral', got {self.step!r}")
        if not self.step_scale > 0:
            raise ValueError(f"step_scale must be positive, got {self.step_scale!r}")
        if self.threshold not in ("topk", "value"):
            raise ValueError(f"threshold must be 'topk' or 'value', got {self.threshold!r}")
        if not 0 < self.threshold_decay <= 1:
            raise ValueError(f"threshold_decay must be in (0, 1], got {self.threshold_decay!r}")
        if self.pursuit not in ("htp", "subspace"):
            raise ValueError(f"pursuit must be 'htp' or 'subspace', got {self.pursuit!r}")
        if self.sample_splitting is not None and (
            not is_int(self.sample_splitting) or self.sample_splitting < 2
        ):
            raise ValueError(
                f"sample_splitting must be None or an integer >= 2, got {self.sample_splitting!r}"
            )
        if self.robust_cutoff is not None and not self.robust_cutoff > 0:
            raise ValueError(f"robust_cutoff must be None or positive, got {self.robust_cutoff!r}")
        if self.u_solver not in ("exact", "cg"):
            raise ValueError(f"u_solver must be 'exact' or 'cg', got {self.u_solver!r}")
        if not self.ridge >= 0:
            raise ValueError(f"ridge must be non-negative, got {self.ridge!r}")

    def _check_data(self, data: LRSData) -> None:
        unknowns = self.rank + self.sparsity
        if data.counts.max() < unknowns:
            raise ValueError(
                f"every user has fewer samples (at most {data.counts.max()}) than unknowns per "
                f"user (rank + sparsity = {unknowns}); X/users cannot identify the model"
            )

    # -- fitting ---------------------------------------------------------------------
    def _folds(self, data: LRSData) -> list[LRSData]:
        K = self.sample_splitting
        rng = np.random.default_rng(self.random_state)
        position = np.arange(data.n_samples) - data.indptr[data.row_user]
        shift = rng.integers(0, K, size=data.n_users)[data.row_user]
        permuted = rng.permutation(data.n_samples)
        # a random but balanced fold per user: position within the user, shuffled per user
        rank_in_user = np.empty(data.n_samples, dtype=np.int64)
        order = np.lexsort((permuted, data.row_user))
        rank_in_user[order] = position
        fold = (rank_in_user + shift) % K
        return [data.subset_rows(fold == f) for f in range(K)]

    def fit(self, X, y, users, n_users: int | None = None) -> "AMHTLRS":
        """Learn ``U_``, ``W_`` and ``B_`` from stacked samples ``X`` (N, d), ``y`` (N,) and
        integer ``users`` (N,). Users in ``range(n_users)`` without samples get ``w = b = 0``
        and are listed in ``empty_users_`` (with a warning)."""
        data = prepare_data(X, y, users, n_users)
        self._check_params(data.dim)
        if not self.fixed_rounds:
            self._check_data(data)
        self.n_features_in_ = data.dim
        self.n_users_ = data.n_users
        self.empty_users_ = np.flatnonzero(data.counts == 0)
        if len(self.empty_users_) and not self.fixed_rounds:
            warnings.warn(
                f"{len(self.empty_users_)} user(s) have no samples (e.g. {self.empty_users_[:5].tolist()}); "
                "their parameters are zero (see empty_users_)",
                stacklevel=2,
            )
        aggregator = self.aggregator or SumAggregator(self.u_solver)
        if self.sample_splitting:
            folds = self._folds(data)
            init_data, round_data = folds[0], folds[1:]
        else:
            init_data, round_data = data, [data]
        threshold0 = self.threshold_init
        if self.threshold == "value" and threshold0 is None:
            threshold0 = float(np.sqrt(np.mean(data.y**2)))

        start = time.perf_counter()
        U = initial_subspace(init_data, self.rank, aggregator)
        U, heads, residual, self.history_, converged = self._run_rounds(
            data, round_data, U, None, aggregator, threshold0, self.max_rounds, self.tol, start=start)
        self.n_rounds_ = len(self.history_)
        self.converged_ = converged
        self.fit_seconds_ = time.perf_counter() - start
        self.train_loss_ = float(np.mean(residual**2))
        self.forgotten_users_ = np.zeros(0, dtype=np.int64)
        self.forgotten_samples_ = np.zeros(0, dtype=np.int64)
        # the sorted data's (N,) arrays and the residual go before the fitted (t, d) arrays are made
        del data, init_data, round_data, residual
        self._set_fitted(U, heads)
        return self

    def _run_rounds(self, data: LRSData, round_data: list[LRSData], U: np.ndarray, heads: UserParameters | None,
                    aggregator, threshold0: float | None, max_rounds: int, tol: float, *,
                    first_round: int = 0, start: float) -> tuple:
        """The rounds of a fit (per-user step, stopping test, U step) from ``(U, heads)``: shared
        by :meth:`fit` and :meth:`forget`, so that a warm-started re-fit obeys the same stopping
        rule as a fit from scratch. Returns ``U, heads, residual, history, converged``; the
        heads always belong to the returned ``U`` (a final per-user step follows an unconverged
        run or sample splitting)."""
        history = []
        previous_loss = np.nan  # no comparison in the first round
        converged = False
        # mean y^2 of every batch, once (not an (N,) temporary next to the residual every round)
        mean_y2 = [np.mean(batch.y**2) for batch in round_data]
        # the plain sum's U step can take its right-hand side from the per-user step's pass over X
        normal_rhs = isinstance(aggregator, SumAggregator) and self.robust_cutoff is None
        for rnd in range(first_round, first_round + max_rounds):
            batch = round_data[rnd % len(round_data)]
            batch_mean_y2 = mean_y2[rnd % len(round_data)]
            heads, residual, inner, products = self._user_step(batch, U, heads, threshold0, rnd, normal_rhs)
            loss = float(np.mean(residual**2))
            record = {"round": rnd, "loss": loss, "inner_iterations": inner,
                      "seconds": time.perf_counter() - start}
            if self.callback is not None:
                record.update(self.callback(U, heads.W, heads.sparse_matrix(data.dim)))
            history.append(record)
            exact_fit = loss <= self.min_loss * batch_mean_y2
            if not self.fixed_rounds and (exact_fit or abs(previous_loss - loss) <= tol * previous_loss):
                converged = True
                break
            previous_loss = loss
            weights = None
            if self.robust_cutoff is not None:
                weights = residual_weights(batch, residual, self.robust_cutoff)
            # an inexact U step suffices while the model error is large: solve to a tenth of
            # the typical (median over users) relative residual, within [1e-12, 1e-4]; the
            # median ignores users stuck on a wrong support (only the CG solver uses it)
            user_mse = batch.segment_sum(residual**2)[batch.counts > 0] / batch.counts[batch.counts > 0]
            with np.errstate(divide="ignore", invalid="ignore"):  # all-zero y (fixed_rounds only)
                cg_tol = float(np.clip(0.1 * np.sqrt(np.median(user_mse) / batch_mean_y2), 1e-12, 1e-4))
            cg_tol = cg_tol if np.isfinite(cg_tol) else 1e-4
            # the residual at U gives CG's first residual in the rhs pass (z itself is never stored)
            U, heads.W = solve_shared_factor(batch, heads, aggregator, U, weights, cg_tol=cg_tol, residual=residual,
                                             products=products)
            residual = products = None  # the next per-user step makes new ones: not two (N,) arrays at once
        if self.sample_splitting or not converged:
            heads, residual, _ = fit_user_parameters(
                data, U, self.sparsity, heads, **self._user_options(threshold0, first_round + len(history))
            )
        return U, heads, residual, history, converged

    def _user_step(self, data: LRSData, U: np.ndarray, heads: UserParameters | None, threshold0: float | None,
                   rnd: int, normal_rhs: bool = False) -> tuple:
        """Every user's step of round ``rnd`` (with ``restarts``, the better of the warm and the
        cold fit per user): ``(heads, residual, inner_iterations, products)``, ``products`` the U
        step's right-hand side and start residual when ``normal_rhs`` and available, else ``None``
        (see :func:`fit_user_parameters`)."""
        options = self._user_options(threshold0, rnd)
        if self.restarts and heads is not None and self.sparsity:
            fitted = keep_better_fit(data, fit_user_parameters(data, U, self.sparsity, heads, **options),
                                     fit_user_parameters(data, U, self.sparsity, None, **options))
            return (*fitted, None)
        fitted = fit_user_parameters(data, U, self.sparsity, heads, normal_rhs=normal_rhs, **options)
        return fitted if normal_rhs else (*fitted, None)

    def _user_options(self, threshold0: float | None, rnd: int) -> dict:
        """Options of the per-user step in round ``rnd`` (``threshold0=None``: top-k only)."""
        threshold = None
        if self.threshold == "value" and threshold0 is not None:
            threshold = threshold0 * self.threshold_decay**rnd
        return dict(inner_iters=self.inner_iters, step=self.step, step_scale=self.step_scale,
                    threshold=threshold, pursuit=self.pursuit, ridge=self.ridge)

    def _set_fitted(self, U: np.ndarray, heads: UserParameters) -> None:
        self._heads = heads
        self.U_ = U
        self.W_ = heads.W
        self.B_ = heads.sparse_matrix(U.shape[0])
        self._theta = None  # theta_ of these parameters is formed when first read

    @property
    def theta_(self) -> np.ndarray:
        """Per-user parameters ``W_ U_^T + B_``, (t, d): formed on first access and then kept, so
        that a fit does not hold this dense array (80 MB at t = 1e5, d = 100) next to its data."""
        if getattr(self, "_theta", None) is None:
            if not hasattr(self, "U_"):
                raise AttributeError("theta_ (the model is not fitted yet)")
            theta = self.W_ @ self.U_.T
            entries = self.B_.tocoo()  # distinct (row, column) pairs: one in-place add, no dense B
            theta[entries.row, entries.col] += entries.data
            self._theta = theta
        return self._theta

    # -- using a fitted model --------------------------------------------------------
    def predict(self, X, users) -> np.ndarray:
        """Predictions ``<x_j, theta_{users_j}>`` for samples of known users."""
        self._check_fitted("U_", "predict")
        X = np.asarray(X, dtype=np.float64)
        users = _as_user_ids(users)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (N, {self.n_features_in_}), got {X.shape}")
        if len(users) != len(X):
            raise ValueError(f"X and users must have the same length, got {len(X)} and {len(users)}")
        if len(users) and users.max() >= self.n_users_:
            raise ValueError(f"users contains id {users.max()} but the model has {self.n_users_} users")
        forgotten = users[np.isin(users, getattr(self, "forgotten_users_", ()))]
        if forgotten.size:
            raise ValueError(f"users contains forgotten user {forgotten[0]}: its parameters were deleted by "
                             "forget (fit_user gives a departed user who returns a fresh model)")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values")
        return np.einsum("nd,nd->n", X, self.theta_[users])

    def fit_user(self, X_u, y_u) -> UserFit:
        """Fit a new user's ``(w, b)`` from its samples given the learned ``U_`` (the support
        is the top-``k`` one; no value threshold)."""
        self._check_fitted("U_", "fit_user")
        X_u = np.asarray(X_u, dtype=np.float64)
        if X_u.ndim != 2 or X_u.shape[1] != self.n_features_in_:
            raise ValueError(f"X_u must have shape (m, {self.n_features_in_}), got {X_u.shape}")
        data = prepare_data(X_u, y_u, np.zeros(len(X_u), dtype=np.int64))
        heads, _, _ = fit_user_parameters(
            data, self.U_, self.sparsity, **self._user_options(None, 0)
        )
        b = heads.dense_sparse_part(self.n_features_in_)[0]
        w = heads.W[0]
        return UserFit(w=w, b=b, theta=self.U_ @ w + b)

    # -- persistence -----------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (``.npz`` with JSON metadata, no pickles; see
        :mod:`bilinrec.models.lrs.io`)."""
        from .io import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path) -> AMHTLRS:
        """Read a model written by :meth:`save`; a bad file raises ``ModelFileError`` (a
        ``ValueError``) naming the file and the entry."""
        from .io import load_model

        return load_model(cls, path)

    # -- forgetting ------------------------------------------------------------------
    def _check_forgettable(self) -> None:
        """Refuse settings under which the retraining iteration has no fixed point to reach."""
        self._check_fitted("U_", "forget")
        if self.sample_splitting:
            raise ValueError("sample_splitting: the rounds cycle through sample folds, so the retraining "
                             "iteration has no fixed point; forget needs sample_splitting=None (or refit)")
        if self.threshold == "value":
            raise ValueError("threshold='value' changes the thresholding every round, so the retraining "
                             "iteration has no fixed point; forget needs threshold='topk' (or refit)")
        if self.aggregator is not None and not isinstance(self.aggregator, SumAggregator):
            raise ValueError("forget needs the exact (non-private) aggregator; a private model forgets "
                             "through DPAMHTLRS.forget")

    def _training_data(self, X, y, users) -> LRSData:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (N, {self.n_features_in_}) (the training data), got {X.shape}")
        users = _as_user_ids(users)
        if len(users) and users.max() >= self.n_users_:
            raise ValueError(f"users contains id {users.max()} but the model has {self.n_users_} users")
        return prepare_data(X, y, users, self.n_users_)

    def fixed_point_gap(self, X, y, users) -> float:
        """How far the model is from a fixed point of the retraining iteration on ``X, y, users``:
        the largest relative change of ``U``, ``W``, ``B`` in one further exact round, over the
        users with samples (see :mod:`bilinrec.models.lrs.forget`)."""
        self._check_forgettable()
        return fixed_point_gap(self, self._training_data(X, y, users), self.U_, self._heads)

    def forget(self, X, y, users, *, forget_users=None, forget_samples=None, method: str = "exact",
               max_rounds: int | None = None, tol: float | None = None, compare_refit: bool = False) -> Forgetting:
        """Forget whole users and/or single samples exactly; ``self`` is left unchanged.

        ``X, y, users`` are the original training data (as passed to :meth:`fit`; samples
        forgotten earlier, listed in ``forgotten_samples_`` and ``forgotten_users_``, stay
        forgotten). ``forget_users``: user ids whose every sample goes; ``forget_samples``: a
        boolean mask over the rows of ``X`` or an array of row indices. The rounds of
        :meth:`fit` (same per-user step, U step and stopping rule: ``tol`` and ``max_rounds``,
        by default the model's) run on the remaining data, warm-started from the current
        ``U``, ``W``, ``B``. A user left without samples is deleted: its row of ``W_``,
        ``B_`` and ``theta_`` is zero, it is listed in ``forgotten_users_``, and ``predict``
        refuses it. The record's ``gap`` is the fixed-point gap reached (``gap_measure``).

        The problem has several fixed points (hard thresholding), so *exact* means a fixed point
        of the retraining iteration on the remaining data, reached warm-started: not necessarily
        the one a refit from scratch reaches. ``compare_refit=True`` also runs that refit (not
        part of ``seconds``) and adds to the details ``refit_distance`` (the new model's
        distance to it), ``control_refit_distance`` (the untouched model's) and
        ``refit_measure``, ``refit_seconds`` (see :func:`~bilinrec.models.lrs.forget.refit_distances`).
        A selection with nothing new to forget returns an unchanged copy (``records`` 0).
        """
        check_forget_method(method, ("exact",))
        self._check_forgettable()
        start = time.perf_counter()
        X, sample_users, new_users, keep, earlier, n_new = remaining_samples(self, X, users, forget_users,
                                                                              forget_samples)
        y = np.asarray(y, dtype=np.float64)
        data = self._training_data(X[keep], y[keep], sample_users[keep])
        if not self.fixed_rounds:
            self._check_data(data)
        max_rounds = self.max_rounds if max_rounds is None else max_rounds
        tol = self.tol if tol is None else tol
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, (int, np.integer)) or max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer, got {max_rounds!r}")
        if not tol >= 0:
            raise ValueError(f"tol must be non-negative, got {tol!r}")
        if n_new == 0 and np.setdiff1d(new_users, self.forgotten_users_).size == 0:
            model = copy.copy(self)
            model._set_fitted(self.U_.copy(), copy_heads(self._heads))
            record = ForgetRecord(
                model="amht_lrs", method="exact", users=[], records=0,
                gap=fixed_point_gap(self, data, self.U_, self._heads), gap_measure=GAP_MEASURE,
                seconds=time.perf_counter() - start,
                details={"requested_users": new_users.tolist(),
                         "note": "nothing new to forget: the model is unchanged"})
            return Forgetting(model, record)

        heads = copy_heads(self._heads)
        gone = np.flatnonzero(data.counts == 0)
        clear_users(heads, gone)
        aggregator = self.aggregator or SumAggregator(self.u_solver)
        U, heads, residual, history, converged = self._run_rounds(
            data, [data], self.U_.copy(), heads, aggregator, None, max_rounds, tol, start=start)
        clear_users(heads, gone)
        forgotten = np.union1d(np.union1d(self.forgotten_users_, new_users), np.setdiff1d(gone, self.empty_users_))
        model = copy.copy(self)
        model.history_ = history
        model.n_rounds_ = len(history)
        model.converged_ = converged
        model.train_loss_ = float(np.mean(residual**2))
        model.fit_seconds_ = time.perf_counter() - start
        model.empty_users_ = np.setdiff1d(self.empty_users_, forgotten)
        model.forgotten_users_ = forgotten
        model.forgotten_samples_ = np.flatnonzero(~keep & ~np.isin(sample_users, forgotten))
        model._set_fitted(U, heads)
        seconds = time.perf_counter() - start
        gap = fixed_point_gap(model, data, U, heads)
        record = ForgetRecord(
            model="amht_lrs", method="exact", users=np.setdiff1d(forgotten, self.forgotten_users_).tolist(),
            records=n_new, gap=gap, gap_measure=GAP_MEASURE, bound=None,
            rows_touched=int(np.sum(data.counts > 0)), seconds=seconds,
            details={"rounds": len(history), "converged": converged, "tol": float(tol),
                     "max_rounds": int(max_rounds), "requested_users": new_users.tolist(),
                     "gap_seconds": time.perf_counter() - start - seconds},
        )
        if compare_refit:
            record.details.update(refit_distances(self, model, X[keep], y[keep], sample_users[keep],
                                                  max_rounds=int(max_rounds), tol=float(tol)))
        return Forgetting(model, record)
