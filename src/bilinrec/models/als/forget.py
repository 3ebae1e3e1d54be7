"""``ALS.forget``: forgetting users or records, with a guarantee by construction and an optional
certificate, and the check that re-verifies a certificate from scratch.

**The guarantee** (both methods, whatever the tolerance). The deleted cells are removed and the
confidences recomputed on the reduced data (``mode="retrain"`` of :func:`.deletions.apply_deletions`).
Then every user and every item that had a deleted cell is solved exactly (Cholesky) on the reduced
data. A user whose whole history is forgotten has no cells left, so its normal equations have a
zero right-hand side: its row becomes exactly zero, which is what retraining gives it, and its
own-history ranking is at chance.

**The certificate** (``method="certified"`` with a ``tolerance``). After those forced re-solves,
rows are re-solved largest residual first until every row residual of the normal equations on the
reduced data is at most ``tolerance``, an absolute number the caller chooses (never one taken from
the model being forgotten). The residual ``r = A x - b`` of a row bounds how far the row is from
its exact solve given the other side: ``|x - x*| <= |r| / lambda_min(A)``, and ``lambda_min(A)`` is
at least the row's regularization plus ``base`` times the smallest eigenvalue of the other side's
Gramian when every confidence is at least ``base`` (recorded as ``distance_bound``). ALS is not
convex: the reduced problem has many fixed points, and the certificate says the result is one of
them to within the tolerance, as a retrain from another seed is -- not that it is the very point
a particular retrain reaches.

A certificate names what it certifies by content hash (:mod:`.fingerprints`): the model (factors
and objective parameters), the data given and the deleted pairs; :func:`verify_certificate`
recomputes everything from those.
"""

from __future__ import annotations

import json
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..forgetting import ForgetRecord, Forgetting
from .certify import certified_forget
from .deletions import apply_deletions, as_deletions, pairs_digest, stored_mask
from .fingerprints import data_digest, model_digest
from .reduced_cells import LocalRows, cell_values, column_index
from .residuals import RESIDUAL_MEASURE, SideResiduals, norms
from .row_grams import RowGrams
from .weighting import as_weighting

if TYPE_CHECKING:
    from .model import ALS

#: Version tag of the certificate dictionary (``ForgetRecord.details["certificate"]``).
CERTIFICATE_FORMAT = "bilinrec-als-forget-certificate/1"


# --------------------------------------------------------------------------------------------
# Residual state of a model on some data, cached on the model by content hash
# --------------------------------------------------------------------------------------------
def model_fingerprint(model: ALS) -> str:
    """Content hash of a fitted model: objective parameters, factors, biases, global mean."""
    params = model._json_params()
    objective = {k: params[k] for k in ("feedback", "regularization", "scale_regularization", "use_bias", "weighting")}
    return model_digest(objective, [model.user_factors_, model.item_factors_, getattr(model, "user_bias_", None),
                                    getattr(model, "item_bias_", None)], model.global_mean_)


def fresh_residual_state(model: ALS, R_U: np.ndarray, R_I: np.ndarray, columns: Any, conf: Any) -> dict[str, Any]:
    """The residual state of exact residual vectors ``R_U``, ``R_I`` of the model on ``conf``:
    with their row norms, the factors' row norms, the Gramians (nothing pending) and the cell Grams
    of the rows with the most cells (:class:`.row_grams.RowGrams`; not with biases)."""
    base = float(model.feedback == "implicit")
    U = model.user_factors_.astype(np.float64, copy=False)
    V = model.item_factors_.astype(np.float64, copy=False)
    k = U.shape[1]
    rn = (norms(R_U), norms(R_I))
    row_grams = None if model.use_bias else RowGrams.build(
        conf, U, V, base=base, explicit=model.feedback == "explicit", chunk_bytes=model.chunk_bytes,
        workers=model.num_threads or 1)
    return {"R": (R_U, R_I), "D": (np.zeros((k, k)), np.zeros((k, k))), "rn": rn,
            "fn": (norms(U), norms(V)),
            "grams": (base * (U.T @ U), base * (V.T @ V)) if base else (np.zeros((k, k)), np.zeros((k, k))),
            "max": max(float(n.max(initial=0.0)) for n in rn), "columns": columns, "row_grams": row_grams}


