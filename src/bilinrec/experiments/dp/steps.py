"""Privacy-utility experiments of DP-AMHT-LRS on synthetic low-rank + sparse problems.

One run = one (number of users ``t``, seed, method): the problem is drawn once from
``(seed, t)`` so that every method and every epsilon sees the same users, and the method is
fit for every target epsilon of the grid. Records are flat dicts (one per epsilon) written
to ``results/dp/t<t>/<method>_s<seed>.csv``; :func:`utility_table` summarises them.
The figures are drawn by :mod:`bilinrec.experiments.dp.plots`.

Release mode: the grid runs ``mechanism.mode`` (default ``"simulation"``: noise seeded from
the root seed, reproducible, and labelled "simulation (seeded noise; not a private release)"
in every record, table, figure and claim; ``"private"`` draws the noise from OS entropy).
:func:`run_dp_audit` audits the private mode's mechanism with a likelihood-ratio test on its
released statistics (with planted-broken and null controls that show the audit's power) and
shows the known-seed attack on the simulation mode (see ``docs/privacy.md``).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Mapping

import numpy as np
import pandas as pd

from bilinrec.experiments.methods import build, method_label
from bilinrec.experiments.methods import method as registered
from bilinrec.models.lrs import (
    NON_PRIVATE,
    RELEASE_LABELS,
    PrivacyBudget,
    accounting_cache,
    calibrate_noise_multiplier,
    default_clip_bounds,
    gaussian_epsilon,
    training_epsilon,
)
from bilinrec.models.lrs.audit import Canary, known_seed_audit, statistic_audit
from bilinrec.models.lrs.metrics import mse, normalized_error, subspace_distance
from bilinrec.models.lrs.synthetic import LRSProblem, make_problem
from bilinrec.seeds import derive_seed
from bilinrec.tables import display_table, summarize

__all__ = [
    "COMPARED_METHODS",
    "DP_METHODS",
    "METRICS",
    "parse_epsilon",
    "precompute_accounting",
    "response_scale",
    "run_dp_audit",
    "run_dp_method",
    "audit_table",
    "utility_table",
]

log = logging.getLogger(__name__)

#: Methods whose fit consumes a privacy budget (one fit per epsilon).
DP_METHODS = ("dp_amht_lrs", "dp_altmin", "dp_global")
#: Every method of the experiment: the private ones, local-only (releases nothing) and the
#: non-private AMHT-LRS reference.
COMPARED_METHODS = DP_METHODS + ("local", "amht_lrs")
#: Reported metrics: test MSE on fresh samples, parameter error, subspace distance.
METRICS = ("test_mse", "error", "subspace_distance")
METRIC_LABELS = {
    "test_mse": "test MSE (fresh samples)",
    "error": r"parameter error $\|\hat\Theta-\Theta^*\|_F/\|\Theta^*\|_F$",
    "subspace_distance": r"subspace distance $\|(I-\hat U\hat U^\top)U^*\|_2$",
}


def parse_epsilon(value: Any) -> float:
    """A grid epsilon: a positive number or ``"inf"`` (no privacy)."""
    eps = float(value)
    if not eps > 0:
        raise ValueError(f"epsilon values must be positive or 'inf', got {value!r}")
    return eps


def response_scale(problem_cfg: Mapping[str, Any]) -> float:
    """A-priori RMS of ``y`` from the generator's public parameters:
    ``E y^2 = r w_scale^2 + b_scale^2 + noise^2`` for ``x ~ N(0, I_d)``."""
    return math.sqrt(
        problem_cfg["rank"] * problem_cfg["w_scale"] ** 2 + problem_cfg["b_scale"] ** 2 + problem_cfg["noise"] ** 2
    )


def make_dp_problem(cfg: Mapping[str, Any], n_users: int, seed: int) -> LRSProblem:
    """The problem of one (t, seed) cell, shared by every method and epsilon."""
    p = cfg["problem"]
    return make_problem(
        n_users, p["dim"], p["rank"], p["sparsity"], p["samples"], noise=p["noise"],
        w_scale=p["w_scale"], b_scale=p["b_scale"], seed=derive_seed(seed, "dp", "problem", n_users),
    )


def _test_samples(cfg: Mapping[str, Any], problem: LRSProblem, seed: int):
    """Fresh samples of a random subset of at most ``test_users`` users."""
    rng = np.random.default_rng(derive_seed(seed, "dp", "test", problem.n_users))
    n_eval = min(problem.n_users, int(cfg["test_users"]))
    users = np.sort(rng.choice(problem.n_users, size=n_eval, replace=False))
    users = np.repeat(users, int(cfg["n_test"]))
    X = rng.standard_normal((len(users), problem.dim))
    y = np.einsum("nd,nd->n", X, problem.theta[users]) + problem.noise * rng.standard_normal(len(users))
    return X, y, users


def _build(method: str, cfg: Mapping[str, Any], n_users: int, epsilon: float, seed: int):
    p, mech = cfg["problem"], cfg["mechanism"]
    privacy = PrivacyBudget(epsilon, float(cfg["delta"]))
    clip = default_clip_bounds(p["dim"], p["samples"], response_scale(p), mech["clip_multiplier"])
    release = _release_options(mech, derive_seed(seed, "dp", "noise", method, n_users, epsilon))
    if method not in COMPARED_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {COMPARED_METHODS}")
    if method in ("dp_amht_lrs", "dp_altmin"):
        params = dict(rank=p["rank"], sparsity=p["sparsity"] if method == "dp_amht_lrs" else 0, privacy=privacy,
                      clip=clip, max_rounds=mech["max_rounds"], sampling_rate=mech["sampling_rate"],
                      ridge_factor=mech["ridge_factor"], accountant=mech["accountant"], random_state=seed,
                      amht_options=dict(cfg["estimator"]), **release)
    elif method == "dp_global":
        params = dict(privacy=privacy, clip=clip, ridge_factor=mech["ridge_factor"],
                      sampling_rate=mech["sampling_rate"], accountant=mech["accountant"], **release)
    elif method == "local":
        params = dict(alpha=cfg["local_alpha"])
    else:
        params = dict(rank=p["rank"], sparsity=p["sparsity"], **(dict(cfg["estimator"]) | dict(cfg["reference"])))
    return build(method, **params)


def release_mode(cfg: Mapping[str, Any]) -> str:
    """The grid's release mode (``mechanism.mode``; simulation unless configured otherwise)."""
    return cfg["mechanism"].get("mode", "simulation")


