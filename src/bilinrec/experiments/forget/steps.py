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
    dp_forgetting_bound,
    training_epsilon,
)
from bilinrec.seeds import derive_rng

CURVE_COLUMNS = ("model", "method", "n_forgotten", "seconds", "retrain_seconds", "rounds", "retrain_rounds", "gap")


def lrs_forget_curve(X, y, users, *, rank: int, sparsity: int, n_forgotten: Sequence[int] = (1, 2, 4, 8),
                     seed: int = 0, max_rounds: int = 50, tol: float = 1e-6, u_solver: str = "exact",
                     **options) -> pd.DataFrame:
    """Time to forget ``n`` users exactly (:meth:`AMHTLRS.forget`, warm-started) against
    retraining from scratch on the same remaining data under the same stopping rule
    (``max_rounds``, ``tol``), for every ``n`` in ``n_forgotten``.

    One model is fitted on all data; for each ``n`` the forgotten users are drawn (among users
    with samples) from ``derive_rng(seed, "forget-curve", n)``. Columns: :data:`CURVE_COLUMNS`;
    ``gap`` is the fixed-point gap the forgotten model reached. ``options`` go to :class:`AMHTLRS`.
    """
    users = np.asarray(users)
    params = dict(max_rounds=max_rounds, tol=tol, u_solver=u_solver, random_state=seed, **options)
    n_users = int(users.max()) + 1
    model = AMHTLRS(rank, sparsity, **params).fit(X, y, users, n_users=n_users)
    present = np.unique(users)
    rows = []
    for n in n_forgotten:
        if not 0 < n < present.size:
            raise ValueError(f"n_forgotten must lie in 1..{present.size - 1} (users with samples), got {n}")
        gone = np.sort(derive_rng(seed, "forget-curve", int(n)).choice(present, size=int(n), replace=False))
        _, record = model.forget(X, y, users, forget_users=gone)
        keep = ~np.isin(users, gone)
        start = time.perf_counter()
        with warnings.catch_warnings():  # the forgotten users are users without samples
            warnings.simplefilter("ignore", UserWarning)
            retrain = AMHTLRS(rank, sparsity, **params).fit(X[keep], np.asarray(y)[keep], users[keep], n_users=n_users)
        rows.append({"model": record.model, "method": record.method, "n_forgotten": int(n),
                     "seconds": record.seconds, "retrain_seconds": time.perf_counter() - start,
                     "rounds": record.details["rounds"], "retrain_rounds": retrain.n_rounds_, "gap": record.gap})
    return pd.DataFrame(rows, columns=list(CURVE_COLUMNS))


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
