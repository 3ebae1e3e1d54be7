"""Claims B1–B5 (Paper B, Unlearn-ALS), decided by the per-seed table ``unlearn_paired``.

Every unlearning claim is a *paired* statistic per seed: the unlearned model minus the model
retrained from scratch with the same init seed, judged against the seed noise of retraining
itself (retrained with another init seed minus retrained). Everything is decided at *matched
convergence*: a model counts only where it ended at a fixed point of the retraining objective
(``at_target``: one more exact sweep changes it by less than ``unlearn.evaluation.fixed_point_tol``);
an unlearner short of it fails, a retraining band short of it leaves the claim unmeasured. Consistency (B1, B2's forgetting precondition, B4) is a calibrated test
(:func:`consistency`): an ideal unlearner -- one more retrain from a new seed -- passes every
check of the run with probability ``level`` when the seed noise is normal; each consistency
claim's detail also states how often it passes one on the run's own seed noise
(:func:`band_pass_rate`), which retrains ending at different fixed points make heavy-tailed.
B3 is the cost to the target.

Each claim carries controls (:mod:`bilinrec.experiments.verdict`): the untouched original model,
naive fine-tuning and the *near misses* -- Unlearn-ALS with the confidences frozen (not exact for
BM25) and Unlearn-ALS stopped after the fixed budget of sweeps -- must fail it; a *planted*
control -- a third retrain from a new seed in the unlearner's place (``band_size >= 3``) -- must
pass it. Otherwise the claim is "uninformative".
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd

from bilinrec.experiments.unlearn.report import POPULARITY
from bilinrec.experiments.verdict import (
    Claim,
    ClaimInputError,
    Control,
    Outcome,
    Tables,
    decide,
    not_measured,
    planted,
)

_RUN = ["dataset", "strategy", "fraction"]
_SEED = [*_RUN, "seed"]
UNLEARNED = "unlearn_retrain"
RETRAINED, RETRAINED_OTHER_SEED, RETRAINED_PLANTED = "retrained", "retrained_b1", "retrained_b2"
UNLEARN_PAIRED_COLUMNS = (*_SEED, "model", "heldout_auc", "deleted_mean_score", "mia_threshold_heldout",
                          "objective_gap", "sweep_equivalents", "at_target", "target_sweep_equivalents")
#: Retrains (each at a fixed point) whose objectives differ by at least this (relative) ended at
#: different fixed points: farther apart than the race's matched-quality band (``race.within``)
#: and than the spread of converged retrains on ml-100k (up to 7e-5).
DISTINCT_OBJECTIVES = 1e-4
#: Draws of the Monte Carlo calibration of :func:`critical_value` (fixed seed: deterministic).
CALIBRATION_DRAWS = 400_000
#: Random role assignments of :func:`band_pass_rate` (fixed seed: deterministic; its standard
#: error is at most 0.05).
BAND_DRAWS = 100


def _wide(paired: pd.DataFrame, column: str, models: tuple[str, ...]) -> pd.DataFrame:
    """Per (run, seed): ``column`` of each of ``models`` side by side (rows lacking one dropped)."""
    wide = paired.pivot_table(index=_SEED, columns="model", values=column, aggfunc="first", dropna=False)
    missing = [m for m in models if m not in wide.columns]
    if missing:
        raise ClaimInputError(f"unlearn_paired has no rows for models {missing}")
    return wide[list(models)].dropna()


def _has_band(paired: pd.DataFrame) -> bool:
    return RETRAINED_OTHER_SEED in set(paired["model"])


def _band_short_of_target(paired: pd.DataFrame) -> str | None:
    """Why the retraining band cannot be compared at matched convergence (None: it can): runs
    where a band member the claims read ended short of the quality target."""
    at = _wide(paired, "at_target", (RETRAINED, RETRAINED_OTHER_SEED)).astype(bool)
    short = at[~at.all(axis=1)]
    if short.empty:
        return None
    first = ", ".join(f"{d}/{s}/{f}/seed {seed}" for d, s, f, seed in short.index[:3])
    return (f"the retraining band did not reach the matched quality target in {len(short)} of {len(at)} runs "
            f"(e.g. {first}): raise unlearn.model.iterations or lower unlearn.model.tol")


def _several_fixed_points(paired: pd.DataFrame) -> str:
    """A note for the consistency claims when retrains from different seeds end at different fixed
    points (objectives at least ``DISTINCT_OBJECTIVES`` apart, relative; empty when none do): the
    seed noise is then a rare large jump, which a few seeds rarely see, so an ideal unlearner
    (the planted retrain) can fail the calibrated test."""
    if "objective_gap" not in paired:  # (an in-memory table without it; files always carry it)
        return ""
    band = (RETRAINED_OTHER_SEED, RETRAINED_PLANTED) if RETRAINED_PLANTED in set(paired["model"]) \
        else (RETRAINED_OTHER_SEED,)
    gaps = _wide(paired, "objective_gap", band).abs()
    apart = (gaps >= DISTINCT_OBJECTIVES).any(axis=1)
    if not apart.any():
        return ""
    datasets = sorted(set(apart[apart].index.get_level_values("dataset")))
    return (f"; several fixed points: retrains from other seeds end {gaps.to_numpy().max():.1e} (relative objective) "
            f"away in {int(apart.sum())} of {len(apart)} runs ({', '.join(datasets)}), so the seed noise is heavy-tailed")


@functools.lru_cache(maxsize=64)
def critical_value(n_seeds: int, alpha: float) -> float:
    """The ``1 - alpha`` quantile of ``T = |mean(U - R)| / sqrt(mean((R1 - R)^2) / n)`` over ``n``
    seeds when U, R, R1 are independent draws of one normal distribution per seed (an ideal
    unlearner U, the same-seed retrain R, another retrain R1: R is shared, so the numerator and the
    noise estimate are correlated -- a Monte Carlo quantile, fixed seed, handles it exactly)."""
    rng = np.random.default_rng(20260)
    U, R, R1 = (rng.standard_normal((CALIBRATION_DRAWS, n_seeds)) for _ in range(3))
    T = np.abs((U - R).mean(axis=1)) / np.sqrt(((R1 - R) ** 2).mean(axis=1) / n_seeds)
    return float(np.quantile(T, 1.0 - alpha))


def consistency(paired: pd.DataFrame, columns: tuple[str, ...], level: float) -> pd.DataFrame:
    """Per setting and statistic of ``columns``: ``T = |mean d| / sqrt(mean e^2 / n)`` with
    ``d = unlearned - retrained`` and ``e = retrained(other seed) - retrained`` per seed, its
    critical value ``q`` and ``ratio = T / q`` (at most 1: consistent). ``q`` makes the family of
    all checks pass an ideal unlearner with probability ``level`` (Sidak: each check at
    ``1 - level^(1/K)``). An unlearner short of the quality target (``at_target`` false) in a seed
    fails that setting (ratio inf). Columns: statistic, T, q, ratio, signed (mean d), noise (rms e),
    short (seeds short of the target)."""
    parts = []
    reached = _wide(paired, "at_target", (UNLEARNED,))[UNLEARNED].astype(bool)
    for column in columns:
        w = _wide(paired, column, (UNLEARNED, RETRAINED, RETRAINED_OTHER_SEED))
        per_seed = pd.DataFrame({"d": w[UNLEARNED] - w[RETRAINED], "e2": (w[RETRAINED_OTHER_SEED] - w[RETRAINED]) ** 2,
                                 "short": ~reached.reindex(w.index).fillna(False).astype(bool)})
        g = per_seed.groupby(level=_RUN)
        part = pd.DataFrame({"signed": g["d"].mean(), "noise": np.sqrt(g["e2"].mean()), "n": g["d"].size(),
                             "short": g["short"].sum()})
        parts.append(part.assign(statistic=column))
    checks = pd.concat(parts).reset_index()
    if checks.empty:
        return checks
    alpha = 1.0 - level ** (1.0 / len(checks))
    checks["q"] = [critical_value(int(n), alpha) for n in checks["n"]]
    scale = checks["noise"] / np.sqrt(checks["n"])
    with np.errstate(divide="ignore", invalid="ignore"):
        T = np.where(scale > 0, checks["signed"].abs() / scale, np.where(checks["signed"] == 0, 0.0, np.inf))
    checks["T"] = T
    # an unlearner short of the matched quality target in any seed is not consistent, whatever its gap
    checks["ratio"] = np.where(checks["short"] > 0, np.inf, checks["T"] / checks["q"])
    return checks


_band_rates: dict[tuple, float | None] = {}


def band_pass_rate(paired: pd.DataFrame, name: str, rule: Callable[[pd.DataFrame], bool],
                   draws: int = BAND_DRAWS) -> float | None:
    """How often ``rule`` (a table with the unlearner's rows -> does the claim's rule pass?) passes
    an ideal unlearner on this run's own seed noise; None without a planted retrain.

    Each run and seed has three retrains from different seeds (the same-seed reference, the noise
    retrain, the planted one): exchangeable draws of "retraining from another seed". A random
    permutation per run and seed decides which plays the unlearner, the reference and the noise
    retrain. Unlike the rule's own calibration (normal seed noise) this keeps the noise's real
    shape, e.g. retrains that end at different fixed points. Cached on the band and ``name``
    (the claim and its parameters), so the claim's controls, which change only the unlearner's
    rows, reuse it."""
    band = paired[paired["model"].isin((RETRAINED, RETRAINED_OTHER_SEED, RETRAINED_PLANTED))]
    band = band[band.groupby(_SEED)["model"].transform("size") == 3].sort_values([*_SEED, "model"])
    if band.empty:
        return None
    band = band.reset_index(drop=True)
    key = (name, draws, int(pd.util.hash_pandas_object(band, index=False).sum()))
    if key not in _band_rates:
        member = band["model"].map({RETRAINED: 0, RETRAINED_OTHER_SEED: 1, RETRAINED_PLANTED: 2}).to_numpy()
        group = band.groupby(_SEED, sort=False).ngroup().to_numpy()
        roles = np.array([UNLEARNED, RETRAINED, RETRAINED_OTHER_SEED], dtype=object)
        perms = np.array(list(itertools.permutations(range(3))))
        rng = np.random.default_rng(20261)
        passed = 0
        for _ in range(draws):
            chosen = perms[rng.integers(len(perms), size=group.max() + 1)]
            passed += bool(rule(band.assign(model=roles[chosen[group, member]])))
        _band_rates[key] = passed / draws
    return _band_rates[key]


def _ideal_note(paired: pd.DataFrame, name: str, rule: Callable[[pd.DataFrame], bool]) -> str:
    rate = band_pass_rate(paired, name, rule)
    if rate is None:
        return ""
    return (f"; an ideal unlearner passes this rule in {rate:.0%} of {BAND_DRAWS} draws on this run's own "
            "seed noise (each run's three retrains in random roles)")


def _consistent(columns: tuple[str, ...], level: float) -> Callable[[pd.DataFrame], bool]:
    """The consistency rule of B1 and B4 as a function of the table."""
    return lambda paired: bool((consistency(paired, columns, level)["ratio"] <= 1.0).all())


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ClaimInputError(f"level must lie in (0, 1), got {level!r}")


def claim_b1(tables: Tables, level: float) -> Outcome:
    """Consistent with retraining: in every setting, the unlearned model's gap to the model retrained
    with the same init seed (deleted-cell mean score, held-out AUC) is within what the seed noise of
    retraining allows, by a test an ideal unlearner passes with probability ``level``."""
    _check_level(level)
    paired = tables["unlearn_paired"]
    if not _has_band(paired):
        return not_measured("needs band_size >= 2 (a second retraining seed gives the noise scale)")
    if (short := _band_short_of_target(paired)) is not None:
        return not_measured(short)
    checks = consistency(paired, ("deleted_mean_score", "heldout_auc"), level)
    if checks.empty:
        return not_measured("no unlearning runs in unlearn_paired")
    worst = checks.iloc[int(np.argmax(checks["ratio"].to_numpy()))]
    return decide(
        bool((checks["ratio"] <= 1.0).all()), float(checks["ratio"].max()), None,
        f"worst over {len(checks)} checks ({checks['statistic'].nunique()} statistics × settings) of T ÷ q, "
        f"T = |mean(unlearned − retrained)| ÷ (rms seed noise ÷ √seeds), q its critical value (an ideal "
        f"unlearner passes all checks with probability {level:g}); worst: {worst['statistic']}, gap "
        f"{worst['signed']:+.4g} against seed noise {worst['noise']:.3g} (T {worst['T']:.3g}, q {worst['q']:.3g})"
        f"{_several_fixed_points(paired)}"
        f"{_ideal_note(paired, f'B1 {level}', _consistent(('deleted_mean_score', 'heldout_auc'), level))}",
    )


def claim_b2(tables: Tables, tolerance: float, *, level: float) -> Outcome:
    """Without any model degradation: an unlearned model that forgot (deleted-cell score consistent
    with retraining, as in B1) whose held-out AUC is not below retraining's by more than the seed
    noise allows (the same calibrated test, one-sided) plus ``tolerance``, paired per seed."""
    _check_level(level)
    paired = tables["unlearn_paired"]
    if not _has_band(paired):
        return not_measured("needs band_size >= 2 (a second retraining seed gives the noise scale)")
    if (short := _band_short_of_target(paired)) is not None:
        return not_measured(short)
    checks = consistency(paired, ("heldout_auc", "deleted_mean_score"), level)
    if checks.empty:
        return not_measured("no unlearning runs in unlearn_paired")
    held, floor, no_degradation, forgot = _b2_parts(checks, tolerance)
    ok = bool(no_degradation.all() and forgot.all())

    def rule(table: pd.DataFrame) -> bool:
        _, _, no_degradation, forgot = _b2_parts(consistency(table, ("heldout_auc", "deleted_mean_score"), level),
                                                 tolerance)
        return bool(no_degradation.all() and forgot.all())
    return decide(
        ok, float(held["signed"].mean()), float(held["signed"].std(ddof=0)),
        f"AUC(unlearned) − AUC(retrained), mean over seeds, {len(held)} settings, worst {held['signed'].min():+.4f} "
        f"(floor −q×seed noise÷√seeds−{tolerance:g}: worst floor {floor.max():+.4f}); not degraded in "
        f"{no_degradation.mean():.0%}; forgot the deleted cells (consistent with retraining, as B1) in {forgot.mean():.0%}"
        f"{_several_fixed_points(paired)}{_ideal_note(paired, f'B2 {tolerance} {level}', rule)}",
    )


def _b2_parts(checks: pd.DataFrame, tolerance: float):
    """B2's rule from the consistency checks: the held-out AUC checks, their floors, which are not
    degraded, and which settings forgot the deleted cells."""
    held = checks[checks["statistic"] == "heldout_auc"]
    deleted = checks[checks["statistic"] == "deleted_mean_score"]
    floor = -(held["q"] * held["noise"] / np.sqrt(held["n"]) + tolerance)
    return held, floor, held["signed"] >= floor, deleted["ratio"] <= 1.0


def claim_b3(tables: Tables, min_speedup: float) -> Outcome:
    """Much faster than retraining, at matched quality: retraining's sweep equivalents to the quality
    target (a fixed point of the retraining objective) ÷ the unlearner's, 0 where the unlearner
    never reached it (stopping early is not a speedup); deterministic, so a config always gets one
    verdict. Both sides use the same solver class (``unlearn.model``: exact, same acceleration)."""
    paired = tables["unlearn_paired"]
    if not _has_band(paired):
        return not_measured("needs band_size >= 2 (a second retraining seed gives the noise scale)")
    if (short := _band_short_of_target(paired)) is not None:
        return not_measured(short)
    retraining = _wide(paired, "target_sweep_equivalents", (RETRAINED,))[RETRAINED]
    unlearner = paired[paired["model"] == UNLEARNED].set_index(_SEED).reindex(retraining.index)
    if retraining.empty or unlearner.empty:
        return not_measured("no unlearning runs in unlearn_paired")
    reached = unlearner["at_target"].fillna(False).astype(bool)
    # a model at the target whose own history is not the retraining objective (a control): its whole cost
    cost = unlearner["target_sweep_equivalents"]
    to_target = cost.where(cost.notna(), unlearner["sweep_equivalents"])
    speed = (retraining / to_target.clip(lower=1e-12)).where(reached, 0.0)
    per_setting = speed.groupby(level=_RUN).median()
    return decide(
        bool(per_setting.min() >= min_speedup), float(per_setting.median()), None,
        f"median over {len(per_setting)} settings (min {per_setting.min():.2f}, max {per_setting.max():.2f}) of "
        "retraining ÷ unlearning sweep equivalents to the matched quality target (a fixed point of the retraining objective); "
        f"0 where the unlearner ended short of it ({(~reached).sum()} of {len(reached)} runs)",
    )


def claim_b4(tables: Tables, level: float) -> Outcome:
    """A membership-inference attacker tells deleted records apart no better (or worse) after
    unlearning than after retraining: the attack AUC's paired gap is within what retraining's seed
    noise allows, by B1's calibrated test at ``level``."""
    _check_level(level)
    paired = tables["unlearn_paired"]
    if not _has_band(paired):
        return not_measured("needs band_size >= 2 (a second retraining seed gives the noise scale)")
    if (short := _band_short_of_target(paired)) is not None:
        return not_measured(short)
    checks = consistency(paired, ("mia_threshold_heldout",), level)
    if checks.empty:
        return not_measured("no membership-inference audit in unlearn_paired")
    w = _wide(paired, "mia_threshold_heldout", (UNLEARNED, RETRAINED))
    return decide(
        bool((checks["ratio"] <= 1.0).all()), float(checks["ratio"].max()), None,
        f"worst over {len(checks)} settings of T ÷ q for the attack AUC (deleted vs held-out positives), "
        f"T = |mean(unlearned − retrained)| ÷ (rms seed noise ÷ √seeds); largest gap "
        f"{checks['signed'].abs().max():.4f} against seed noise {checks['noise'].min():.4f}–{checks['noise'].max():.4f}; "
        f"attack AUC unlearned {w[UNLEARNED].mean():.3f}, retrained {w[RETRAINED].mean():.3f}"
        f"{_several_fixed_points(paired)}"
        f"{_ideal_note(paired, f'B4 {level}', _consistent(('mia_threshold_heldout',), level))}",
    )


