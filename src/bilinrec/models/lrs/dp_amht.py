"""DP-AMHT-LRS: AMHT-LRS whose shared statistics are released with user-level (joint) DP
(privacy model and release modes: :mod:`.release`)."""

from __future__ import annotations

import copy
import math
import time
import warnings

import numpy as np

from ...seeds import derive_seed
from ..base import Estimator
from ..forgetting import ForgetRecord, Forgetting, check_forget_method
from .accounting import (
    PrivacyBudget,
    _check_accountant,
    _check_sampling_rate,
    calibrate_noise_multiplier,
    group_privacy,
    training_epsilon,
)
from .amht import AMHTLRS, UserFit
from .data import _as_user_ids, count_users, prepare_data
from .forget import clear_users, copy_heads, remaining_samples
from .mechanism import ClipBounds, GaussianAggregator
from .release import NON_PRIVATE, RELEASE_LABELS, check_privacy, check_release_mode, noise_generator
from .user_step import fit_user_parameters


#: Attributes of the inner AMHTLRS that combine all users' data without noise (or hold the
#: noise generator, whose state would let anyone recompute the noise): not kept by a private fit.
_UNRELEASED = ("history_", "train_loss_", "converged_", "empty_users_", "fit_seconds_")


def _strip_unreleased(model: AMHTLRS) -> None:
    for name in _UNRELEASED:
        model.__dict__.pop(name, None)
    # the aggregator holds the noise generator and the unnoised clipped fractions
    model.set_params(aggregator=None, callback=None)


