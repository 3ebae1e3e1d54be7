"""Claims B1–B5 (Paper B, Unlearn-ALS), decided by the per-seed table ``unlearn_paired``.

Every unlearning claim is a *paired* statistic per seed: the unlearned model minus the model
retrained from scratch with the same init seed, compared with the seed noise of retraining itself
(retrained with another init seed minus retrained). Each is also evaluated on two negative
controls that must fail it -- the untouched original model and naive fine-tuning put in place of
the unlearned model; a claim that holds while a control holds too is "uninformative".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bilinrec.experiments.unlearn.report import POPULARITY
from bilinrec.experiments.verdict import Claim, ClaimInputError, Control, Outcome, Tables, decide, not_measured

_RUN = ["dataset", "strategy", "fraction"]
_SEED = [*_RUN, "seed"]
UNLEARNED = "unlearn_retrain"
RETRAINED, RETRAINED_OTHER_SEED = "retrained", "retrained_b1"
UNLEARN_PAIRED_COLUMNS = (*_SEED, "model", "heldout_auc", "deleted_mean_score", "mia_threshold_heldout",
                          "objective_gap", "sweep_equivalents")


def _wide(paired: pd.DataFrame, column: str, models: tuple[str, ...]) -> pd.DataFrame:
    """Per (run, seed): ``column`` of each of ``models`` side by side (rows lacking one dropped)."""
    wide = paired.pivot_table(index=_SEED, columns="model", values=column, aggfunc="first", dropna=False)
    missing = [m for m in models if m not in wide.columns]
    if missing:
        raise ClaimInputError(f"unlearn_paired has no rows for models {missing}")
    return wide[list(models)].dropna()


def _gaps(paired: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per setting: mean over seeds of |unlearned - retrained| and of |retrained(b1) - retrained| (seed noise)."""
    w = _wide(paired, column, (UNLEARNED, RETRAINED, RETRAINED_OTHER_SEED))
    per_seed = pd.DataFrame({"unlearn": (w[UNLEARNED] - w[RETRAINED]).abs(),
                             "noise": (w[RETRAINED_OTHER_SEED] - w[RETRAINED]).abs(),
                             "signed": w[UNLEARNED] - w[RETRAINED]})
    return per_seed.groupby(level=_RUN).mean()


def _ratio(g: pd.DataFrame) -> pd.Series:
    return g["unlearn"] / g["noise"].clip(lower=1e-12)


def _has_band(paired: pd.DataFrame) -> bool:
    return RETRAINED_OTHER_SEED in set(paired["model"])


def claim_b1(tables: Tables, z: float) -> Outcome:
    """Consistent with retraining: in every setting, the unlearned model differs from the model
    retrained with the same seed by at most ``z`` x the seed noise of retraining, both on the
    deleted cells (mean score) and on held-out AUC."""
    paired = tables["unlearn_paired"]
    if not _has_band(paired):
        return not_measured("needs band_size >= 2 (a second retraining seed gives the noise scale)")
    deleted, held = _gaps(paired, "deleted_mean_score"), _gaps(paired, "heldout_auc")
    if deleted.empty:
        return not_measured("no unlearning runs in unlearn_paired")
    ratio = np.maximum(_ratio(deleted), _ratio(held))
    return decide(
        bool((ratio <= z).all()), float(ratio.max()), None,
        f"worst over {len(ratio)} settings of |unlearned − retrained| ÷ |retrained(other seed) − retrained|, "
        f"mean over seeds (needs ≤ {z:g}); deleted-cell mean score: worst ratio {_ratio(deleted).max():.2f} "
        f"(gap {deleted['unlearn'].max():.4f} vs seed noise {deleted['noise'].min():.4f}); held-out AUC: worst "
        f"ratio {_ratio(held).max():.2f}",
    )


def claim_b2(tables: Tables, tolerance: float, *, z: float) -> Outcome:
    """Without any model degradation: an unlearned model (deleted cells scored within ``z`` x seed
    noise of retraining: it did forget) whose held-out AUC is not below retraining's by more than
    ``z`` x the seed noise (+ ``tolerance``), paired per seed."""
    paired = tables["unlearn_paired"]
    if not _has_band(paired):
        return not_measured("needs band_size >= 2 (a second retraining seed gives the noise scale)")
    held, deleted = _gaps(paired, "heldout_auc"), _gaps(paired, "deleted_mean_score")
    if held.empty:
        return not_measured("no unlearning runs in unlearn_paired")
    floor = -(z * held["noise"] + tolerance)
    no_degradation = held["signed"] >= floor
    forgot = _ratio(deleted) <= z
    ok = bool(no_degradation.all() and forgot.all())
    return decide(
        ok, float(held["signed"].mean()), float(held["signed"].std(ddof=0)),
        f"AUC(unlearned) − AUC(retrained), mean over seeds, {len(held)} settings, worst {held['signed'].min():+.4f} "
        f"(floor −{z:g}×seed noise−{tolerance:g}: worst floor {floor.max():+.4f}); not degraded in "
        f"{no_degradation.mean():.0%}; forgot the deleted cells (score gap ≤ {z:g}× seed noise) in {forgot.mean():.0%}",
    )


