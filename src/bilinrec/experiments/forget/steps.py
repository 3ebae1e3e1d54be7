"""Steps of the 'forget' part: how long forgetting takes against retraining from scratch.

Config-free: every function takes its settings as arguments, so the workflow rule (and a test)
calls it with whatever the config says.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bilinrec.models.lrs import AMHTLRS
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