class DPAMHTLRS(Estimator):
    """AMHT-LRS whose shared statistics are released with user-level (joint) DP.

    Runs :class:`bilinrec.models.lrs.AMHTLRS` with a :class:`GaussianAggregator`: the moment
    matrix and, in each of ``max_rounds`` rounds, the U-step normal equations are clipped per
    user and noised. A private fit always runs exactly ``max_rounds`` rounds (no loss-based
    stopping, which would look at all users' data), so there are ``1 + max_rounds`` releases.
    The noise multiplier is calibrated so that their composition meets ``privacy``.
    ``sparsity=0`` is the DP low-rank-only baseline (private AltMin).

    ``privacy=None`` or ``epsilon=inf`` runs the non-private AMHTLRS (no clipping, no noise,
    its own stopping rule) exactly as ``AMHTLRS(rank, sparsity, max_rounds=max_rounds,
    random_state=random_state, **amht_options)`` would.

    ``mode="private"`` (default) is a genuine private release (noise and Poisson samples from
    OS entropy; ``random_state`` only seeds the sample-splitting folds); ``mode="simulation"``
    with ``noise_seed`` gives reproducible noise and is *not* a private release (see
    :mod:`.release`). Both run exactly ``max_rounds`` rounds and accept users with fewer samples
    than ``rank + sparsity`` (no data-dependent stop or abort).

    Fitted attributes: ``U_`` (released), ``W_``, ``B_``, ``theta_`` (per-user, each user's
    own and never released), ``epsilon_`` (achieved, from the accountant), ``delta_``,
    ``noise_multiplier_`` (noise standard deviation / clip bound of every statistic),
    ``n_releases_``, ``release_`` (the mode's label). Simulation fits (and non-private ones)
    also keep the unnoised cross-user diagnostics ``clipped_fraction_`` (per release, the
    fraction of users whose contribution was scaled down) and ``history_`` (per-round training
    loss); a private fit has neither (accessing them raises ``AttributeError``).
    """

    def __init__(
        self,
        rank: int,
        sparsity: int,
        *,
        privacy: PrivacyBudget | None = None,
        clip: ClipBounds | None = None,
        max_rounds: int = 10,
        sampling_rate: float = 1.0,
        ridge_factor: float = 1.0,
        accountant: str = "pld",
        random_state: int | None = None,
        amht_options: dict | None = None,
        mode: str = "private",
        noise_seed: int | None = None,
    ) -> None:
        self.rank = rank
        self.sparsity = sparsity
        self.privacy = privacy
        self.clip = clip
        self.max_rounds = max_rounds
        self.sampling_rate = sampling_rate
        self.ridge_factor = ridge_factor
        self.accountant = accountant
        self.random_state = random_state
        self.amht_options = amht_options
        self.mode = mode
        self.noise_seed = noise_seed

    def release_schedule(self) -> list[int]:
        """Statistics per release: the moment matrix, then (A, b) in every round."""
        return [1] + [2] * int(self.max_rounds)

    def mechanism(self, noise_scale: float = 1.0) -> GaussianAggregator:
        """The Gaussian mechanism one fit releases its statistics through (clip bounds, calibrated
        noise multiplier, a noise generator of the release mode: fresh OS entropy when private).

        ``noise_scale`` multiplies the noise multiplier; a value below 1 builds a mechanism with
        too little noise for the budget, only for an audit's planted-broken controls."""
        privacy = check_privacy(self.privacy, self.clip)
        if not privacy.is_private:
            raise ValueError("DPAMHTLRS.mechanism needs a finite epsilon (a non-private fit adds no noise)")
        if isinstance(noise_scale, bool) or not (isinstance(noise_scale, (int, float)) and noise_scale > 0):
            raise ValueError(f"noise_scale must be a positive number, got {noise_scale!r}")
        sigma = calibrate_noise_multiplier(privacy, self.release_schedule(), self.sampling_rate, self.accountant)
        return GaussianAggregator(noise_scale * sigma, self.clip, noise_generator(self.mode, self.noise_seed),
                                  self.sampling_rate, self.ridge_factor)

    def _inner_model(self, privacy: PrivacyBudget) -> tuple[AMHTLRS, GaussianAggregator | None]:
        options = dict(self.amht_options or {})
        for reserved in ("rank", "sparsity", "max_rounds", "random_state", "aggregator", "fixed_rounds"):
            if reserved in options:
                raise ValueError(f"amht_options must not set {reserved!r}; it is a DPAMHTLRS parameter")
        common = dict(max_rounds=self.max_rounds, random_state=self.random_state)
        if not privacy.is_private:
            return AMHTLRS(self.rank, self.sparsity, **common, **options), None
        # Options that would combine users' data outside the released statistics.
        if options.get("threshold") == "value" and options.get("threshold_init") is None:
            raise ValueError(
                "threshold='value' needs a public threshold_init under privacy (the default "
                "is the root mean square of all users' y)"
            )
        if options.get("robust_cutoff") is not None:
            raise ValueError("robust_cutoff must be None under privacy (it uses the median over users)")
        for stopping in ("tol", "min_loss"):
            if stopping in options:
                raise ValueError(f"amht_options must not set {stopping!r}: a private fit runs exactly max_rounds rounds")
        if self.mode == "private" and options.get("callback") is not None:
            raise ValueError("amht_options must not set a callback in mode='private' (it sees every user's parameters)")
        aggregator = self.mechanism()
        # exactly max_rounds rounds, no identifiability abort: control flow independent of the data
        return AMHTLRS(self.rank, self.sparsity, aggregator=aggregator, fixed_rounds=True, **common, **options), aggregator

    def fit(self, X, y, users, n_users: int | None = None) -> "DPAMHTLRS":
        """Fit on stacked samples ``X`` (N, d), ``y`` (N,) of integer ``users`` (N,)."""
        privacy = check_privacy(self.privacy, self.clip)
        _check_accountant(self.accountant)
        _check_sampling_rate(self.sampling_rate)
        if isinstance(self.max_rounds, bool) or not isinstance(self.max_rounds, (int, np.integer)) or self.max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer, got {self.max_rounds!r}")
        if not self.ridge_factor >= 0:
            raise ValueError(f"ridge_factor must be >= 0, got {self.ridge_factor}")
        check_release_mode(self.mode, self.noise_seed)
        users = _as_user_ids(users)  # clear errors for bad ids before anything else
        t = count_users(users, len(users), n_users)
        if privacy.is_private:
            privacy.check_users(t)
        for name in ("model_", "clipped_fraction_"):  # nothing of a previous fit survives a refit
            self.__dict__.pop(name, None)
        model, aggregator = self._inner_model(privacy)
        if aggregator is not None:
            # accounted before the fit (a function of the calibrated noise alone): the accountant's
            # temporaries then do not come on top of the memory the fit leaves behind
            epsilon = training_epsilon(aggregator.noise_multiplier, self.release_schedule(), self.sampling_rate,
                                       privacy.delta, self.accountant)
        model.fit(X, y, users, n_users=n_users)
        if aggregator is None:
            self.model_ = model
            self.noise_multiplier_ = 0.0
            self.epsilon_, self.delta_ = math.inf, 0.0
            self.n_releases_ = 1 + model.n_rounds_
            self.clipped_fraction_ = []
            self.release_ = NON_PRIVATE
            return self
        self.n_releases_ = len(aggregator.clipped_fraction_)
        if self.n_releases_ != len(self.release_schedule()):
            warnings.warn(
                f"the fit released {self.n_releases_} statistics groups instead of the planned "
                f"{len(self.release_schedule())}; epsilon_ is that of the planned releases (an upper bound)",
                RuntimeWarning,
                stacklevel=2,
            )
        self.noise_multiplier_ = aggregator.noise_multiplier
        self.delta_ = privacy.delta
        self.epsilon_ = epsilon
        self.release_ = RELEASE_LABELS[self.mode]
        if self.mode == "simulation":
            self.clipped_fraction_ = aggregator.clipped_fraction_
        else:
            _strip_unreleased(model)
        self.model_ = model
        return self

    # -- fitted state, delegated to the inner estimator ---------------------------------
    def _fitted(self, action: str = "using it") -> AMHTLRS:
        self._check_fitted("model_", action)
        return self.model_

    @property
    def U_(self) -> np.ndarray:
        return self._fitted().U_

    @property
    def W_(self) -> np.ndarray:
        return self._fitted().W_

    @property
    def B_(self):
        return self._fitted().B_

    @property
    def theta_(self) -> np.ndarray:
        return self._fitted().theta_

    @property
    def history_(self) -> list[dict]:
        model = self._fitted()
        if not hasattr(model, "history_"):
            raise AttributeError(
                "history_ (the training loss of all users per round) is not part of a private release; "
                "fit with mode='simulation' for diagnostics"
            )
        return model.history_

    def predict(self, X, users) -> np.ndarray:
        """Predictions ``<x_j, theta_{users_j}>`` for samples of known users."""
        return self._fitted("predict").predict(X, users)

    def fit_user(self, X_u, y_u) -> UserFit:
        """A new user's ``(w, b)`` from its own samples and the released ``U_`` (no privacy cost)."""
        return self._fitted("fit_user").fit_user(X_u, y_u)

    # -- forgetting ----------------------------------------------------------------------
    def _forgotten_group(self, sample_users: np.ndarray, counts: np.ndarray, forgotten: np.ndarray):
        """The guarantee of the kept ``U_`` for everyone forgotten since the fit (``forgotten``
        users, and users whose ``counts`` of remaining samples fell): ``(n, group)``, the number
        of users whose data differ and a :class:`GroupPrivacy` whose ``size`` counts
        add/remove-one-user steps from the training data to the remaining data (a deleted user
        is one step; a user who lost some samples two: removed, then added back with the rest)."""
        original = np.bincount(sample_users, minlength=counts.size)
        deleted = int(np.sum(original[forgotten] > 0))  # a user without samples contributed nothing
        reduced = int(np.sum((counts > 0) & (counts < original)))
        return deleted + reduced, group_privacy(self.epsilon_, self.delta_, self.noise_multiplier_,
                                                self.release_schedule(), deleted + 2 * reduced)

    def forget(self, X, y, users, *, forget_users=None, forget_samples=None, method: str = "dp") -> Forgetting:
        """Forget whole users and/or single samples; ``self`` is left unchanged.

        ``X, y, users``: the original training data; ``forget_users`` / ``forget_samples`` as in
        :meth:`AMHTLRS.forget`. ``method="dp"`` keeps the released ``U_`` (bit-identical): by the
        joint-DP guarantee of the fit it is already (``epsilon_``, ``delta_``)-indistinguishable
        from a ``U`` trained without any one departing user. A departing user's own ``(w_i, b_i)``
        is deleted (row zero, ``predict`` refuses it); a user who loses only some samples gets
        its ``(w_i, b_i)`` re-fitted from its remaining samples and the kept ``U_`` (as
        :meth:`fit_user` does; no privacy cost). No gap is measured (``gap`` is NaN). The
        record's details state the guarantee per user (``epsilon``, ``delta``) and for the group
        forgotten since the fit, whose every member the kept ``U_`` still saw: ``group_size``
        add/remove steps (``group_users`` users), ``group_epsilon`` at ``group_delta`` (the
        Gaussian mechanism's) and ``group_epsilon_generic``, ``group_delta_generic`` (group
        privacy); see :class:`~bilinrec.models.lrs.accounting.GroupPrivacy`.
        ``method="exact"`` is a fresh private fit on the remaining data: a new release with its
        own (``epsilon``, ``delta``) accounting; in ``mode="simulation"`` its ``noise_seed`` is
        derived from this model's and the forgotten selection. A non-private fit forgets
        exactly through :meth:`AMHTLRS.forget` (``method="exact"`` only). A selection with nothing
        new to forget returns an unchanged copy (``records`` 0; no new release).
        """
        inner = self._fitted("forget")
        check_forget_method(method, ("exact", "dp"))
        if self.release_ == NON_PRIVATE:
            if method == "dp":
                raise ValueError("method='dp' needs a private fit; this one is non-private (epsilon_ = inf): "
                                 "use method='exact'")
            model, record = inner.forget(X, y, users, forget_users=forget_users, forget_samples=forget_samples)
            out = copy.copy(self)
            out.model_ = model
            record.model = "dp_amht_lrs"
            return Forgetting(out, record)
        start = time.perf_counter()
        X, sample_users, new_users, keep, earlier, n_new = remaining_samples(inner, X, users, forget_users,
                                                                              forget_samples)
        counts_before = np.bincount(sample_users[~earlier], minlength=inner.n_users_)
        counts = np.bincount(sample_users[keep], minlength=inner.n_users_)
        if n_new == 0 and np.setdiff1d(new_users, inner.forgotten_users_).size == 0:
            out, model = copy.copy(self), copy.copy(inner)
            model._set_fitted(inner.U_.copy(), copy_heads(inner._heads))
            out.model_ = model
            record = ForgetRecord(
                model="dp_amht_lrs", method=method, users=[], records=0, gap=math.nan,
                gap_measure="none: nothing new to forget, the model is unchanged", seconds=time.perf_counter() - start,
                details={"requested_users": new_users.tolist(), "release": self.release_, "new_release": False})
            return Forgetting(out, record)
        gone = np.union1d(new_users, np.flatnonzero((counts == 0) & (counts_before > 0)))
        forgotten = np.union1d(inner.forgotten_users_, gone)
        details = {"requested_users": new_users.tolist(), "release": self.release_}
        if method == "exact":
            out = self.clone()  # a new estimator: a fresh release with its own noise
            if self.mode == "simulation":
                out.set_params(noise_seed=derive_seed(
                    int(self.noise_seed), "forget", tuple(forgotten.tolist()),
                    tuple(np.flatnonzero(~keep & ~np.isin(sample_users, forgotten)).tolist())))
                details["noise_seed"] = out.noise_seed
            out.fit(X[keep], np.asarray(y, dtype=np.float64)[keep], sample_users[keep], n_users=inner.n_users_)
            model = out.model_
            heads = copy_heads(model._heads)
            rows_touched = int(np.sum(counts > 0))
            details.update(new_release=True, epsilon=out.epsilon_, delta=out.delta_, rounds=out.max_rounds,
                           note="a fresh private fit on the remaining data: a new release, accounted on its own")
            gap, gap_measure = 0.0, "none: a fresh fit on the remaining data (distributed as a retrain)"
        else:
            out, model = copy.copy(self), copy.copy(inner)
            out.model_ = model
            heads = copy_heads(inner._heads)
            changed = np.flatnonzero((counts > 0) & (counts < counts_before))
            if changed.size:
                rows = np.isin(sample_users, changed) & keep
                part = prepare_data(X[rows], np.asarray(y, dtype=np.float64)[rows],
                                    np.searchsorted(changed, sample_users[rows]), n_users=changed.size)
                fitted, _, _ = fit_user_parameters(part, inner.U_, inner.sparsity, **inner._user_options(None, 0))
                heads.put(changed, fitted)
            rows_touched = int(changed.size)
            group_users, group = self._forgotten_group(sample_users, counts, forgotten)
            details.update(new_release=False, epsilon=self.epsilon_, delta=self.delta_,
                           group_users=group_users, group_size=group.size, group_epsilon=group.epsilon,
                           group_delta=group.delta, group_epsilon_generic=group.generic_epsilon,
                           group_delta_generic=group.generic_delta,
                           note="U_ kept: covered by the joint-DP guarantee of the fit, per user (epsilon, delta) "
                                "and for the group forgotten since the fit (group_epsilon at group_delta)")
            gap, gap_measure = math.nan, "not measured: the released U_ is kept under the DP guarantee"
        clear_users(heads, forgotten)
        model.forgotten_users_ = forgotten
        model.forgotten_samples_ = np.flatnonzero(~keep & ~np.isin(sample_users, forgotten))
        model._set_fitted(inner.U_.copy() if method == "dp" else model.U_, heads)
        record = ForgetRecord(
            model="dp_amht_lrs", method=method, users=np.setdiff1d(forgotten, inner.forgotten_users_).tolist(),
            records=n_new, gap=gap, gap_measure=gap_measure, bound=None, rows_touched=rows_touched,
            seconds=time.perf_counter() - start, details=details)
        return Forgetting(out, record)