def _release_options(mech: Mapping[str, Any], noise_seed: int) -> dict[str, Any]:
    """Estimator options of the release mode: a simulation gets its seeded noise, a private
    release no seed at all (its noise comes from OS entropy)."""
    mode = mech.get("mode", "simulation")
    return {"mode": "simulation", "noise_seed": noise_seed} if mode == "simulation" else {"mode": mode}


def _release_label(method: str, epsilon: float, mode: str) -> str:
    if method == "local":
        return "nothing released"
    if not math.isfinite(epsilon) or method not in DP_METHODS:
        return NON_PRIVATE
    return RELEASE_LABELS[mode]


def _clipped_summary(model) -> dict[str, float]:
    fractions = getattr(model, "clipped_fraction_", None)
    if not fractions:
        return {}
    if isinstance(fractions, dict):
        return {f"clipped_{k}": v for k, v in fractions.items()}
    keys = sorted({k for release in fractions for k in release})
    return {f"clipped_{k}": float(np.mean([r[k] for r in fractions if k in r])) for k in keys}


def precompute_accounting(cfg: Mapping[str, Any]) -> dict[str, list[dict]]:
    """Calibrate the noise multiplier, and account the achieved epsilon, of every private
    (method, epsilon) of the grid once. They depend on neither the seed nor t, so the
    :func:`bilinrec.models.lrs.load_accounting_cache` records let every run skip the accountant."""
    models = [_build(method, cfg, 0, epsilon, 0) for method in cfg["methods"] if method in DP_METHODS
              for epsilon in (parse_epsilon(e) for e in cfg["epsilons"])]
    if cfg.get("audit"):
        models += [_audit_model(cfg, epsilon, "simulation", 0) for epsilon in audit_epsilons(cfg)]
    for model in models:
        if not model.privacy.is_private:
            continue
        schedule = model.release_schedule()
        sigma = calibrate_noise_multiplier(model.privacy, schedule, model.sampling_rate, model.accountant)
        training_epsilon(sigma, schedule, model.sampling_rate, model.privacy.delta, model.accountant)
    return accounting_cache()