def claim_b3(tables: Tables, min_speedup: float, *, z: float) -> Outcome:
    """Much faster than retraining, under ONE stopping rule: retraining's sweep equivalents ÷ the
    unlearner's, counted only where the unlearner reached retraining's objective (gap at most ``z``
    x the seed noise of retraining's objective); deterministic, so a config always gets one verdict."""
    paired = tables["unlearn_paired"]
    if not _has_band(paired):
        return not_measured("needs band_size >= 2 (a second retraining seed gives the noise scale)")
    sweeps = _wide(paired, "sweep_equivalents", (UNLEARNED, RETRAINED))
    gap = _wide(paired, "objective_gap", (UNLEARNED, RETRAINED_OTHER_SEED))
    if sweeps.empty:
        return not_measured("no unlearning runs in unlearn_paired")
    noise = gap[RETRAINED_OTHER_SEED].abs().groupby(level=_RUN).mean()
    reached = gap[UNLEARNED] <= z * noise.reindex(gap.index.droplevel("seed")).to_numpy() + 1e-12
    speed = sweeps[RETRAINED] / sweeps[UNLEARNED].clip(lower=1e-12)
    speed = speed.where(reached.reindex(speed.index).fillna(False), 0.0)
    per_setting = speed.groupby(level=_RUN).median()
    return decide(
        bool(per_setting.min() >= min_speedup), float(per_setting.median()), None,
        f"median over {len(per_setting)} settings (min {per_setting.min():.2f}, max {per_setting.max():.2f}) of "
        "retraining ÷ unlearning sweep equivalents, both stopped by the same rule; 0 where the unlearner "
        f"ended above retraining's objective by more than {z:g}× its seed noise "
        f"({(~reached).sum()} of {len(reached)} runs)",
    )


def claim_b4(tables: Tables, tolerance: float) -> Outcome:
    """A membership-inference attacker tells deleted records apart no better (or worse) after
    unlearning than after retraining: |attack AUC(unlearned) − attack AUC(retrained)| per seed."""
    paired = tables["unlearn_paired"]
    w = _wide(paired, "mia_threshold_heldout", (UNLEARNED, RETRAINED))
    if w.empty:
        return not_measured("no membership-inference audit in unlearn_paired")
    gap = (w[UNLEARNED] - w[RETRAINED]).abs().groupby(level=_RUN).mean()
    return decide(
        bool(gap.max() <= tolerance), float(gap.mean()), float(gap.std(ddof=0)),
        f"|attack AUC(unlearned) − attack AUC(retrained)|, deleted vs held-out positives, mean over seeds, "
        f"worst of {len(gap)} settings {gap.max():.3f}; attack AUC unlearned {w[UNLEARNED].mean():.3f}, "
        f"retrained {w[RETRAINED].mean():.3f}",
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


def _instead_of_unlearned(model: str):
    """A control: ``model``'s rows take the place of the unlearned model's in ``unlearn_paired``."""
    def substitute(tables: Tables) -> Tables:
        paired = tables["unlearn_paired"]
        swapped = paired[paired["model"] == model].assign(model=UNLEARNED)
        if model == "original":  # the original did no work: zero sweeps
            swapped = swapped.assign(sweep_equivalents=0.0)
        rest = paired[paired["model"] != UNLEARNED]
        return {**tables, "unlearn_paired": pd.concat([rest, swapped], ignore_index=True)}
    return substitute


#: The negative controls of every unlearning claim: neither may pass.
CONTROLS = (Control("original (no unlearning)", _instead_of_unlearned("original")),
            Control("naive fine-tuning", _instead_of_unlearned("naive")))

CLAIMS = [
    Claim(id="B1", claim="Consistent with retraining", source="Paper B abstract",
          measure="worst |unlearned − retrained| ÷ seed noise of retraining (deleted-cell score, held-out AUC)",
          threshold="b1_band_z", tables=("unlearn_paired",), evaluate=claim_b1, controls=CONTROLS),
    Claim(id="B2", claim="Without any model degradation", source="Paper B abstract",
          measure="mean AUC(unlearned) − AUC(retrained), paired per seed", threshold="b2_auc_tolerance",
          settings={"z": "b1_band_z"}, tables=("unlearn_paired",), evaluate=claim_b2, controls=CONTROLS),
    Claim(id="B3", claim="Rapid convergence, much faster than retraining", source="Paper B abstract",
          measure="median speedup in sweep equivalents, same stopping rule", threshold="b3_min_speedup",
          settings={"z": "b1_band_z"}, tables=("unlearn_paired",), evaluate=claim_b3, controls=CONTROLS),
    Claim(id="B4", claim="Forgetting holds up to a membership-inference audit",
          source="Paper B text (auditing discussion)", measure="|MIA AUC(unlearned) − MIA AUC(retrained)|",
          threshold="b4_mia_tolerance", tables=("unlearn_paired",), evaluate=claim_b4, controls=CONTROLS),
    Claim(id="B5", claim="Held-out AUC of about 0.87 on ML-100K", source="authors' code comment",
          measure="held-out AUC of the original model on ml-100k", threshold="b5_auc_tolerance",
          settings={"target": "b5_target_auc"}, tables=("unlearn_paired",), evaluate=claim_b5,
          controls=(Control("item popularity (not personalized)", _popularity_as_original),)),
]

#: Columns each table the claims read must have.
TABLE_COLUMNS = {"unlearn_paired": UNLEARN_PAIRED_COLUMNS}