def residual_state(model: ALS, X: sp.csr_matrix, held: np.ndarray, data_hash: str) -> tuple[dict, dict]:
    """The model's residual state on ``X`` minus the stored cells ``held``: from the model's cache
    when its key -- (content hash of ``X``, digest of ``held``, the model's content hash) --
    matches, else computed and cached. Read-only: callers copy."""
    t0 = time.perf_counter()
    key = (data_hash, pairs_digest(held), model_fingerprint(model))
    source = "cached"
    if model._residuals is None or model._residuals[0] != key:
        source = "computed"
        data = apply_deletions(X, held, "retrain").C if len(held) else X
        with model._threads():
            conf = model._confidences(data)
            R_U, R_I = model._full_residuals(conf)
            state = fresh_residual_state(model, R_U, R_I, (data_hash, column_index(X)), conf)
        model._residuals = (key, state)
    state = model._residuals[1]
    columns = state["columns"][1] if state["columns"] is not None and state["columns"][0] == data_hash else None
    return state, {"source": source, "seconds": time.perf_counter() - t0, "columns": columns}


# --------------------------------------------------------------------------------------------
# Forgetting
# --------------------------------------------------------------------------------------------
def forget_selection(X: Any, users: Any, pairs: Any) -> np.ndarray:
    """The (n, 2) stored cells of ``X`` that ``forget`` is asked to forget (none for empty ``users``
    and ``pairs``); errors name the argument."""
    if users is None and pairs is None:
        raise ValueError("forget needs users= (whole histories) or pairs= ((user, item) records)")
    chosen = [np.empty((0, 2), dtype=np.int64)]
    if users is not None:
        ids = np.asarray(users)
        if ids.ndim == 0:
            ids = ids.reshape(1)
        if ids.ndim == 1 and ids.size == 0:
            ids = ids.astype(np.int64)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"users must be a 1-D sequence of integer user ids, got {users!r}")
        bad = (ids < 0) | (ids >= X.shape[0])
        if bad.any():
            raise ValueError(f"users: user id {ids[bad][0]} out of range [0, {X.shape[0]})")
        ids = np.unique(ids.astype(np.int64))
        counts = X.indptr[ids + 1] - X.indptr[ids]
        if (counts == 0).any():
            raise ValueError(f"users: user {ids[counts == 0][0]} has no stored cells in C; nothing to forget")
        if ids.size:
            chosen.append(np.column_stack([np.repeat(ids, counts),
                                           np.concatenate([X.indices[X.indptr[u]:X.indptr[u + 1]] for u in ids])]))
    if pairs is not None:
        try:
            given = as_deletions(pairs, X.shape)
        except ValueError as exc:
            raise ValueError(str(exc).replace("deletions", "pairs", 1)) from None
        stored = stored_mask(X, given)
        if len(given) and not stored.all():
            u, i = given[~stored][0]
            raise ValueError(f"pairs: {int((~stored).sum())} pair(s) are not stored cells of C, e.g. ({u}, {i})")
        chosen.append(given)
    return np.unique(np.vstack(chosen).astype(np.int64), axis=0)


def forgotten_users(users: Any) -> list[int]:
    """Users whose whole history ``forget`` was asked to forget."""
    return [] if users is None else sorted(set(np.unique(np.asarray(users, dtype=np.int64)).tolist()))