def run_dp_method(cfg: Mapping[str, Any], n_users: int, seed: int, method: str) -> list[dict]:
    """Fit ``method`` on the (t, seed) problem for every epsilon of the grid (once for methods
    that release nothing or are not private) and return one record per fit."""
    if method not in COMPARED_METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {COMPARED_METHODS}")
    epsilons = [parse_epsilon(e) for e in cfg["epsilons"]]
    problem = make_dp_problem(cfg, n_users, seed)
    X_test, y_test, users_test = _test_samples(cfg, problem, seed)
    if method in DP_METHODS:
        grid = epsilons
    else:  # local-only releases nothing (epsilon 0); the reference is non-private (inf)
        grid = [0.0 if method == "local" else math.inf]
    records = []
    for epsilon in grid:
        model = _build(method, cfg, problem.n_users, epsilon if epsilon > 0 else math.inf, seed)
        start = time.perf_counter()
        model.fit(problem.X, problem.y, problem.users, n_users=problem.n_users)
        seconds = time.perf_counter() - start
        declared = registered(method)
        theta = declared.theta(model, problem.n_users)
        predict = model.predict(X_test, users_test)
        record = {
            "method": method, "n_users": n_users, "seed": seed, "epsilon": epsilon,
            "delta": float(cfg["delta"]) if math.isfinite(epsilon) and epsilon > 0 else 0.0,
            "release": _release_label(method, epsilon, release_mode(cfg)),
            "epsilon_achieved": model.epsilon_ if declared.private else epsilon,
            "noise_multiplier": model.noise_multiplier_ if declared.private else 0.0,
            "test_mse": mse(predict, y_test),
            "error": normalized_error(theta, problem.theta),
            "subspace_distance": subspace_distance(model.U_, problem.U) if declared.shared_subspace else np.nan,
            "seconds": seconds,
        } | _clipped_summary(model)
        log.info("%s t=%d seed=%d eps=%g: %s", method, n_users, seed, epsilon,
                 {k: record[k] for k in ("epsilon_achieved", "test_mse", "error", "subspace_distance", "seconds")})
        records.append(record)
    return records


# --------------------------------------------------------------------------------------
# Privacy audit (canary membership inference -> empirical lower bound on epsilon, with its ceiling)
# --------------------------------------------------------------------------------------
#: How the audit table names each attack.
AUDIT_ATTACKS = {
    "likelihood_ratio": "likelihood-ratio test on the released statistics (mechanism alone)",
    "known_seed": "known noise seed (whole fits)",
}


def audit_epsilons(cfg: Mapping[str, Any]) -> list[float]:
    """The epsilons the canary audit covers: ``audit.epsilons`` or every finite grid epsilon;
    the known-seed attack's epsilon is always included."""
    audit = cfg["audit"]
    grid = audit.get("epsilons") or [e for e in cfg["epsilons"] if math.isfinite(parse_epsilon(e))]
    eps = sorted({parse_epsilon(e) for e in grid} | {parse_epsilon(audit["known_seed_epsilon"])})
    if not all(math.isfinite(e) for e in eps):
        raise ValueError("audit epsilons must be finite")
    return eps


