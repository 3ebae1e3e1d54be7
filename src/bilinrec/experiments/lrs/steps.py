"""Synthetic sample-complexity experiments of AMHT-LRS and its baselines.

Each ``run_*`` function runs one experiment for one seed over its whole grid and returns a
list of flat records (one per method and grid cell); the workflow writes them to
``results/lrs/<experiment>_s<seed>.csv``. ``summarize_*`` turn the concatenated
records into the tables and the phase-transition fit.
"""

from __future__ import annotations

import time
from itertools import product
from typing import Any, Mapping

import numpy as np
import pandas as pd

from bilinrec.experiments.methods import build, method, method_label
from bilinrec.io import atomic_path, write_json
from bilinrec.models.lrs.metrics import (
    mse,
    normalized_error,
    subspace_distance,
    support_precision_recall,
)
from bilinrec.models.lrs.synthetic import LRSProblem, make_problem
from bilinrec.seeds import derive_seed
from bilinrec.tables import format_mean_std, summarize, write_table

__all__ = [
    "COMPARED_METHODS",
    "EXPERIMENTS",
    "PLANTED_CONVERGENCE_METHOD",
    "build_method",
    "evaluate",
    "fit_reference_line",
    "m50_table",
    "phase_boundary",
    "run_convergence",
    "run_m50",
    "run_error_vs_m",
    "run_experiment",
    "run_noise",
    "run_phase_m_k",
    "run_phase_m_t",
    "sample_complexity_table",
    "write_summaries",
]

#: The methods this part compares (keys of :data:`bilinrec.experiments.methods.METHODS`).
COMPARED_METHODS = ("amht_lrs", "amht_lrs_htp", "altmin", "fedrep", "sparse_only", "global", "local",
               "finetune", "known_u", "oracle")

#: Problem keys of the ``problem`` config section passed to :func:`make_problem`.
_PROBLEM_KEYS = ("n_users", "dim", "rank", "sparsity", "w_scale", "b_scale", "coherence", "support",
                 "adversarial_pool", "sample_distribution", "sample_spread", "min_samples")


def build_method(name: str, problem: LRSProblem, cfg: Mapping[str, Any], callback=None):
    """A fresh estimator for method ``name`` configured by the ``lrs`` config section."""
    if name not in COMPARED_METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {COMPARED_METHODS}")
    rank, sparsity = problem.U.shape[1], problem.supports.shape[1]
    est = dict(cfg["estimator"])
    base = cfg["baselines"]
    params = {
        "amht_lrs": dict(rank=rank, sparsity=sparsity, callback=callback, **est),
        "amht_lrs_htp": dict(rank=rank, sparsity=sparsity, callback=callback, **(est | {"pursuit": "htp"})),
        "altmin": dict(rank=rank, callback=callback, **est),
        "fedrep": dict(rank=rank, lr=base["fedrep_lr"], max_rounds=base["fedrep_max_rounds"], tol=est["tol"]),
        "sparse_only": dict(sparsity=sparsity, max_rounds=base["sparse_only_rounds"], tol=est["tol"],
                            pursuit=est["pursuit"]),
        "global": {},
        "local": dict(alpha=base["ridge_alpha"]),
        "finetune": dict(alpha=base["ridge_alpha"]),
        "known_u": dict(U=problem.U, sparsity=sparsity, inner_iters=est["inner_iters"], pursuit=est["pursuit"],
                        ridge=est["ridge"]),
        "oracle": dict(U=problem.U, supports=problem.supports),
    }[name]
    return build(name, **params)


def evaluate(name: str, model, problem: LRSProblem, X_test, y_test, users_test) -> dict[str, float]:
    """Recovery and prediction metrics of a fitted model against the problem's truth."""
    record = {
        "error": normalized_error(model.theta_, problem.theta),
        "test_mse": mse(model.predict(X_test, users_test), y_test),
        "rounds": int(getattr(model, "n_rounds_", 1)),
        "seconds": float(model.fit_seconds_),
        "subspace_distance": np.nan,
        "support_precision": np.nan,
        "support_recall": np.nan,
    }
    declared = method(name)
    if declared.shared_subspace:
        record["subspace_distance"] = subspace_distance(model.U_, problem.U)
    if declared.sparse_part:
        record["support_precision"], record["support_recall"] = support_precision_recall(model.B_, problem.B)
    return record


