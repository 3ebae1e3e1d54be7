"""Exact forgetting for AMHT-LRS: the selection of what to forget and the fixed-point gap.

A fitted AMHT-LRS model is the end state of the retraining iteration ``T``: one round is the
U step (least squares over all users given their ``(w_i, b_i)``, QR-normalised) followed by
every user's step (``(w_i, b_i)`` given the new ``U``). Forgetting re-runs these rounds on the
remaining data, warm-started from the current model; the result is *exact* when it is a fixed
point of ``T`` on the remaining data. :func:`fixed_point_gap` measures how far a state is from
one: the largest relative change (Frobenius norm) of ``U``, ``W`` and ``B`` in one further
round whose U step is solved exactly (dense normal equations, or conjugate gradients to a
relative residual of 1e-12 when ``d r`` is large), over the users that have samples.

Hard thresholding makes the retraining objective non-convex: ``T`` has several fixed points, and
the one reached warm-started need not be the one a refit from scratch reaches.
:func:`refit_distances` measures how far apart they are.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from .data import LRSData, _as_user_ids
from .statistics import SumAggregator
from .user_parameters import UserParameters
from .user_step import residual_weights, solve_shared_factor

#: How :func:`fixed_point_gap` measures (the ``gap_measure`` of a ``ForgetRecord``).
GAP_MEASURE = ("max relative Frobenius change of U, W, B in one further round "
               "(exact U step + every user's step) on the remaining data")
#: How :func:`refit_distances` measures (the ``refit_measure`` in a ``ForgetRecord``'s details).
REFIT_MEASURE = ("relative prediction difference ||p - p_refit|| / ||p_refit|| on the remaining samples; "
                 "p_refit: a refit from scratch on the remaining data (same parameters, random_state and "
                 "stopping rule)")
#: Largest ``d * r`` whose U step the gap solves with dense normal equations (else CG to 1e-12).
_DENSE_U_STEP = 2048


def copy_heads(heads: UserParameters) -> UserParameters:
    """An independent copy (the per-user step updates heads in place)."""
    return UserParameters(heads.W.copy(), heads.S.copy(), heads.V.copy(), heads.active.copy())


def clear_users(heads: UserParameters, users: np.ndarray) -> None:
    """Delete the parameters of ``users``: ``w = 0`` and no active sparse entry."""
    heads.W[users] = 0.0
    heads.V[users] = 0.0
    heads.active[users] = False


def forget_selection(n_samples: int, n_users: int, sample_users: np.ndarray, forget_users, forget_samples,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Validate the selection: ``(users, keep)`` with the forgotten user ids (sorted, unique) and
    a boolean mask of the samples kept. ``forget_samples`` is a boolean mask of length
    ``n_samples`` or an array of sample (row) indices."""
    users = np.zeros(0, dtype=np.int64)
    if forget_users is not None:
        users = np.unique(_as_user_ids(np.atleast_1d(forget_users), "forget_users"))
        if users.size and users.max() >= n_users:
            raise ValueError(f"forget_users contains id {users.max()} but the model has {n_users} users "
                             f"(ids 0..{n_users - 1})")
    keep = ~np.isin(sample_users, users)
    if forget_samples is not None:
        rows = np.atleast_1d(np.asarray(forget_samples))
        if rows.dtype == bool:
            if rows.shape != (n_samples,):
                raise ValueError(f"forget_samples as a boolean mask must have one entry per sample "
                                 f"({n_samples}), got shape {rows.shape}")
            rows = np.flatnonzero(rows)
        else:
            rows = _as_user_ids(rows, "forget_samples")
            if rows.size and rows.max() >= n_samples:
                raise ValueError(f"forget_samples contains row {rows.max()} but X has {n_samples} samples "
                                 f"(rows 0..{n_samples - 1})")
        keep[rows] = False
    return users, keep


