"""A fair race between unlearning and retraining from scratch.

Every racer minimises the same objective -- implicit ALS on the REDUCED data with confidences
recomputed on it -- and stops by the same rule: the first sweep whose relative objective change is
below ``tol``. Two views per racer:

* **same stopping rule**: sweeps (deterministic: sweep equivalents, i.e. row solves / (users +
  items), so unlearning's local update counts as a partial sweep) and solve seconds until the rule
  stops it, and the objective it stopped at;
* **converged target**: sweeps and seconds until the objective is within ``within`` (relative) of
  the *converged* objective ``F*`` -- the lowest objective any racer reached on the reduced data
  (the accelerated exact racers, or without the ``exact_accelerated`` peer the plain exact ones,
  continue until their relative change falls below ``converge_tol`` or ``converge_max_sweeps``;
  ``converged_by`` names the racer, and its last change is reported). Plain ALS at small
  regularization converges sublinearly: a plain racer stops at the rule and usually ends short of
  the target (NaN: never reached within its run).

Retraining peers: our exact solver (``exact``), our conjugate-gradient solver with 3 steps as the
authors used (``cg``), the ``implicit`` library's CPU CG solver (``implicit``), and our exact
solver accelerated by ``acceleration`` (``exact_accelerated``; balanced Anderson by default), all from the
same random start.
Unlearning is Unlearn-ALS in retrain mode (exact solver) from the original model (``unlearn``);
like for like, with the ``cg`` peer also CG Unlearn-ALS (``unlearn_cg``, 3 steps, the same stopping
rule) and with the ``exact_accelerated`` peer accelerated Unlearn-ALS (``unlearn_accelerated``).
Speedups are reported against each peer, in sweeps (deterministic) and in solve seconds (``*_timing`` columns: wall clock, machine-dependent).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from bilinrec.models.als import ALS, Weighting, apply_deletions, user_history

#: Deletion sizes: one record, one user's history, or a share of all training positives.
SIZE_NAMES = ("record", "user")
PEERS = ("exact", "cg", "implicit", "exact_accelerated")


def deletion_set(train: sp.csr_matrix, size: Any, stratum: str, rng: np.random.Generator,
                 quantile: float = 0.1) -> np.ndarray:
    """Deleted ``(n, 2)`` pairs: ``size`` is "record", "user" or a fraction of all positives.

    ``stratum`` "uniform" draws from all positives; "popular" from the positives of the top
    ``quantile`` items by popularity (the fraction still counts all positives, capped at the
    stratum's size); "record"/"user" draw one positive / one user with the median activity."""
    coo = train.tocoo()
    pairs = np.column_stack([coo.row, coo.col]).astype(np.int64)
    if stratum == "popular":
        popularity = np.bincount(coo.col, minlength=train.shape[1])
        cutoff = np.quantile(popularity[popularity > 0], 1 - quantile)
        pool = pairs[popularity[pairs[:, 1]] >= cutoff]
    elif stratum == "uniform":
        pool = pairs
    else:
        raise ValueError(f"stratum must be 'uniform' or 'popular', got {stratum!r}")
    if size == "record":
        return pool[rng.integers(len(pool))][None, :]
    if size == "user":
        activity = np.bincount(pool[:, 0], minlength=train.shape[0])
        users = np.flatnonzero(activity > 0)
        median = np.median(activity[users])
        candidates = users[np.abs(activity[users] - median) == np.abs(activity[users] - median).min()]
        return user_history(train, [int(rng.choice(candidates))])
    n = int(round(float(size) * len(pairs)))
    if n < 1:
        raise ValueError(f"fraction {size} of {len(pairs)} positives deletes nothing")
    n = min(n, len(pool))
    chosen = pool[np.sort(rng.choice(len(pool), size=n, replace=False))]
    return chosen


def _rule_point(history: Sequence[Mapping[str, Any]], tol: float) -> int:
    """Index of the record at which the stopping rule stops (first sweep with rel_change < tol)."""
    for i, rec in enumerate(history):
        if rec["phase"] == "sweep" and rec["rel_change"] is not None and rec["rel_change"] < tol:
            return i
    return len(history) - 1


def _views(history: Sequence[Mapping[str, Any]], n_rows: int, tol: float, target: float) -> dict[str, Any]:
    rows = np.cumsum([rec.get("rows_solved", 0) for rec in history]) / float(n_rows)
    seconds = np.cumsum([rec["seconds"] for rec in history])
    objective = np.array([rec["objective"] for rec in history])
    stop = _rule_point(history, tol)
    hit = np.flatnonzero(objective[1:] <= target)
    at = hit[0] + 1 if hit.size else None
    last = history[stop]["rel_change"]
    return {
        "rule_sweeps": float(rows[stop]), "rule_seconds_timing": float(seconds[stop]),
        "rule_objective": float(objective[stop]), "rule_stopped": bool(last is not None and last < tol),
        "target_sweeps": float(rows[at]) if at is not None else float("nan"),
        "target_seconds_timing": float(seconds[at]) if at is not None else float("nan"),
    }


def _implicit_history(C: sp.csr_matrix, U0: np.ndarray, V0: np.ndarray, params: Mapping[str, Any],
                      max_sweeps: int, tol: float) -> list[dict[str, Any]] | None:
    """``implicit``'s CPU CG ALS (3 CG steps, its default), one sweep per ``fit`` call, objective
    evaluated by bilinrec outside the timed region. A configured peer that cannot run is an error
    naming the config key, never a silent drop."""
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:
        raise RuntimeError(f"unlearn.race.peers lists 'implicit', but the implicit library cannot be imported "
                           f"({exc}); install the project again (pip install -e .) or remove the peer") from None
    from threadpoolctl import threadpool_limits

    evaluator = ALS.from_factors(U0.astype(np.float64), V0.astype(np.float64),
                                 regularization=params["regularization"])
    Cf = C.astype(np.float32)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AlternatingLeastSquares(factors=U0.shape[1], regularization=params["regularization"], iterations=1,
                                        use_cg=True, dtype=np.dtype(params["dtype"]),
                                        calculate_training_loss=False, num_threads=1, random_state=0)
        model.cg_steps = 3  # implicit's default, set explicitly (authors' setting)
        model.user_factors, model.item_factors = U0.copy(), V0.copy()
        history = [{"phase": "start", "objective": evaluator.objective(C), "rel_change": None, "seconds": 0.0,
                    "rows_solved": 0}]
        for _ in range(max_sweeps):
            t0 = time.perf_counter()
            model.fit(Cf, show_progress=False)
            seconds = time.perf_counter() - t0
            evaluator.user_factors_ = np.asarray(model.user_factors, np.float64)
            evaluator.item_factors_ = np.asarray(model.item_factors, np.float64)
            obj = evaluator.objective(C)
            prev = history[-1]["objective"]
            history.append({"phase": "sweep", "objective": obj, "rel_change": abs(prev - obj) / abs(prev),
                            "seconds": seconds, "rows_solved": sum(C.shape)})
            if history[-1]["rel_change"] < tol:
                break
    return history


def race_one(train: sp.csr_matrix, weighting: Weighting, original: ALS, deletions: np.ndarray,
             params: Mapping[str, Any], seed: int, cfg: Mapping[str, Any], converge: bool = True) -> list[dict[str, Any]]:
    """Race every peer of ``cfg["peers"]`` and Unlearn-ALS (and, with the ``exact_accelerated`` peer,
    accelerated Unlearn-ALS) on one deletion set; one row per racer, speedups on the unlearners'.

    Without ``converge`` exact retraining and unlearning stop at the rule and the converged-target
    columns are NaN (the converged view is the expensive part)."""
    tol, within = float(cfg["tol"]), float(cfg["within"])
    max_sweeps = int(cfg["max_sweeps"])
    accelerated = "exact_accelerated" in cfg["peers"]
    acceleration = cfg["acceleration"] if accelerated else None
    # the converged view continues the accelerated exact racers past the rule (plain ALS at small
    # regularization does not reach the target in thousands of sweeps); without them, the plain exact ones
    continued = {"exact_accelerated", "unlearn_accelerated"} if accelerated else {"exact", "unlearn"}

    def stopping(racer: str) -> dict[str, Any]:
        if converge and racer in continued:
            return {"iterations": int(cfg["converge_max_sweeps"]), "tol": float(cfg["converge_tol"])}
        return {"iterations": max_sweeps, "tol": tol}

    X_red = apply_deletions(train, deletions, "retrain").C
    C_red = weighting(X_red)
    n_rows = sum(train.shape)
    base = {**params, "weighting": weighting, "random_state": int(seed)}
    exact = ALS(**{**base, "solver": "cholesky", **stopping("exact")}).fit(X_red)
    histories: dict[str, list] = {"exact": exact.history_}
    start = ALS(**{**base, "iterations": 0})
    start.fit(X_red)  # the common random start of the retraining peers
    if "cg" in cfg["peers"]:
        # compile (or load) the Numba kernel outside the timed region
        ALS(factors=2, solver="cg", iterations=1, dtype=base["dtype"]).fit(sp.identity(3, format="csr"))
        histories["cg"] = ALS(**{**base, "solver": "cg", "cg_steps": 3, "iterations": max_sweeps,
                                 "tol": tol}).fit(X_red).history_
    if "implicit" in cfg["peers"]:
        histories["implicit"] = _implicit_history(C_red, start.user_factors_, start.item_factors_, base,
                                                  max_sweeps, tol)
    rule = stopping("unlearn")
    unlearners = {"unlearn": original.copy().set_params(weighting=weighting, acceleration=None).unlearn(
        train, deletions, max_iterations=rule["iterations"], tol=rule["tol"]).history_}
    if "cg" in cfg["peers"]:  # like for like: CG unlearning against CG retraining, same stopping rule
        unlearners["unlearn_cg"] = original.copy().set_params(weighting=weighting, acceleration=None, cg_steps=3) \
            .unlearn(train, deletions, max_iterations=max_sweeps, tol=tol, solver="cg").history_
    if accelerated:  # like for like: accelerated unlearning against accelerated retraining
        histories["exact_accelerated"] = ALS(**{**base, "solver": "cholesky", "acceleration": acceleration,
                                             **stopping("exact_accelerated")}).fit(X_red).history_
        rule = stopping("unlearn_accelerated")
        unlearners["unlearn_accelerated"] = original.copy().set_params(weighting=weighting, acceleration=acceleration) \
            .unlearn(train, deletions, max_iterations=rule["iterations"], tol=rule["tol"]).history_
    # F*: the lowest objective any racer reached (every racer minimises the same function)
    finals = {f"retrain_{p}": h for p, h in histories.items()} | unlearners
    best = min(finals, key=lambda name: finals[name][-1]["objective"])
    f_star = finals[best][-1]["objective"]
    target = f_star * (1 + within)
    rows = [{"racer": name, **_views(hist, n_rows, tol, target)} for name, hist in finals.items()]
    if not converge:
        for row in rows:
            row["target_sweeps"] = row["target_seconds_timing"] = float("nan")
    for row in rows:
        row.update(n_deleted=len(deletions), converged_view=bool(converge), converged_objective=f_star,
                   converged_by=best, converged_last_rel_change=float(finals[best][-1]["rel_change"] or np.nan),
                   converged_sweeps=int(sum(r["phase"] == "sweep" for r in finals[best])))
        row["rule_objective_gap"] = (row["rule_objective"] - f_star) / abs(f_star)
    by_name = {row["racer"]: row for row in rows}
    for unlearner in unlearners:
        unl_row = by_name[unlearner]
        for peer in histories:
            ref = by_name[f"retrain_{peer}"]
            for view in ("rule", "target"):
                unl_row[f"speedup_{view}_sweeps_vs_{peer}"] = ref[f"{view}_sweeps"] / unl_row[f"{view}_sweeps"]
                unl_row[f"speedup_{view}_seconds_timing_vs_{peer}"] = (ref[f"{view}_seconds_timing"]
                                                                      / unl_row[f"{view}_seconds_timing"])
    return rows


def run_race(train: sp.csr_matrix, weighting: Weighting, original: ALS, params: Mapping[str, Any], seed: int,
             cfg: Mapping[str, Any], rng: np.random.Generator, log=None) -> pd.DataFrame:
    """The race over ``cfg["sizes"]`` x ``cfg["strata"]`` ("record" and "user" run once, uniform);
    the converged view only for the sizes of ``cfg["converge_sizes"]`` (all when absent)."""
    rows = []
    converge_sizes = [str(s) for s in (cfg.get("converge_sizes") or cfg["sizes"])]
    for size in cfg["sizes"]:
        for stratum in (["uniform"] if size in SIZE_NAMES else cfg["strata"]):
            deletions = deletion_set(train, size, stratum, rng, float(cfg.get("quantile", 0.1)))
            converge = str(size) in converge_sizes
            for row in race_one(train, weighting, original, deletions, params, seed, cfg, converge):
                rows.append({"size": str(size), "stratum": stratum, "seed": int(seed), **row})
            if log is not None:
                done = [r for r in rows if r["size"] == str(size) and r["stratum"] == stratum]
                log.info("race %s/%s: %d deleted; %s", size, stratum, len(deletions), "; ".join(
                    f"{r['racer']} {r['rule_sweeps']:.1f} sweeps {r['rule_seconds_timing']:.1f} s "
                    f"gap {r['rule_objective_gap']:.2e} target {r['target_sweeps']:.1f} sweeps" for r in done))
    return pd.DataFrame(rows)


SHOWN = ["size", "stratum", "n_deleted", "racer", "rule_sweeps", "rule_seconds_timing", "rule_objective_gap",
         "target_sweeps", "target_seconds_timing"]


def race_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, size, stratum, racer) with mean over seeds; speedups on the unlearn rows."""
    keys = [c for c in ("dataset", "size", "stratum", "racer") if c in df.columns]
    numeric = [c for c in df.columns if c not in keys and c != "seed" and pd.api.types.is_numeric_dtype(df[c])]
    out = df.groupby(keys, sort=False)[numeric].mean().reset_index()
    return out


def plot_race(df: pd.DataFrame):
    """Speedup of unlearning vs deletion size against each retraining peer: same stopping rule
    (sweeps, solid; solve seconds, dashed) per stratum; with the accelerated racers, accelerated
    unlearning against accelerated retraining to the matched quality target (black); CG unlearning
    against CG retraining at the rule (dotted)."""
    import matplotlib.pyplot as plt

    from bilinrec.experiments.methods import method_color, method_label

    unl = df[df["racer"] == "unlearn"]
    unl_acc = df[df["racer"] == "unlearn_accelerated"]
    datasets = sorted(unl["dataset"].unique()) if "dataset" in unl else [None]
    strata = sorted(unl["stratum"].unique())
    fig, axes = plt.subplots(len(datasets), len(strata), figsize=(5.0 * len(strata), 3.8 * len(datasets)),
                             squeeze=False)
    order = {s: i for i, s in enumerate(["record", "user"])}
    for r, ds in enumerate(datasets):
        for c, stratum in enumerate(strata):
            ax = axes[r, c]
            sub = unl[(unl["stratum"] == stratum) & ((unl["dataset"] == ds) if ds is not None else True)]
            # record and user runs are only uniform: draw them on every panel
            extra = unl[(unl["size"].isin(SIZE_NAMES)) & ((unl["dataset"] == ds) if ds is not None else True)]
            sub = pd.concat([extra, sub[~sub["size"].isin(SIZE_NAMES)]]).drop_duplicates(subset=["size"])
            sub = sub.assign(_k=sub["size"].map(lambda s: order.get(s, 2 + float(s) if s not in order else 0)))
            sub = sub.sort_values("_k")
            x = np.arange(len(sub))
            for peer in PEERS:
                col = f"speedup_rule_sweeps_vs_{peer}"
                if col not in sub or sub[col].isna().all():
                    continue
                key = f"retrain_{peer}"
                ax.plot(x, sub[col], marker="o", color=method_color(key), label=f"vs {method_label(key)} (sweeps)")
                tcol = f"speedup_rule_seconds_timing_vs_{peer}"
                ax.plot(x, sub[tcol], marker="x", ls="--", color=method_color(key), alpha=0.7,
                        label=f"vs {method_label(key)} (seconds)")
            cg = df[(df["racer"] == "unlearn_cg") & ((df["stratum"] == stratum) | df["size"].isin(SIZE_NAMES))]
            cg = cg[(cg["dataset"] == ds) if ds is not None else True]
            col = "speedup_rule_sweeps_vs_cg"
            if col in cg and cg[col].notna().any():
                values = cg.drop_duplicates(subset=["size"]).set_index("size")[col].reindex(sub["size"])
                ax.plot(x, values.to_numpy(), marker="^", ls=":", color=method_color("retrain_cg"),
                        label="CG unlearning vs CG retraining (sweeps)")
            matched = unl_acc[(unl_acc["stratum"] == stratum) | unl_acc["size"].isin(SIZE_NAMES)]
            matched = matched[(matched["dataset"] == ds) if ds is not None else True]
            col = "speedup_target_sweeps_vs_exact_accelerated"
            if col in matched and matched[col].notna().any():
                values = matched.drop_duplicates(subset=["size"]).set_index("size")[col].reindex(sub["size"])
                ax.plot(x, values.to_numpy(), marker="s", color="k", lw=2,
                        label="accelerated, to the matched target (sweeps)")
            ax.set_xticks(x, [s if s in SIZE_NAMES else f"{100 * float(s):g}%" for s in sub["size"]])
            ax.set_yscale("log")
            ax.axhline(1.0, color="k", lw=0.8)
            ax.set_xlabel("deletion size")
            ax.set_ylabel("speedup of unlearning")
            ax.set_title(f"{ds or ''} {stratum} deletions".strip())
    axes[0, 0].legend(fontsize=6, framealpha=0.7)
    fig.tight_layout()
    return fig