def _ml100k_auc(paired: pd.DataFrame, model: str) -> pd.Series:
    rows = paired[(paired["dataset"] == "ml-100k") & (paired["model"] == model)]
    return rows.groupby("seed")["heldout_auc"].first()


def claim_b5(tables: Tables, tolerance: float, *, target: float) -> Outcome:
    """Held-out AUC of the original model on ML-100K near the authors' ``target`` (~0.87)."""
    paired = tables["unlearn_paired"]
    per_seed = _ml100k_auc(paired, "original")
    if per_seed.empty:
        return not_measured("ml-100k is not among unlearn.datasets in this run")
    auc, spread = float(per_seed.mean()), float(per_seed.std(ddof=1)) if len(per_seed) > 1 else None
    popularity = _ml100k_auc(paired, POPULARITY)
    baseline = f"; item popularity scores {popularity.mean():.4f} on the same cells" if len(popularity) else ""
    return decide(abs(auc - target) <= tolerance, auc, spread,
                  f"original model (model.iterations / model.tol stopping rule), factors and λ from config; "
                  f"target {target} ± {tolerance:g}{baseline}")


def _popularity_as_original(tables: Tables) -> Tables:
    """B5's control: item popularity's held-out AUC in place of the original model's."""
    paired = tables["unlearn_paired"]
    swapped = paired[paired["model"] == POPULARITY].assign(model="original")
    return {**tables, "unlearn_paired": pd.concat([paired[paired["model"] != "original"], swapped], ignore_index=True)}