def forget(model: ALS, X: sp.csr_matrix, chosen: np.ndarray, users: list[int], method: str, *,
           tolerance: float | None, max_iterations: int | None, tol: float | None, batch_rows: int | None,
           show_progress: bool) -> Forgetting:
    """:meth:`ALS.forget` once its arguments are checked (``chosen``: the stored cells to forget)."""
    start = time.perf_counter()
    data_hash = data_digest(X)
    if len(chosen) == 0:
        return _forget_nothing(model, X, method, tolerance, start, data_hash)
    if method == "exact":
        return _forget_exact(model, X, chosen, users, tolerance, max_iterations, tol, show_progress, start, data_hash)
    weighting = as_weighting(model.weighting)
    if model.use_bias or (weighting is not None and not weighting.cellwise):
        why = "biases (the global mean moves)" if model.use_bias else f"the {weighting.scheme} weighting"
        raise NotImplementedError(f"certified forget is not implemented with {why}: a deletion disturbs every "
                                  "row; use method='exact'")
    new, held, every = model._deletion_sets(X, chosen)
    state, origin = residual_state(model, X, held, data_hash)
    out = model._copy_with_ledger(new, held, "retrain", False, X, stacklevel=4)
    affine = (0.0, 1.0) if weighting is None else weighting.affine
    local = LocalRows(X, every, affine, model.feedback == "explicit", origin["columns"])
    # the state is on X minus held: the new deletions' cells are taken out of it
    values = affine[0] + affine[1] * cell_values(X, new).astype(np.float64) if len(new) else np.empty(0)
    ones = np.ones(values.size)
    removed = (new, ones, values) if model.feedback == "explicit" else (new, values, ones)
    sides = tuple(SideResiduals(F, state["R"][a].copy(), state["D"][a].copy(), state["rn"][a].copy(),
                                        state["fn"][a].copy())
                  for a, F in enumerate((out.user_factors_, out.item_factors_)))
    grams = [g.copy() for g in state["grams"]]
    row_grams = state["row_grams"].copy() if state.get("row_grams") is not None else None
    rounds = 100 if max_iterations is None else max_iterations
    with model._threads():  # compiled kernels over num_threads workers: single-threaded BLAS, as in fit
        stats = certified_forget(
            sides, grams, local, every, tolerance=np.inf if tolerance is None else tolerance,
            base=float(model.feedback == "implicit"), regularization=model.regularization,
            scaled=bool(model.scale_regularization), max_iterations=rounds if tolerance is not None else 0,
            batch_rows=batch_rows, chunk_bytes=model.chunk_bytes, workers=model.num_threads or 1,
            cg_steps=model.cg_steps if model.solver == "cg" else None, row_grams=row_grams, removed=removed)
    gap = stats.pop("gap")
    stats.pop("touched_users"), stats.pop("touched_items")
    out._residuals = ((data_hash, pairs_digest(every), model_fingerprint(out)),
                      {"R": tuple(s.R for s in sides), "D": tuple(s.D for s in sides),
                       "rn": tuple(s.rn for s in sides), "fn": tuple(s.fn for s in sides),
                       "grams": tuple(grams), "max": gap, "columns": state["columns"], "row_grams": row_grams})
    seconds = time.perf_counter() - start
    out.history_ = [{"iteration": 0, "phase": "certified", "objective": None, "rel_change": None,
                     "seconds": seconds, "elapsed": seconds, "rows_solved": stats["rows_touched"]}]
    details = {"residual_measure": RESIDUAL_MEASURE, "state_source": origin["source"],
               "state_seconds": origin["seconds"], "iterations": len(stats["rounds"]), "max_iterations": rounds,
               "row_solver": "cg" if model.solver == "cg" else "cholesky", **stats, "reapplied": len(held),
               "guarantee": "every row of a deleted cell solved exactly on the reduced data; users left without "
                            "cells are exactly zero",
               "residuals": "every row's residual vector kept exact up to a pending Gramian term; rows over the "
                            "tolerance found exactly (rigorous upper bounds screen the rest); gap exact"}
    details["distance_bound"] = distance_bound(out, X, every, gap)
    record = ForgetRecord(model="ALS", method="certified", users=users, records=len(new), gap=gap,
                          gap_measure=RESIDUAL_MEASURE, bound=tolerance,
                          rows_touched=stats["rows_touched"], seconds=seconds, details=details)
    details["certificate"] = certificate(out, record, data_hash, every) if tolerance is not None else None
    return Forgetting(out, record)