def _audit_model(cfg: Mapping[str, Any], epsilon: float, mode: str, noise_seed: int | None) -> Any:
    """DP-AMHT-LRS on the audit's small problem with the grid's mechanism (rounds, accountant,
    delta: the same release schedule, hence the same calibrated noise)."""
    p, mech = cfg["audit"]["problem"], cfg["mechanism"]
    scale = math.sqrt(p["rank"] + 1.0)  # a-priori RMS of y for unit-variance heads and |b| = 1
    clip = default_clip_bounds(p["dim"], p["samples"], scale, mech["clip_multiplier"])
    seeded = {"mode": "simulation", "noise_seed": noise_seed} if mode == "simulation" else {"mode": "private"}
    return build(
        "dp_amht_lrs", rank=p["rank"], sparsity=p["sparsity"], privacy=PrivacyBudget(epsilon, float(cfg["delta"])),
        clip=clip,
        max_rounds=mech["max_rounds"], sampling_rate=mech["sampling_rate"], ridge_factor=mech["ridge_factor"],
        accountant=mech["accountant"], random_state=noise_seed, amht_options=dict(cfg["estimator"]), **seeded,
    )


def _audit_controls(audit: Mapping[str, Any]) -> list[tuple[str, float, bool]]:
    """``(control, noise_scale, canary)`` of the likelihood-ratio audits at one epsilon: the real
    mechanism, every planted-broken noise scale, and the null control (no canary) at the
    smallest noise scale."""
    scales = sorted({float(s) for s in audit["broken_noise_scales"]}, reverse=True)
    if not all(0 < s < 1 for s in scales):
        raise ValueError(f"dp.audit.broken_noise_scales must lie in (0, 1), got {audit['broken_noise_scales']}")
    return ([("real", 1.0, True)] + [("broken", s, True) for s in scales]
            + [("null", min(scales, default=1.0), False)])