def remaining_samples(model, X, users, forget_users, forget_samples):
    """Check the original training data ``X, users`` against the fitted AMHT-LRS ``model`` and
    select what remains after this forget and every earlier one (``forgotten_users_``,
    ``forgotten_samples_``). Returns ``(X, sample_users, new_users, keep, earlier, n_new)``:
    float64 ``X``, the user id of every sample, the users named now, the mask of samples kept,
    the mask of samples forgotten before, and the number of samples forgotten now."""
    X = np.asarray(X, dtype=np.float64)
    sample_users = _as_user_ids(users)
    if X.ndim != 2 or X.shape[1] != model.n_features_in_ or len(X) != len(sample_users):
        raise ValueError(f"X must have shape (N, {model.n_features_in_}) with one row per entry of users, "
                         f"got {X.shape} and {len(sample_users)}")
    if len(sample_users) and sample_users.max() >= model.n_users_:
        raise ValueError(f"users contains id {sample_users.max()} but the model has {model.n_users_} users")
    new_users, keep = forget_selection(len(X), model.n_users_, sample_users, forget_users, forget_samples)
    if model.forgotten_samples_.size and model.forgotten_samples_.max() >= len(X):
        raise ValueError(f"X has {len(X)} samples but the model already forgot row "
                         f"{model.forgotten_samples_.max()}: pass the original training data")
    earlier = np.isin(sample_users, model.forgotten_users_)
    earlier[model.forgotten_samples_] = True
    n_new = int(np.sum(~keep & ~earlier))
    keep &= ~earlier
    if not keep.any():
        raise ValueError("forget_users/forget_samples select every remaining sample: forgetting all users "
                         "leaves nothing to fit")
    return X, sample_users, new_users, keep, earlier, n_new


def fixed_point_gap(model, data: LRSData, U: np.ndarray, heads: UserParameters) -> float:
    """The fixed-point gap of ``(U, heads)`` on ``data`` (see the module docstring); users
    without samples in ``data`` are left out (their parameters are deleted first)."""
    heads = copy_heads(heads)
    empty = data.counts == 0
    clear_users(heads, empty)
    B = heads.dense_sparse_part(data.dim)
    d, r = U.shape
    weights = None
    if model.robust_cutoff is not None:
        residual = data.y - np.einsum("nd,nd->n", data.X, (heads.W @ U.T + B)[data.row_user])
        weights = residual_weights(data, residual, model.robust_cutoff)
    solver = "exact" if d * r <= _DENSE_U_STEP else "cg"
    U1, W1 = solve_shared_factor(data, copy_heads(heads), SumAggregator(solver), U, weights,
                                 cg_tol=1e-12, cg_maxiter=max(200, d * r))
    moved = copy_heads(heads)
    moved.W = W1
    moved = model._user_step(data, U1, moved, None, 0)[0]
    clear_users(moved, empty)

    def change(new, old):
        return float(np.linalg.norm(new - old) / max(np.linalg.norm(old), np.finfo(float).tiny))

    return max(change(U1, U), change(moved.W, heads.W), change(moved.dense_sparse_part(d), B))


def refit_distances(original, forgotten, X: np.ndarray, y: np.ndarray, users: np.ndarray, *, max_rounds: int,
                    tol: float) -> dict:
    """How far the ``forgotten`` model stands from a refit from the same start (``refit_distance``)
    and, as the control, how far the untouched ``original`` stands (``control_refit_distance``),
    in :data:`REFIT_MEASURE` on the remaining samples ``X, y, users``; with ``refit_measure``
    and ``refit_seconds``.

    The refit is what retraining means: the estimator with ``original``'s parameters (its
    ``random_state``; the forget's ``max_rounds`` and ``tol``) fitted on the remaining data from
    its own initialisation (the spectral one, a function of the data), not warm-started: a
    refit warm-started from the original parameters is what ``forget`` itself runs, so it
    would compare the forget with itself."""
    start = time.perf_counter()
    params = original.get_params() | {"max_rounds": max_rounds, "tol": tol, "callback": None}
    with warnings.catch_warnings():  # the forgotten users are users without samples
        warnings.filterwarnings("ignore", message=r".*user\(s\) have no samples", category=UserWarning)
        refit = type(original)(**params).fit(X, y, users, n_users=original.n_users_)
    reference = refit.predict(X, users)
    scale = max(float(np.linalg.norm(reference)), np.finfo(float).tiny)

    def distance(model):
        return float(np.linalg.norm(model.predict(X, users) - reference) / scale)

    return {"refit_distance": distance(forgotten), "control_refit_distance": distance(original),
            "refit_measure": REFIT_MEASURE, "refit_seconds": time.perf_counter() - start}