def _forget_nothing(model: ALS, X: sp.csr_matrix, method: str, tolerance: float | None, start: float,
                    data_hash: str) -> Forgetting:
    """An empty selection: an unchanged copy of the model, recorded with the gap it stands at on
    ``X`` (minus the earlier deletions ``X`` still holds), certified against ``tolerance`` if given."""
    _, held, every = model._deletion_sets(X, np.empty((0, 2), dtype=np.int64))
    state, origin = residual_state(model, X, held, data_hash)
    out = model.copy()
    out.history_ = []
    details = {"residual_measure": RESIDUAL_MEASURE, "state_source": origin["source"],
               "reapplied": len(held), "guarantee": "nothing was selected: the model is returned unchanged"}
    details["distance_bound"] = distance_bound(out, X, every, state["max"])
    record = ForgetRecord(model="ALS", method=method, users=[], records=0, gap=state["max"],
                          gap_measure=RESIDUAL_MEASURE, bound=tolerance, rows_touched=0,
                          seconds=time.perf_counter() - start, details=details)
    details["certificate"] = certificate(out, record, data_hash, every) if tolerance is not None else None
    return Forgetting(out, record)


def _forget_exact(model, X, chosen, users, tolerance, max_iterations, tol, show_progress, start,
                  data_hash) -> Forgetting:
    """``forget(method="exact")``: :meth:`ALS.unlearn` in retrain mode, and the gap it leaves."""
    _, _, every = model._deletion_sets(X, chosen)
    out = model.unlearn(X, chosen, mode="retrain",
                        max_iterations=model.iterations if max_iterations is None else max_iterations,
                        tol=model.tol if tol is None else tol, show_progress=show_progress)
    seconds = time.perf_counter() - start
    data = apply_deletions(X, every, "retrain").C
    conf = out._confidences(data)
    R_U, R_I = out._full_residuals(conf)
    gap = max(float(norms(R).max(initial=0.0)) for R in (R_U, R_I))
    with out._threads():
        out._residuals = ((data_hash, pairs_digest(every), model_fingerprint(out)),
                          fresh_residual_state(out, R_U, R_I, None, conf))
    sweeps = [r for r in out.history_ if r["phase"] == "sweep"]
    details = {"residual_measure": RESIDUAL_MEASURE, "sweeps": len(sweeps),
               "last_rel_change": sweeps[-1]["rel_change"] if sweeps else None,
               "tol": model.tol if tol is None else tol, "gap_seconds": time.perf_counter() - start - seconds,
               "guarantee": "Unlearn-ALS: warm-started full sweeps of the retraining objective"}
    details["distance_bound"] = distance_bound(out, X, every, gap)
    record = ForgetRecord(model="ALS", method="exact", users=users, records=len(chosen), gap=gap,
                          gap_measure=RESIDUAL_MEASURE, bound=tolerance,
                          rows_touched=int(sum(r.get("rows_solved", 0) for r in out.history_)),
                          seconds=seconds, details=details)
    details["certificate"] = certificate(out, record, data_hash, every) if tolerance is not None else None
    return Forgetting(out, record)


def distance_bound(model: ALS, X: sp.csr_matrix, every: np.ndarray, gap: float) -> float | None:
    """An upper bound on every row's distance to its exact solve given the other side:
    ``gap / min over rows of lambda_min(A_row)``, with ``lambda_min(A_row) >= reg + base *
    lambda_min(G_other)`` when every confidence is at least ``base`` (else None: no bound)."""
    base = float(model.feedback == "implicit")
    weighting = as_weighting(model.weighting)
    values = X.data if weighting is None else weighting(X).data
    if base and values.size and float(values.min()) < base:
        return None
    reg = float(model.regularization)  # ALS-WR scales it by counts >= 1: the unscaled value is the least
    low = np.inf
    for F in (model.user_factors_, model.item_factors_):
        F = F.astype(np.float64, copy=False)
        low = min(low, reg + base * max(float(np.linalg.eigvalsh(F.T @ F)[0]), 0.0))
    return float(gap / low) if low > 0 else None


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------
def certificate(model: ALS, record: ForgetRecord, data_hash: str, every: np.ndarray) -> dict[str, Any]:
    """What a certified forget certifies, by content hash: the model, the data given, the
    deleted pairs (their digest, and the pairs themselves), the tolerance and the gap found."""
    return {"format": CERTIFICATE_FORMAT, "model_sha256": model_fingerprint(model), "data_sha256": data_hash,
            "deleted_sha256": pairs_digest(every), "deleted_pairs": every.tolist(), "users": record.users,
            "tolerance": record.bound, "gap": record.gap, "measure": RESIDUAL_MEASURE,
            "certified": record.certified}