def run_dp_audit(cfg: Mapping[str, Any], seed: int) -> list[dict]:
    """Audit DP-AMHT-LRS with a canary user (:mod:`bilinrec.models.lrs.audit`).

    The data set: ``audit.problem.n_users`` users with Gaussian features and ``y = 0`` (DP must
    hold for every data set). The canary: Gaussian features scaled by ``canary_scale`` times the
    a-priori scale, ``theta`` along the all-ones direction, so that it sits at every clip bound.
    Records: at every audit epsilon, the likelihood-ratio audit of the private mode's mechanism
    (``control="real"``), of planted-broken copies with the noise times each of
    ``broken_noise_scales`` (which it must refute where its ceiling allows) and of the null
    control (no canary: bound 0); and the known-seed attack on whole fits of the simulation and
    the private mode at ``known_seed_epsilon``. ``mechanism_epsilon`` is the exact epsilon of the
    audited mechanism (NaN for the seeded simulation, which is not private at all).
    """
    audit, p = cfg["audit"], cfg["audit"]["problem"]
    rng = np.random.default_rng(derive_seed(seed, "dp", "audit", "data"))
    t, d, m = int(p["n_users"]), int(p["dim"]), int(p["samples"])
    X, y, users = rng.standard_normal((t * m, d)), np.zeros(t * m), np.repeat(np.arange(t), m)
    a_priori = math.sqrt(p["rank"] + 1.0)
    canary = Canary.along(np.ones(d), m, audit["canary_scale"] * math.sqrt(d), audit["canary_scale"] * a_priori,
                          seed=derive_seed(seed, "dp", "audit", "canary"))
    delta, confidence = float(cfg["delta"]), float(audit["confidence"])
    records = []

    def record(result, mode, control, noise_scale, canary_present, epsilon, noise_multiplier, true_epsilon, start):
        log.info("audit %s (%s, noise x %g) vs %s at eps=%g: eps_lb=%.3f, ceiling %.3f (TPR %.4f, FPR %.4f)",
                 result.attack, control, noise_scale, mode, epsilon, result.epsilon_lb, result.ceiling,
                 result.tpr, result.fpr)
        records.append({"method": "dp_amht_lrs", "mode": mode, "control": control, "noise_scale": noise_scale,
                        "canary": canary_present, "epsilon": epsilon, "delta": delta,
                        "noise_multiplier": noise_multiplier, "mechanism_epsilon": true_epsilon,
                        "seconds": time.perf_counter() - start} | result.as_dict())

    for epsilon in audit_epsilons(cfg):
        model = _audit_model(cfg, epsilon, "private", None)
        for control, noise_scale, canary_present in _audit_controls(audit):
            start = time.perf_counter()
            result = statistic_audit(model, X, y, users, canary, trials=int(audit["trials"]),
                                     calibration_trials=int(audit["calibration_trials"]), confidence=confidence,
                                     noise_scale=noise_scale, canary_present=canary_present)
            sigma = model.mechanism(noise_scale).noise_multiplier
            record(result, "private", control, noise_scale, canary_present, epsilon, sigma,
                   gaussian_epsilon(sigma, model.release_schedule(), delta), start)

    known = parse_epsilon(audit["known_seed_epsilon"])
    trial_seed0 = derive_seed(seed, "dp", "audit", "trials") % 2**40  # public, like every workflow seed

    def fitter(mode):
        """The released ``U`` of one whole fit in ``mode`` under a trial's public seed (a private
        fit uses it as ``random_state`` only)."""
        return lambda X_, y_, u_, s: _audit_model(cfg, known, mode, s).fit(X_, y_, u_).U_

    model = _audit_model(cfg, known, "private", None)
    sigma = model.mechanism().noise_multiplier
    for mode in ("simulation", "private"):
        start = time.perf_counter()
        result = known_seed_audit(fitter(mode), X, y, users, canary, trials=int(audit["known_seed_trials"]),
                                  delta=delta, confidence=confidence, seed=trial_seed0, refit=fitter("simulation"))
        true_epsilon = gaussian_epsilon(sigma, model.release_schedule(), delta) if mode == "private" else math.nan
        record(result, mode, "real", 1.0, True, known, sigma, true_epsilon, start)
    return records


def _noise_text(scale: float) -> str:
    return "σ" if scale == 1 else f"σ/{1 / scale:g}"


def _audit_verdict(row) -> str:
    if row["ceiling"] <= row["epsilon"]:
        return f"cannot test ε = {row['epsilon']:g} (ceiling {row['ceiling']:.2f})"
    return "claim refuted" if row["epsilon_lb"] > row["epsilon"] else "not refuted"


def _audit_expected(row) -> str:
    """What a working audit must say on this row (its power and its null)."""
    if row["ceiling"] <= row["epsilon"]:
        return _audit_verdict(row)
    if row["control"] == "null":
        return "ε lower bound 0"
    refutable = row["control"] == "broken" or row["mode"] == "simulation"
    return "claim refuted" if refutable else "not refuted"


