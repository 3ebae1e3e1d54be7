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
#: AMHT-LRS exact rows: ``refit_distance`` to a refit from scratch on the remaining data (the
#: problem has several fixed points), ``control_refit_distance`` the untouched model's (see
#: :func:`bilinrec.models.lrs.forget.refit_distances`). DP rows: ``group_size`` add/remove steps
#: forgotten and ``group_epsilon``, the kept release's epsilon for that group at the fit's delta
#: (:func:`bilinrec.models.lrs.group_privacy`). NaN where a column does not apply.
#: The forgetting audit (ALS rows; :mod:`bilinrec.models.als.audit`): ``own_history_auc`` and
#: ``mia_auc`` of the row's model, ``retrain_*`` the mean over retrains from other seeds (and
#: ``retrain_mia_std`` their seed spread), ``audit_passed`` whether both lie within retraining's
#: tolerance (:class:`~bilinrec.models.als.audit.RetrainBand`).
FORGET_COLUMNS = ("model", "method", "n_forgotten", "seconds", "iterations", "rows_touched", "gap", "gap_measure",
                  "bound", "certified", "control_gap", "release", "refit_distance", "control_refit_distance",
                  "group_size", "group_epsilon", "own_history_auc", "mia_auc", "retrain_own_history_auc",
                  "retrain_mia_auc", "retrain_mia_std", "audit_passed")


