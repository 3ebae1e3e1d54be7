"""Steps of the 'forget' part: how long forgetting takes against retraining from scratch, and
what the DP guarantee gives a departing user instead.

Config-free: every function takes its settings as arguments, so the workflow rule (and a test)
calls it with whatever the config says.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bilinrec.models.lrs import (
    AMHTLRS,
    DPAMHTLRS,
    PrivacyBudget,
    calibrate_noise_multiplier,
    ClipBounds,
    dp_forgetting_bound,
    training_epsilon,
)
from bilinrec.seeds import derive_rng, derive_seed

#: One row per (model, method, number of users forgotten). ``gap`` is the forgotten (or retrained)
#: model's distance from the retraining fixed point on the remaining data (``gap_measure``);
#: ``control_gap`` the same for the untouched original model: the negative control, which must
#: be far from the fixed point for a small ``gap`` to mean anything. ``seconds`` is timing only.
FORGET_COLUMNS = ("model", "method", "n_forgotten", "seconds", "iterations", "rows_touched", "gap", "gap_measure",
                  "bound", "certified", "control_gap", "release")


def forget_row(record, n: int, control_gap: float, release: str = "non-private") -> dict:
    """A :data:`FORGET_COLUMNS` row from a :class:`~bilinrec.models.forgetting.ForgetRecord`."""
    return {"model": record.model, "method": record.method, "n_forgotten": int(n), "seconds": record.seconds,
            "iterations": int(record.details.get("rounds", record.details.get("iterations", 0))),
            "rows_touched": int(record.rows_touched), "gap": record.gap, "gap_measure": record.gap_measure,
            "bound": math.nan if record.bound is None else record.bound, "certified": record.certified,
            "control_gap": control_gap, "release": release}


def forgotten_users(present: np.ndarray, n: int, seed: int, key: str) -> np.ndarray:
    """``n`` users drawn among ``present`` (users with data) from ``derive_rng(seed, key, n)``."""
    if not 0 < n < present.size:
        raise ValueError(f"n_forgotten must lie in 1..{present.size - 1} (users with data), got {n}")
    return np.sort(derive_rng(seed, key, int(n)).choice(present, size=int(n), replace=False))


def lrs_forget_curve(X, y, users, *, rank: int, sparsity: int, n_forgotten: Sequence[int] = (1, 2, 4, 8),
                     seed: int = 0, max_rounds: int = 50, tol: float = 1e-6, u_solver: str = "exact",
                     dp_privacy: PrivacyBudget | None = None, dp_clip: ClipBounds | None = None,
                     dp_rounds: int = 10, **options) -> pd.DataFrame:
    """Time to forget ``n`` users of AMHT-LRS, for every ``n`` in ``n_forgotten``: exact
    forgetting (:meth:`AMHTLRS.forget`, warm-started) against retraining from scratch on the same
    remaining data under the same stopping rule (``max_rounds``, ``tol``); with ``dp_privacy``
    also DP-AMHT-LRS (``dp_rounds`` rounds, clip bounds ``dp_clip`` fixed a priori, *simulation*
    noise seeded from ``seed``): forgetting
    covered by the DP guarantee (``dp``: the user's own parameters deleted) and a fresh private
    re-fit (``exact``, a new release).

    One model (of each kind) is fitted on all data; the forgotten users are drawn by
    :func:`forgotten_users`. Columns: :data:`FORGET_COLUMNS`. ``options`` go to :class:`AMHTLRS`.
    """
    users = np.asarray(users)
    y = np.asarray(y)
    params = dict(max_rounds=max_rounds, tol=tol, u_solver=u_solver, random_state=seed, **options)
    n_users = int(users.max()) + 1
    model = AMHTLRS(rank, sparsity, **params).fit(X, y, users, n_users=n_users)
    dp_model = None
    if dp_privacy is not None:
        if dp_clip is None:
            raise ValueError("dp_clip: give the clip bounds (from public quantities) with dp_privacy")
        dp_model = DPAMHTLRS(rank, sparsity, privacy=dp_privacy, clip=dp_clip, max_rounds=dp_rounds, random_state=seed,
                             mode="simulation", noise_seed=derive_seed(seed, "forget-dp-noise"),
                             amht_options={"u_solver": u_solver, **options}).fit(X, y, users, n_users=n_users)
    present = np.unique(users)
    rows = []
    for n in n_forgotten:
        gone = forgotten_users(present, int(n), seed, "forget-curve")
        keep = ~np.isin(users, gone)
        remaining = (X[keep], y[keep], users[keep])
        control = model.fixed_point_gap(*remaining)
        _, record = model.forget(X, y, users, forget_users=gone)
        rows.append(forget_row(record, n, control))
        start = time.perf_counter()
        with warnings.catch_warnings():  # the forgotten users are users without samples
            warnings.simplefilter("ignore", UserWarning)
            retrain = AMHTLRS(rank, sparsity, **params).fit(*remaining, n_users=n_users)
        seconds = time.perf_counter() - start
        rows.append({"model": record.model, "method": "retrain", "n_forgotten": int(n), "seconds": seconds,
                     "iterations": retrain.n_rounds_, "rows_touched": int(present.size - gone.size),
                     "gap": _retrain_gap(retrain, remaining), "gap_measure": record.gap_measure, "bound": math.nan,
                     "certified": False, "control_gap": control, "release": "non-private"})
        if dp_model is not None:
            for method in ("dp", "exact"):
                _, record = dp_model.forget(X, y, users, forget_users=gone, method=method)
                rows.append(forget_row(record, n, math.nan, release=dp_model.release_))
    return pd.DataFrame(rows, columns=list(FORGET_COLUMNS))


def _retrain_gap(model: AMHTLRS, remaining) -> float:
    """The retrained model's own fixed-point gap on the data it was trained on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return model.fixed_point_gap(*remaining)


TABLE_COLUMNS = ("epsilon_target", "epsilon", "delta", "noise_multiplier", "posterior", "accuracy",
                 "gaussian_accuracy")


def dp_forgetting_table(epsilons: Sequence[float], delta: float, *, max_rounds: int = 10,
                        accountant: str = "pld", prior: float = 0.5) -> pd.DataFrame:
    """What the DP guarantee of a DP-AMHT-LRS fit (``max_rounds`` rounds, no Poisson sampling)
    gives a departing user, per target epsilon: the noise multiplier the project's accountant
    calibrates, the epsilon it certifies at ``delta``, and the membership bounds of
    :func:`dp_forgetting_bound` for that epsilon. ``gaussian_accuracy`` is the tighter bound of
    the mechanism actually used: the composed releases are one Gaussian mechanism of
    sensitivity-to-noise ratio ``mu = sqrt(sum of statistics released) / noise_multiplier``,
    against which no test guesses membership (prior 1/2) better than ``Phi(mu / 2)``."""
    from scipy.stats import norm

    releases = DPAMHTLRS(1, 0, max_rounds=max_rounds).release_schedule()
    rows = []
    for target in epsilons:
        budget = PrivacyBudget(target, delta)
        z = calibrate_noise_multiplier(budget, releases, 1.0, accountant)
        epsilon = training_epsilon(z, releases, 1.0, delta, accountant)
        bound = dp_forgetting_bound(epsilon, delta, prior)
        mu = math.sqrt(sum(releases)) / z
        rows.append({"epsilon_target": float(target), "epsilon": epsilon, "delta": delta, "noise_multiplier": z,
                     "posterior": bound.posterior, "accuracy": bound.accuracy,
                     "gaussian_accuracy": float(norm.cdf(mu / 2)) if prior == 0.5 else math.nan})
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def dp_forgetting_markdown(table: pd.DataFrame) -> str:
    """The table of :func:`dp_forgetting_table` as the Markdown that docs/forgetting.md shows."""
    header = ("| target ε | certified ε (δ) | noise multiplier | posterior bound | accuracy bound (ε, δ) "
              "| accuracy bound (Gaussian) |")
    lines = [header, "| --- | --- | --- | --- | --- | --- |"]
    for r in table.itertuples():
        lines.append(f"| {r.epsilon_target:g} | {r.epsilon:.4f} ({r.delta:g}) | {r.noise_multiplier:.3f} "
                     f"| {r.posterior:.4f} | {r.accuracy:.4f} | {r.gaussian_accuracy:.4f} |")
    return "\n".join(lines)