def audit_table(audit: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The audit records and their display form: attack, what is audited (the real mechanism or
    a planted control), claimed and true epsilon, rates, the lower bound next to its ceiling,
    the verdict and the verdict a working audit must give."""
    order = {"real": 0, "broken": 1, "null": 2}
    summary = audit.sort_values(["attack", "mode", "epsilon", "control", "noise_scale"],
                                key=lambda s: s.map(order) if s.name == "control" else s,
                                ascending=[False, True, True, True, False]).reset_index(drop=True)
    summary["refutes_claim"] = summary["epsilon_lb"] > summary["epsilon"]
    summary["testable"] = summary["ceiling"] > summary["epsilon"]
    summary["verdict"] = summary.apply(_audit_verdict, axis=1)
    summary["expected"] = summary.apply(_audit_expected, axis=1)
    summary["as_expected"] = [(v == "not refuted" and lb == 0) if e == "ε lower bound 0" else v == e for v, e, lb
                              in zip(summary["verdict"], summary["expected"], summary["epsilon_lb"])]
    audited = []
    for row in summary.itertuples():
        if row.attack == "known_seed":
            audited.append(RELEASE_LABELS[row.mode])
        elif row.control == "null":
            audited.append(f"null control: no canary ({_noise_text(row.noise_scale)})")
        elif row.control == "broken":
            audited.append(f"planted-broken control: noise {_noise_text(row.noise_scale)}")
        else:
            audited.append(f"real mechanism (noise σ): {RELEASE_LABELS[row.mode]}")
    shown = pd.DataFrame({
        "attack": summary["attack"].map(AUDIT_ATTACKS),
        "audited": audited,
        "claimed ε": [f"{e:g}" for e in summary["epsilon"]],
        "true ε": ["n/a (seeded)" if not np.isfinite(v) else f"{v:.3g}" for v in summary["mechanism_epsilon"]],
        "trials per side": [f"{n}" + (f" (+{c} calibration)" if c else "")
                            for n, c in zip(summary["trials"], summary["calibration_trials"])],
        "TPR": summary["tpr"].map(lambda v: f"{v:.4f}"),
        "FPR": summary["fpr"].map(lambda v: f"{v:.4f}"),
        "ε lower bound": summary["epsilon_lb"].map(lambda v: f"{v:.2f}"),
        "ceiling": [f"{v:.2f} ({c:.0%})" for v, c in zip(summary["ceiling"], summary["confidence"])],
        "verdict": summary["verdict"],
        "expected": summary["expected"],
    })
    return summary, shown


def utility_table(records: pd.DataFrame, audit: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean, std and count of every metric per (t, epsilon, method) and its display form, with
    each row's release kind and, for DP-AMHT-LRS, the likelihood-ratio audit's epsilon lower bound
    of the private mode's mechanism at that epsilon and its ceiling (``audit``, from
    :func:`run_dp_audit`)."""
    if "release" not in records:  # records written before the release column existed
        records = records.assign(release="simulation (seeded noise; not a private release)")
    by = ["n_users", "epsilon", "method", "release"]
    metrics = list(METRICS) + ["epsilon_achieved"]
    summary = summarize(records, by, metrics)
    summary["audit_epsilon_lb"] = summary["audit_ceiling"] = np.nan
    if audit is not None and not audit.empty:
        real = audit[(audit["attack"] == "likelihood_ratio") & (audit["control"] == "real")].set_index(
            ["method", "epsilon"])
        keys = pd.MultiIndex.from_arrays([summary["method"], summary["epsilon"]])
        for column in ("epsilon_lb", "ceiling"):
            summary[f"audit_{column}"] = real[column].reindex(keys).to_numpy()
    order = {m: i for i, m in enumerate(COMPARED_METHODS)}
    summary = summary.sort_values(["n_users", "epsilon", "method"], key=lambda s: s.map(order) if s.name == "method" else s)
    summary = summary.reset_index(drop=True)
    shown = display_table(summary, by, METRICS)
    shown["method"] = shown["method"].map(method_label)
    shown["epsilon"] = [_epsilon_text(e) for e in summary["epsilon"]]
    shown["achieved epsilon"] = [
        "n/a" if not (math.isfinite(e) and e > 0) else f"{e:.3f}" for e in summary["epsilon_achieved_mean"]
    ]
    shown["audit ε lower bound (ceiling)"] = [
        "n/a" if not np.isfinite(v) else f"{v:.2f} ({c:.2f})" for v, c in zip(summary["audit_epsilon_lb"],
                                                                              summary["audit_ceiling"])
    ]
    shown = shown.rename(columns={"n_users": "users t", "test_mse": "test MSE",
                                  "error": "parameter error", "subspace_distance": "subspace distance"})
    return summary, shown


def _epsilon_text(eps: float) -> str:
    if eps == 0:
        return "0 (nothing released)"
    return "∞" if math.isinf(eps) else f"{eps:g}"