def forget_row(record, n: int, control_gap: float, release: str = "non-private") -> dict:
    """A :data:`FORGET_COLUMNS` row from a :class:`~bilinrec.models.forgetting.ForgetRecord`."""
    details = record.details
    # rounds (AMHT-LRS), sweeps (ALS exact) or rounds of row re-solves (ALS certified)
    iterations = next((details[k] for k in ("iterations", "sweeps", "rounds")
                       if isinstance(details.get(k), (int, np.integer))), 0)
    return {"model": record.model.lower(), "method": record.method, "n_forgotten": int(n), "seconds": record.seconds,
            "iterations": int(iterations),
            "rows_touched": int(record.rows_touched), "gap": record.gap, "gap_measure": record.gap_measure,
            "bound": math.nan if record.bound is None else record.bound, "certified": record.certified,
            "control_gap": control_gap, "release": release,
            **{k: details.get(k, math.nan)
               for k in ("refit_distance", "control_refit_distance", "group_size", "group_epsilon")}}


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
    :func:`forgotten_users`. Exact forgetting is compared with a refit from scratch
    (``compare_refit=True``: the retrain row's fit, repeated untimed inside the forget call).
    Columns: :data:`FORGET_COLUMNS`. ``options`` go to :class:`AMHTLRS`.
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
        _, record = model.forget(X, y, users, forget_users=gone, compare_refit=True)
        rows.append(forget_row(record, n, control))
        start = time.perf_counter()
        with warnings.catch_warnings():  # the forgotten users are users without samples
            warnings.simplefilter("ignore", UserWarning)
            retrain = AMHTLRS(rank, sparsity, **params).fit(*remaining, n_users=n_users)
        seconds = time.perf_counter() - start
        rows.append({"model": record.model, "method": "retrain", "n_forgotten": int(n), "seconds": seconds,
                     "iterations": retrain.n_rounds_, "rows_touched": int(present.size - gone.size),
                     "gap": _retrain_gap(retrain, remaining), "gap_measure": record.gap_measure, "bound": math.nan,
                     "certified": False, "control_gap": control, "release": "non-private",
                     "control_refit_distance": record.details["control_refit_distance"]})
        if dp_model is not None:
            for method in ("dp", "exact"):
                _, record = dp_model.forget(X, y, users, forget_users=gone, method=method)
                rows.append(forget_row(record, n, math.nan, release=dp_model.release_))
    return pd.DataFrame(rows, columns=list(FORGET_COLUMNS))


def als_forget_curve(C, params: dict, *, n_forgotten: Sequence[int], seed: int,
                     methods: Sequence[str] = ("certified", "exact"), tolerance: float | None = None,
                     audit_retrains: int = 3, controls: Sequence[str] = (), frozen_weighting=None) -> pd.DataFrame:
    """Time to forget ``n`` users' whole histories of an ALS model, for every ``n`` in
    ``n_forgotten``: each of ``methods`` (:meth:`ALS.forget`) against retraining from scratch on
    the reduced data, both under the model's stopping rule (``params``: ``iterations``, ``tol``),
    and the forgetting audit of every result.

    One model ``ALS(**params)`` is fitted on ``C``; the users are drawn by :func:`forgotten_users`
    among users with stored cells. ``gap`` is the largest row residual on the reduced data
    (:meth:`ALS.row_residuals`) of the forgotten or retrained model; ``bound`` the absolute
    ``tolerance`` each forget is certified against (None: none claimed); ``control_gap`` the
    untouched model's largest row residual on the reduced data. The residual state a certified
    forget starts from is computed once after training (one pass over the data, cached with the
    model by content hash), so a forget's seconds do not include it.

    Audit (:func:`_audited`): ``audit_retrains`` (>= 2) more models retrained on the reduced data
    from derived seeds give retraining's band; every row is judged against it -- each method, the
    timed ``retrain`` (a retrain from yet another seed: an ideal unlearner, which should pass) and
    the untouched model (method ``original``: the negative control, which must fail). ``controls``
    adds rows of near-miss forgetters (:mod:`.controls`), methods ``control_<name>``: ``shrink``,
    ``10sweep`` and ``frozen``; the last forgets from a second model ``ALS(**params)`` with the
    data-dependent ``frozen_weighting`` (BM25) and is judged against that model's retrains.
    Columns: :data:`FORGET_COLUMNS`.
    """
    from bilinrec.models.als import ALS, as_weighting
    from bilinrec.models.als.deletions import apply_deletions

    from .controls import control_frozen, control_shrink, control_sweeps

    unknown = sorted(set(controls) - set(CONTROLS))
    if unknown:
        raise ValueError(f"controls: unknown control(s) {unknown}; choose among {list(CONTROLS)}")
    if "frozen" in controls and (frozen_weighting is None or as_weighting(frozen_weighting).cellwise):
        raise ValueError("controls: 'frozen' needs a data-dependent frozen_weighting (BM25), got "
                         f"{frozen_weighting!r}: frozen cell-wise weights are the recomputed ones")
    C = C.tocsr()
    model = ALS(**params).fit(C)
    model.max_row_residual(C)  # once per trained model (cached), as training's last step: not a forget's cost
    _compile_forget_kernels(params)
    frozen_params = {**params, "weighting": frozen_weighting}
    frozen_model = ALS(**frozen_params).fit(C) if "frozen" in controls else None
    present = np.flatnonzero(np.diff(C.indptr))
    rows = []
    for n in n_forgotten:
        gone = forgotten_users(present, int(n), seed, "forget-als")
        cells = C[gone].tocoo()
        reduced = apply_deletions(C, np.column_stack([gone[cells.row], cells.col]), "retrain").C
        control = _largest_residual(model, reduced)
        audit = _audited(C, reduced, gone, params, audit_retrains, seed, n)
        for method in methods:
            out, record = model.forget(C, users=gone, method=method, tolerance=tolerance)
            rows.append(audit(forget_row(record, n, control), out))
        start = time.perf_counter()
        retrain = ALS(**params).fit(reduced)
        seconds = time.perf_counter() - start
        common = {"model": "als", "n_forgotten": int(n), "gap_measure": record.gap_measure, "bound": math.nan,
                  "certified": False, "control_gap": control, "release": "non-private"}
        rows.append(audit({**common, "method": "retrain", "seconds": seconds,
                           "iterations": int(retrain.train_iterations_), "rows_touched": int(sum(reduced.shape)),
                           "gap": _largest_residual(retrain, reduced)}, retrain))
        rows.append(audit({**common, "method": "original", "seconds": 0.0, "iterations": 0, "rows_touched": 0,
                           "gap": control}, model))
        for name in controls:
            base, judge, touched = model, audit, 0
            start = time.perf_counter()
            if name == "shrink":
                out, touched = control_shrink(model, gone), gone.size
            elif name == "10sweep":
                out = control_sweeps(model, C, gone, sweeps=10)
            else:
                base = frozen_model
                out = control_frozen(base, C, gone)
                judge = _audited(C, reduced, gone, frozen_params, audit_retrains, seed, n)
            seconds = time.perf_counter() - start
            rows.append(judge({**common, "method": f"control_{name}", "seconds": seconds,
                               "iterations": int(sum(r["phase"] == "sweep" for r in out.history_)),
                               "rows_touched": int(touched + sum(r.get("rows_solved", 0) for r in out.history_)),
                               "gap": _largest_residual(out, reduced),
                               "control_gap": _largest_residual(base, reduced)}, out))
    return pd.DataFrame(rows, columns=list(FORGET_COLUMNS))


#: Near-miss controls of :func:`als_forget_curve` (rows ``control_<name>``; :mod:`.controls`).
CONTROLS = ("shrink", "10sweep", "frozen")


def _largest_residual(model, C) -> float:
    """The largest row residual of ``model`` on ``C`` (:meth:`ALS.row_residuals`): its gap."""
    return float(max(r.max(initial=0.0) for r in model.row_residuals(C)))


def _audited(C, reduced, gone, params: dict, retrains: int, seed: int, n: int):
    """The audit of forgetting the users ``gone`` of ``C``: ``retrains`` models ``ALS(**params)``
    fitted on ``reduced`` from seeds derived from ``seed`` (not ``params``' own) give the
    band; returns ``audit(row, model)``, which adds the audit columns of ``model`` to ``row``."""
    from bilinrec.models.als import ALS
    from bilinrec.models.als.audit import AuditCells, RetrainBand

    cells = AuditCells.of(C, users=gone, seed=derive_seed(seed, "forget-audit-nonmembers", int(n)))
    band = RetrainBand.of([cells.scores(ALS(**{**params, "random_state": derive_seed(seed, "forget-audit", int(n), k)})
                                        .fit(reduced)) for k in range(retrains)], cells)

    def audit(row: dict, model) -> dict:
        scores = cells.scores(model)
        return {**row, "own_history_auc": scores.own_history_auc, "mia_auc": scores.mia_auc,
                "retrain_own_history_auc": band.mean.own_history_auc, "retrain_mia_auc": band.mean.mia_auc,
                "retrain_mia_std": band.std.mia_auc, "audit_passed": band.passes(scores)}

    return audit


def _compile_forget_kernels(params: dict) -> None:
    """Compile (or load from Numba's cache) the certified forget's kernels on a tiny problem, so
    that the first timed forget of a fresh clone does not pay for it."""
    import scipy.sparse as sp

    from bilinrec.models.als import ALS

    tiny = sp.csr_matrix(np.eye(4) + np.eye(4, k=1))
    keep = {k: params[k] for k in ("dtype", "solver", "weighting") if k in params}
    toy = ALS(factors=2, iterations=2, **keep).fit(tiny)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        toy.forget(tiny, users=[0], tolerance=1e6)


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


# --------------------------------------------------------------------------------------------
# Workflow steps (called by workflow/scripts/forget_*.py)
# --------------------------------------------------------------------------------------------
def lrs_forget_step(cfg: dict, seed: int, out) -> None:
    """Rule forget_lrs: :func:`lrs_forget_curve` on the configured synthetic problem -> ``out`` CSV."""
    from bilinrec.models.lrs import default_clip_bounds
    from bilinrec.models.lrs.synthetic import make_problem

    lrs, dp = cfg["lrs"], cfg["dp"]
    p = lrs["problem"]
    problem = make_problem(n_users=p["n_users"], dim=p["dim"], rank=p["rank"], sparsity=p["sparsity"],
                           samples=p["samples"], noise=p["noise"], seed=derive_seed(seed, "problem"))
    clip = default_clip_bounds(p["dim"], p["samples"], dp["response_scale"])  # public quantities only
    curve = lrs_forget_curve(problem.X, problem.y, problem.users, rank=p["rank"], sparsity=p["sparsity"],
                             n_forgotten=cfg["n_forgotten"], seed=seed, max_rounds=lrs["max_rounds"], tol=lrs["tol"],
                             dp_privacy=PrivacyBudget(dp["epsilon"], dp["delta"]), dp_clip=clip, dp_rounds=dp["rounds"])
    curve.insert(0, "dataset", "synthetic-lrs")
    _write_csv(curve, out)


def als_forget_step(split_path, dataset: str, cfg: dict, model_cfg: dict, seed: int, out,
                    threads: int | None = None, frozen_confidence: dict | None = None) -> None:
    """Rule forget_als: :func:`als_forget_curve` on the unlearn part's training positives of
    ``dataset`` with the confidence ``cfg["als"]["confidence"]`` (cell-wise), audited against
    ``cfg["als"]["audit_retrains"]`` retrains, with the near-miss controls ``cfg["als"]["audit_controls"]``
    (``frozen``: on the unlearn part's ``frozen_confidence``, BM25) -> ``out`` CSV."""
    from bilinrec.experiments.als_inputs import als_params, confidence_weighting, load_training_positives
    from bilinrec.models.als import Weighting

    train = load_training_positives(split_path)
    als = cfg["als"]
    weighting = Weighting.from_dict(als["confidence"])
    frozen = None if frozen_confidence is None else confidence_weighting(**frozen_confidence)
    curve = als_forget_curve(train, als_params(model_cfg, seed, threads, weighting),
                             n_forgotten=cfg["n_forgotten"], seed=seed, methods=als["methods"],
                             audit_retrains=als["audit_retrains"], controls=als["audit_controls"],
                             frozen_weighting=frozen, tolerance=als["tolerance"])
    curve.insert(0, "dataset", dataset)
    _write_csv(curve, out)


def forget_table_step(curve_paths: Sequence, table_csv, figure_stem) -> None:
    """Rule forget_table: every curve -> the ``forget`` table and the time-to-forget figure."""
    from bilinrec.experiments.forget.plots import plot_forget_time
    from bilinrec.plotting import savefig
    from bilinrec.tables import write_table

    table = pd.concat([pd.read_csv(p) for p in curve_paths], ignore_index=True)
    shown = table.drop(columns=["gap_measure"])
    write_table(table, table_csv, display=shown,
                caption="Forgetting whole users: time, rows re-solved and distance from the retraining fixed point, "
                        "against retraining under the same stopping rule (control_gap: the untouched model).")
    savefig(plot_forget_time(table), figure_stem)


def _write_csv(df: pd.DataFrame, out) -> None:
    import os

    from bilinrec.tables import write_table

    os.makedirs(os.path.dirname(os.fspath(out)) or ".", exist_ok=True)
    write_table(df, out, formats=("csv",))