def _problem(cfg: Mapping[str, Any], seed: int, experiment: str, **overrides) -> LRSProblem:
    params = {k: cfg["problem"][k] for k in _PROBLEM_KEYS if k in cfg["problem"]} | overrides
    samples = params.pop("samples")
    noise = params.pop("noise", 0.0)
    key = tuple(sorted((k, v) for k, v in overrides.items()))
    return make_problem(samples=samples, noise=noise, seed=derive_seed(seed, experiment, key), **params)


def _run_methods(problem: LRSProblem, methods, cfg, seed: int, experiment: str, cell: dict) -> list[dict]:
    rng = np.random.default_rng(derive_seed(seed, experiment, "test", tuple(sorted(cell.items()))))
    X_test, y_test, users_test = problem.sample(cfg["problem"]["n_test"], rng)
    records = []
    for name in methods:
        base = {"experiment": experiment, "seed": seed, "method": name, **cell,
                "n_users": problem.n_users, "dim": problem.dim, "rank": problem.U.shape[1],
                "sparsity": problem.supports.shape[1], "noise": problem.noise}
        try:
            model = build_method(name, problem, cfg).fit(problem.X, problem.y, problem.users)
        except ValueError as err:
            # e.g. fewer samples than unknowns per user: the method is not identifiable here
            records.append(base | {"status": f"not fitted: {err}", "error": np.nan})
            continue
        record = evaluate(name, model, problem, X_test, y_test, users_test)
        record["success"] = bool(record["error"] < cfg["success_threshold"])
        records.append(base | {"status": "ok"} | record)
    return records


def _sweep(cfg: Mapping[str, Any], seed: int, experiment: str, methods, grid: Mapping[str, Any],
           **fixed: Any) -> list[dict]:
    """Every method on the problem of every point of ``grid`` (outer axis first), with ``fixed`` overrides."""
    records = []
    for values in product(*grid.values()):
        overrides = dict(zip(grid, values)) | fixed
        problem = _problem(cfg, seed, experiment, **overrides)
        cell = {"samples": overrides["samples"], "support": overrides.get("support", cfg["problem"]["support"])}
        records += _run_methods(problem, methods, cfg, seed, experiment, cell)
    return records