class CertificateError(ValueError):
    """A certificate does not hold for the model and data it is checked against."""


def verify_certificate(model: ALS, C: Any, cert: dict[str, Any]) -> dict[str, Any]:
    """Re-verify ``cert`` (a :func:`certificate` dictionary) from scratch on ``model`` and the
    data ``C`` it was forgotten from: the content hashes must match, every deleted pair must be
    gone from the reduced data, every user whose whole history was forgotten must be exactly
    zero, and the largest row residual on the reduced data, recomputed over every row, must be
    at most the tolerance. Returns the recomputed values; raises :class:`CertificateError`."""
    from .cells import _as_csr

    if cert.get("format") != CERTIFICATE_FORMAT:
        raise CertificateError(f"certificate: format {cert.get('format')!r} is not {CERTIFICATE_FORMAT!r}")
    if cert.get("tolerance") is None:
        raise CertificateError("certificate: it claims no tolerance (the forget was run without one)")
    X = _as_csr(C, "C", copy=False)
    model._check_factors(X.shape)
    found = {"model_sha256": model_fingerprint(model), "data_sha256": data_digest(X)}
    for name, value in found.items():
        if value != cert.get(name):
            what = "model" if name.startswith("model") else "data"
            raise CertificateError(f"certificate: the {what} is not the one certified ({name} {value[:16]}... "
                                   f"against {str(cert.get(name))[:16]}...)")
    pairs = as_deletions(np.asarray(cert["deleted_pairs"], dtype=np.int64).reshape(-1, 2), X.shape)
    if pairs_digest(pairs) != cert.get("deleted_sha256"):
        raise CertificateError("certificate: deleted_pairs do not match deleted_sha256")
    users = cert.get("users", [])
    if not isinstance(users, list) or not all(isinstance(u, int) and 0 <= u < X.shape[0] for u in users):
        raise CertificateError(f"certificate: users must be a list of user ids in [0, {X.shape[0]}), got {users!r}")
    reduced = apply_deletions(X, pairs, "retrain").C
    R_U, R_I = model._full_residuals(model._confidences(reduced))
    gap = max(float(norms(R).max(initial=0.0)) for R in (R_U, R_I))
    gone = [u for u in users if reduced.indptr[u + 1] == reduced.indptr[u]]
    nonzero = [u for u in gone if np.any(model.user_factors_[u])]
    if nonzero:
        raise CertificateError(f"certificate: forgotten user {nonzero[0]} has a non-zero row")
    if not gap <= float(cert["tolerance"]):
        raise CertificateError(f"certificate: the largest row residual on the reduced data is {gap:.6g}, over the "
                               f"tolerance {float(cert['tolerance']):.6g}")
    return {**found, "gap": gap, "tolerance": float(cert["tolerance"]), "zero_users": len(gone)}


def warn_given_confidences(model: ALS, X: sp.csr_matrix, stacklevel: int) -> bool:
    """True (with a warning) when implicit confidences were given pre-computed (no ``weighting``)
    and vary: the model cannot recompute them, so if they were derived from other records
    (BM25, normalisation) forgetting keeps stale weights -- the ledger then says not exact."""
    if model.feedback != "implicit" or as_weighting(model.weighting) is not None or X.nnz == 0:
        return False
    if float(X.data.min()) == float(X.data.max()):
        return False
    msg = ("forgetting with confidences given pre-computed (weighting=None): they are not recomputed on the "
           "reduced data, so if they depend on other records (BM25, normalisation) the result is not the "
           "retraining one; pass the raw interactions with weighting=... to make it exact")
    warnings.warn(msg, stacklevel=stacklevel + 1)
    return True


def dumps_certificate(record: ForgetRecord) -> str:
    """The record of a forget as the JSON a certificate file holds."""
    return json.dumps(record.to_dict(), indent=2, default=float) + "\n"
