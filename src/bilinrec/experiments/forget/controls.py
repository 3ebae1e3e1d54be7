"""Near-miss forgetters of ALS: each looks like a forget but leaves something behind, so a
forgetting audit (:mod:`bilinrec.models.als.audit`) that means anything should reject it.

Each takes the model trained on ``C`` and the users whose whole history is forgotten, and
returns a NEW model (the original is unchanged):

* :func:`control_shrink`: the forgotten users' rows only shrunk, direction kept (what the old
  certified forget left: a row 15.5 -> 0.67 in norm on ml-100k, issue 31);
* :func:`control_sweeps`: Unlearn-ALS cut short -- ``sweeps`` full sweeps, no local update;
* :func:`control_frozen`: Unlearn-ALS to the stopping rule with the confidences frozen at their
  values on ``C`` (not recomputed on the reduced data), for a data-dependent weighting (BM25).
"""

from __future__ import annotations

from typing import Any

from bilinrec.models.als import ALS, as_weighting, user_history

#: Norm ratio of a forgotten row after the old certified forget (0.67 / 15.5 on ml-100k, issue 31).
SHRINK_FACTOR = 0.67 / 15.5

def control_shrink(model: ALS, users: Any, factor: float = SHRINK_FACTOR) -> ALS:
    """A copy of ``model`` whose ``users`` rows are multiplied by ``factor`` (0 < factor < 1);
    its ``history_`` is empty (no sweep was run)."""
    if not 0.0 < factor < 1.0:
        raise ValueError(f"control_shrink: factor must lie in (0, 1), got {factor!r}")
    out = model.copy()
    out.user_factors_[users] *= out.user_factors_.dtype.type(factor)
    out.history_ = []
    return out


def control_sweeps(model: ALS, C: Any, users: Any, sweeps: int = 10) -> ALS:
    """Unlearn-ALS of ``users``' histories from ``model``, stopped after ``sweeps`` full sweeps
    (no local update, no tolerance): the budgeted unlearner of the Unlearn-ALS paper."""
    return model.unlearn(C, user_history(C, users), max_iterations=sweeps, tol=0.0, local_update=False)


def control_frozen(model: ALS, C: Any, users: Any) -> ALS:
    """Unlearn-ALS of ``users``' histories to ``model``'s stopping rule with frozen confidences.

    Needs a data-dependent ``weighting`` (BM25): with a cell-wise one, frozen confidences are
    the recomputed ones and the control would be an exact forget."""
    weighting = as_weighting(model.weighting)
    if weighting is None or weighting.cellwise:
        raise ValueError("control_frozen: the model's weighting must be data-dependent (bm25), got "
                         f"{None if weighting is None else weighting.scheme!r}; frozen cell-wise weights are exact")
    return model.unlearn(C, user_history(C, users), max_iterations=model.iterations, tol=model.tol,
                         frozen_weights=True)