def run_error_vs_m(cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Error of every method versus samples per user ``m``, for each noise level."""
    exp = cfg["error_vs_m"]
    return _sweep(cfg, seed, "error_vs_m", exp["methods"], {"noise": exp["noise"], "samples": exp["samples"]})


def run_phase_m_t(cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Noiseless AMHT-LRS success over a grid of samples per user ``m`` and users ``t``."""
    exp = cfg["phase_m_t"]
    return _sweep(cfg, seed, "phase_m_t", ["amht_lrs"], {"n_users": exp["n_users"], "samples": exp["samples"]},
                  noise=0.0)


def run_phase_m_k(cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Noiseless AMHT-LRS success over a grid of samples per user ``m`` and sparsity ``k``."""
    exp = cfg["phase_m_k"]
    return _sweep(cfg, seed, "phase_m_k", ["amht_lrs"], {"sparsity": exp["sparsity"], "samples": exp["samples"]},
                  n_users=exp["n_users"], noise=0.0)


#: Claim A2's planted control in the convergence records: this method on the problem without its sparse parts.
PLANTED_CONVERGENCE_METHOD = "altmin"


def _rounds(name: str, problem: LRSProblem, cfg: Mapping[str, Any], record: dict) -> list[dict]:
    """Fit ``name`` on ``problem`` and return one record per round (parameter and subspace error)."""
    theta_norm = np.linalg.norm(problem.theta)

    def track(U, W, B):
        return {"error": float(np.linalg.norm(W @ U.T + B.toarray() - problem.theta) / theta_norm),
                "subspace_distance": subspace_distance(U, problem.U)}

    model = build_method(name, problem, cfg, callback=track)
    model.fit(problem.X, problem.y, problem.users)
    return [record | {"method": name, "sparsity": problem.supports.shape[1], "round": h["round"], "loss": h["loss"],
                      "error": h["error"], "subspace_distance": h["subspace_distance"], "seconds": h["seconds"]}
            for h in model.history_]


def run_convergence(cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Parameter and subspace error after every round (one record per round), of every method on
    the configured problem and, as claim A2's planted control, of AltMin (AMHT-LRS with k = 0) on
    the same problem without its sparse parts (``sparsity`` 0: the same U*, W, X and noise, b_i = 0),
    a low-rank problem it models exactly."""
    exp = cfg["convergence"]
    records = []
    for m in exp["samples"]:
        problem = _problem(cfg, seed, "convergence", samples=m, noise=exp["noise"])
        record = {"experiment": "convergence", "seed": seed, "samples": m, "noise": problem.noise}
        for name in exp["methods"]:
            records += _rounds(name, problem, cfg, record)
        records += _rounds(PLANTED_CONVERGENCE_METHOD, problem.without_sparse_parts(), cfg, record)
    return records


def run_noise(cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Error versus noise level, for random and adversarial (concentrated) supports."""
    exp = cfg["noise"]
    return _sweep(cfg, seed, "noise", exp["methods"], {"support": exp["support"], "noise": exp["noise"]},
                  samples=exp["samples"])


def smallest_success(succeeds, lo: int, hi: int) -> int | None:
    """Smallest integer ``m`` in ``[lo, hi]`` with ``succeeds(m)``, by bisection (assumes success is
    monotone in ``m``); None if ``succeeds(hi)`` is False. Calls ``succeeds`` about log2(hi - lo) + 2 times."""
    if lo > hi:
        raise ValueError(f"empty search range [{lo}, {hi}]")
    if not succeeds(hi):
        return None
    if succeeds(lo):
        return lo
    while hi - lo > 1:  # invariant: fails at lo, succeeds at hi
        mid = (lo + hi) // 2
        if succeeds(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _first_samples(problem: LRSProblem, m: int, per_user: int):
    """The first ``m`` of the ``per_user`` training samples of every user (nested in ``m``)."""
    position = np.arange(len(problem.users)) - problem.users * per_user
    keep = position < m
    return problem.X[keep], problem.y[keep], problem.users[keep]


def run_m50(cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Per seed, setting (d, r, k) and method: the smallest samples per user ``m`` at which the
    noiseless problem is recovered (error < ``success_threshold``), found by bisection on the
    integers in ``[r + k, max_samples]`` with nested samples (the first ``m`` of ``max_samples``
    per user), so the resolution is one sample. ``local`` is exact per-user least squares
    (``alpha = 0``): it needs ``m = d``."""
    exp = cfg["m50"]
    per_user = int(exp["max_samples"])
    records = []
    for index, setting in enumerate(exp["settings"]):
        dim, rank, sparsity = int(setting["dim"]), int(setting["rank"]), int(setting["sparsity"])
        n_users = int(setting.get("n_users", exp["n_users"]))
        problem = _problem(cfg, seed, "m50", n_users=n_users, dim=dim, rank=rank, sparsity=sparsity,
                           samples=per_user, noise=0.0, sample_distribution="fixed")
        for name in exp["methods"]:
            tried: dict[int, float] = {}

            def succeeds(m: int) -> bool:
                X, y, users = _first_samples(problem, m, per_user)
                model = (build("local", alpha=0.0) if name == "local" else build_method(name, problem, cfg))
                try:
                    model.fit(X, y, users, n_users=n_users)
                    tried[m] = normalized_error(model.theta_, problem.theta)
                except ValueError:  # fewer samples than unknowns per user
                    tried[m] = np.inf
                return bool(tried[m] < cfg["success_threshold"])

            start = time.perf_counter()
            m_star = smallest_success(succeeds, rank + sparsity, per_user)
            records.append({
                "experiment": "m50", "seed": seed, "method": name, "setting": index, "n_users": n_users,
                "dim": dim, "rank": rank, "sparsity": sparsity, "noise": 0.0, "max_samples": per_user,
                "m_star": np.nan if m_star is None else m_star, "fits": len(tried),
                "tried": ";".join(f"{m}:{err:.2e}" for m, err in sorted(tried.items())),
                "seconds": time.perf_counter() - start,
            })
    return records


#: Experiment name -> runner.
EXPERIMENTS = {
    "error_vs_m": run_error_vs_m,
    "phase_m_t": run_phase_m_t,
    "phase_m_k": run_phase_m_k,
    "convergence": run_convergence,
    "noise": run_noise,
    "m50": run_m50,
}


def run_experiment(name: str, cfg: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """Run experiment ``name`` for one seed; returns its records as a DataFrame."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; expected one of {sorted(EXPERIMENTS)}")
    start = time.perf_counter()
    frame = pd.DataFrame(EXPERIMENTS[name](cfg, int(seed)))
    frame["job_seconds"] = time.perf_counter() - start
    return frame


# --------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------
def sample_complexity_table(records: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of the error (and test MSE) of every method, noise level and m."""
    ok = records[records["status"] == "ok"]
    return summarize(ok, ["noise", "samples", "method"], ["error", "test_mse", "seconds"])


def phase_boundary(records: pd.DataFrame, by: str, level: float = 0.5) -> pd.DataFrame:
    """Smallest ``m`` per value of ``by`` at which the success rate reaches ``level``
    (linear interpolation between grid points; NaN if never reached)."""
    rate = records.groupby([by, "samples"])["success"].mean().reset_index()
    rows = []
    for value, grp in rate.groupby(by):
        grp = grp.sort_values("samples")
        m, p = grp["samples"].to_numpy(float), grp["success"].to_numpy(float)
        above = np.flatnonzero(p >= level)
        if len(above) == 0:
            m_star = np.nan
        elif above[0] == 0:
            m_star = m[0]
        else:
            i = above[0]
            m_star = m[i - 1] + (level - p[i - 1]) * (m[i] - m[i - 1]) / (p[i] - p[i - 1])
        rows.append({by: value, "m_boundary": m_star})
    return pd.DataFrame(rows)


def fit_reference_line(boundary: pd.DataFrame, rank: int) -> float:
    """Least-squares ``c`` of ``m_boundary = c (r + k)`` through the origin over the sparsities."""
    valid = boundary.dropna(subset=["m_boundary"])
    if valid.empty:
        return float("nan")
    x = rank + valid["sparsity"].to_numpy(float)
    return float(x @ valid["m_boundary"].to_numpy(float) / (x @ x))


def m50_table(records: pd.DataFrame) -> pd.DataFrame:
    """m₅₀ of every (setting, method) and its ratio to the information floors.

    ``m50`` is the median over seeds of each seed's smallest successful ``m`` (a seed that never
    succeeds up to ``max_samples`` counts as infinite), i.e. the ``m`` at which half the seeds
    recover the problem; NaN when fewer than half do. Floors per user: ``r + k`` (unknowns of a
    user whose ``U`` and support are known) and ``r + k + d r / t`` (all unknowns ``t (r + k) + d r``
    shared over the ``t`` users). ``over_known_u`` divides by the m₅₀ of the known-``U`` reference.
    """
    keys = ["setting", "n_users", "dim", "rank", "sparsity", "method"]
    rows = []
    for key, group in records.groupby(keys, sort=True):
        stars = group["m_star"].to_numpy(float)
        filled = np.where(np.isnan(stars), np.inf, stars)
        m50 = float(np.median(filled)) if len(filled) else np.nan
        reached = np.isfinite(stars)
        rows.append(dict(zip(keys, key)) | {
            "m50": m50 if np.isfinite(m50) else np.nan,
            "m_star_min": float(np.min(filled)) if reached.any() else np.nan,
            "m_star_max": float(np.max(filled)) if reached.all() else np.nan,
            "seeds": len(stars), "seeds_reached": int(reached.sum()),
            "max_samples": int(group["max_samples"].max()),
        })
    table = pd.DataFrame(rows)
    r, k, d, t = (table[c].astype(float) for c in ("rank", "sparsity", "dim", "n_users"))
    table["floor_rk"] = r + k
    table["floor_dof"] = r + k + d * r / t
    table["over_rk"] = table["m50"] / table["floor_rk"]
    table["over_dof"] = table["m50"] / table["floor_dof"]
    known = table[table["method"] == "known_u"].set_index("setting")["m50"]
    table["over_known_u"] = table["m50"] / table["setting"].map(known).astype(float)
    return table


def write_m50(records: pd.DataFrame, m50_csv) -> pd.DataFrame:
    """Write the m₅₀ table (``lrs_m50``) from the ``m50`` experiment's records."""
    table = m50_table(records)
    shown = pd.DataFrame({
        "d": table["dim"], "r": table["rank"], "k": table["sparsity"], "t": table["n_users"],
        "method": table["method"].map(lambda m: "Per-user least squares (α = 0)" if m == "local" else method_label(m)),
        "m₅₀": table["m50"].map(lambda v: "not reached" if np.isnan(v) else f"{v:g}"),
        "seeds reached": [f"{a}/{b}" for a, b in zip(table["seeds_reached"], table["seeds"])],
        "r + k": table["floor_rk"], "r + k + dr/t": table["floor_dof"].round(2),
        "m₅₀/(r+k)": table["over_rk"].round(2), "m₅₀/(r+k+dr/t)": table["over_dof"].round(2),
        "m₅₀/m₅₀(known U)": table["over_known_u"].round(2),
    })
    write_table(table, m50_csv, display=shown,
                caption="Samples per user at which half the seeds recover the noiseless problem (error < "
                        "success_threshold), found by bisection to one sample (searched up to max_samples), "
                        "and its ratio to the information floors r + k (U and supports known) and "
                        "r + k + d r / t (all unknowns per user).")
    return table


def write_summaries(record_paths, records_csv, convergence_csv, table_csv, phase_csv, fit_json,
                    m50_csv=None) -> None:
    """Concatenate per-seed records and write the sample-complexity table, the phase-boundary
    table, the fitted reference line ``m = c (r + k)`` and (with ``m50_csv``) the m₅₀ table."""
    frames = [pd.read_csv(p) for p in record_paths]
    m50 = [f for f in frames if not f.empty and f["experiment"].iloc[0] == "m50"]
    frames = [f for f in frames if f.empty or f["experiment"].iloc[0] != "m50"]
    if m50_csv is not None:
        if not m50:
            raise ValueError("m50_csv given but no records of experiment 'm50'")
        write_m50(pd.concat(m50, ignore_index=True), m50_csv)
    records = pd.concat([f for f in frames if not f.empty and f["experiment"].iloc[0] != "convergence"],
                        ignore_index=True)
    convergence = pd.concat([f for f in frames if not f.empty and f["experiment"].iloc[0] == "convergence"],
                            ignore_index=True)
    for frame, path in ((records, records_csv), (convergence, convergence_csv)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)

    error_vs_m = records[records["experiment"] == "error_vs_m"]
    summary = sample_complexity_table(error_vs_m)
    cells = error_vs_m[["noise", "samples"]].drop_duplicates().sort_values(["noise", "samples"])
    shown = cells.rename(columns={"noise": "noise σ", "samples": "m"}).reset_index(drop=True)
    for key in dict.fromkeys(error_vs_m["method"]):
        stats = summary[summary["method"] == key].set_index(["noise", "samples"])
        shown[method_label(key)] = [
            format_mean_std(*stats.loc[(s, m), ["error_mean", "error_std"]]) if (s, m) in stats.index else "n/a"
            for s, m in zip(shown["noise σ"], shown["m"])
        ]
    write_table(summary, table_csv, display=shown,
                caption="Normalised parameter error ||Θ̂−Θ*||_F/||Θ*||_F (mean ± std over seeds) "
                        "versus samples per user m; n/a: fewer samples than unknowns per user.")

    rank = int(records["rank"].iloc[0])
    boundaries = []
    for experiment, by in (("phase_m_k", "sparsity"), ("phase_m_t", "n_users")):
        part = records[(records["experiment"] == experiment) & (records["status"] == "ok")]
        if part.empty:
            continue
        b = phase_boundary(part.assign(success=part["success"].astype(float)), by)
        boundaries.append(b.rename(columns={by: "value"}).assign(experiment=experiment, parameter=by))
    phase = pd.concat(boundaries, ignore_index=True)[["experiment", "parameter", "value", "m_boundary"]]
    k_rows = phase[phase["parameter"] == "sparsity"].rename(columns={"value": "sparsity"})
    c = fit_reference_line(k_rows, rank)
    phase_rank = records.loc[records["experiment"] == "phase_m_t", "sparsity"]
    phase["r_plus_k"] = np.where(phase["parameter"] == "sparsity", rank + phase["value"],
                                 rank + (phase_rank.iloc[0] if len(phase_rank) else np.nan))
    phase["c_fit_times_r_plus_k"] = c * phase["r_plus_k"]
    write_table(phase, phase_csv, display=phase.round(2),
                caption=f"Smallest m with success rate ≥ 0.5 (noiseless, error < threshold); "
                        f"fitted reference m = c (r + k) with c = {c:.2f}.")
    write_json(fit_json, {"c": c, "rank": rank, "level": 0.5,
                          "boundaries": phase.to_dict(orient="records")})