def _instead_of_unlearned(model: str, **overrides: float):
    """A control: ``model``'s rows take the place of the unlearned model's in ``unlearn_paired``
    (``overrides``: columns set to a constant). A model the run did not produce is an error."""
    def substitute(tables: Tables) -> Tables:
        paired = tables["unlearn_paired"]
        swapped = paired[paired["model"] == model]
        if swapped.empty:
            raise ClaimInputError(f"unlearn_paired has no rows for the control's model {model!r}")
        swapped = swapped.assign(model=UNLEARNED, **overrides)
        rest = paired[paired["model"] != UNLEARNED]
        return {**tables, "unlearn_paired": pd.concat([rest, swapped], ignore_index=True)}
    return substitute


#: Negative controls: no unlearning at all, and the wrong objective (naive fine-tuning).
NEGATIVE = (Control("original (no unlearning)", _instead_of_unlearned("original", sweep_equivalents=0.0,
                                                                            target_sweep_equivalents=0.0)),
            Control("naive fine-tuning", _instead_of_unlearned("naive")))
#: Near misses: the most plausible wrong unlearners.
FROZEN = Control("frozen weights (BM25 not recomputed)", _instead_of_unlearned("unlearn_frozen"))
BUDGET = Control("Unlearn-ALS stopped at the sweep budget", _instead_of_unlearned("unlearn_retrain_budget"))
#: Planted: one more retrain from a new seed is an ideal unlearner.
PLANTED_RETRAIN = planted("another retrain (new seed)", _instead_of_unlearned(RETRAINED_PLANTED))
#: B3's planted case: retraining's own answer reached in one sweep.
PLANTED_FAST = planted("retraining's answer in one sweep",
                       _instead_of_unlearned(RETRAINED, sweep_equivalents=1.0, target_sweep_equivalents=1.0))
CONTROLS = (*NEGATIVE, FROZEN, BUDGET, PLANTED_RETRAIN)

CLAIMS = [
    Claim(id="B1", claim="Consistent with retraining", source="Paper B abstract",
          measure="worst T ÷ q of the paired gap to retraining against its seed noise (deleted-cell score, "
                  "held-out AUC); ≤ 1: consistent",
          threshold="b1_level", tables=("unlearn_paired",), evaluate=claim_b1, controls=CONTROLS),
    Claim(id="B2", claim="Without any model degradation", source="Paper B abstract",
          measure="mean AUC(unlearned) − AUC(retrained), paired per seed", threshold="b2_auc_tolerance",
          settings={"level": "b1_level"}, tables=("unlearn_paired",), evaluate=claim_b2, controls=CONTROLS),
    Claim(id="B3", claim="Rapid convergence, much faster than retraining", source="Paper B abstract",
          measure="median speedup in sweep equivalents to the matched quality target", threshold="b3_min_speedup",
          tables=("unlearn_paired",), evaluate=claim_b3,
          controls=(*NEGATIVE, FROZEN, BUDGET, PLANTED_FAST)),
    Claim(id="B4", claim="Forgetting holds up to a membership-inference audit",
          source="Paper B text (auditing discussion)",
          measure="worst T ÷ q of the paired MIA AUC gap to retraining against its seed noise",
          threshold="b4_level", tables=("unlearn_paired",), evaluate=claim_b4, controls=CONTROLS),
    Claim(id="B5", claim="Held-out AUC of about 0.87 on ML-100K", source="authors' code comment",
          measure="held-out AUC of the original model on ml-100k", threshold="b5_auc_tolerance",
          settings={"target": "b5_target_auc"}, tables=("unlearn_paired",), evaluate=claim_b5,
          controls=(Control("item popularity (not personalized)", _popularity_as_original),)),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"unlearn_paired": UNLEARN_PAIRED_COLUMNS}
