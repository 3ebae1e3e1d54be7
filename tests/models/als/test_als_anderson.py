"""ALS(acceleration="anderson"): the same fixed point as plain ALS in far fewer sweeps, an objective
that never rises, and a safeguard that is what keeps it so."""

import numpy as np
import pytest
import scipy.sparse as sp

from bilinrec.models.als import ALS, anderson, apply_deletions, user_history


def data(seed, n_users=60, n_items=40, density=0.2):
    rng = np.random.default_rng(seed)
    return sp.csr_matrix((rng.random((n_users, n_items)) < density) * (1 + 10 * rng.random((n_users, n_items))))


def objectives(model):
    return np.array([r["objective"] for r in model.history_])


def rises(model):
    """Sweeps that raised the objective by more than rounding (a plain sweep from a fixed point
    can move it by ~1e-16 relative)."""
    f = objectives(model)
    return np.diff(f) > 1e-12 * np.abs(f[1:])


@pytest.mark.parametrize("seed", [0, 3])
def test_anderson_reaches_the_fixed_point_of_plain_als_in_far_fewer_sweeps(seed):
    C = data(seed)
    params = dict(factors=4, regularization=0.1, tol=1e-14, random_state=0)
    plain = ALS(iterations=20000, **params).fit(C)
    fast = ALS(iterations=2000, acceleration="anderson", **params).fit(C)
    assert fast.history_[-1]["objective"] == pytest.approx(plain.history_[-1]["objective"], rel=1e-9)
    np.testing.assert_allclose(fast.user_factors_ @ fast.item_factors_.T, plain.user_factors_ @ plain.item_factors_.T,
                               atol=1e-4)
    sweeps = sum(r["rows_solved"] for r in fast.history_) / sum(C.shape)  # rejected starts cost a sweep too
    assert sweeps < plain.train_iterations_ / 5
    # a fixed point: one more plain sweep moves nothing
    check = fast.copy().set_params(acceleration=None, iterations=1, tol=0.0).fit(C, warm_start=True)
    assert abs(check.history_[1]["objective"] - check.history_[0]["objective"]) <= 1e-12 * check.history_[0]["objective"]


def test_the_objective_never_rises_and_the_safeguard_is_what_keeps_it_so(monkeypatch):
    """On this problem the raw Anderson start overshoots often: with the safeguard every sweep's
    objective is at most the previous one (some starts rejected); without it the objective rises."""
    C = data(1)
    params = dict(factors=4, regularization=0.01, iterations=300, tol=0.0, random_state=0, acceleration="anderson")
    guarded = ALS(**params).fit(C)
    assert not rises(guarded).any()
    assert sum(r["rejected"] for r in guarded.history_[1:]) > 0
    monkeypatch.setattr(anderson, "accept", lambda objective, previous: True)
    raw = ALS(**params).fit(C)
    assert rises(raw).sum() > 10


@pytest.mark.parametrize("acceleration", ["anderson", "balanced_anderson", "ncg"])
def test_accelerated_unlearning_reaches_the_retraining_fixed_point(acceleration):
    C = data(2)
    params = dict(factors=3, regularization=0.1, tol=1e-14, random_state=0, acceleration=acceleration)
    model = ALS(iterations=2000, **params).fit(C)
    pairs = user_history(C, [5])
    reduced = apply_deletions(C, pairs).C
    with pytest.warns(UserWarning, match="not recomputed"):  # C holds varying confidences
        forgotten = model.unlearn(C, pairs, max_iterations=2000, tol=1e-14)
    retrained = ALS(iterations=20000, **{**params, "acceleration": None}).fit(reduced)
    assert forgotten.objective(reduced) == pytest.approx(retrained.objective(reduced), rel=1e-9)
    assert not rises(forgotten)[1:].any()  # after the start record: monotone
    if acceleration != "anderson":
        assert sum(r["rows_solved"] for r in forgotten.history_) < sum(r["rows_solved"] for r in retrained.history_) / 5


@pytest.mark.parametrize("bad, message", [({"acceleration": "nesterov"}, "acceleration must be one of"),
                                          ({"anderson_memory": 0}, "anderson_memory must be a positive integer"),
                                          ({"anderson_memory": True}, "anderson_memory must be a positive integer"),
                                          ({"anderson_mixing": 0.0}, "anderson_mixing must be a finite number > 0"),
                                          ({"anderson_mixing": float("nan")}, "anderson_mixing must be a finite"),
                                          ({"anderson_mixing": "4"}, "anderson_mixing must be a finite")])
def test_bad_acceleration_settings_name_the_parameter(bad, message):
    with pytest.raises(ValueError, match=message):
        ALS(factors=2, iterations=1, **bad).fit(data(0))


@pytest.mark.parametrize("memory, mixing", [(1, 1.0), (3, 1.0), (5, 1.0), (3, 4.0), (5, 0.5)])
def test_the_incremental_memory_proposes_what_the_stacked_least_squares_does(memory, mixing):
    """Type-II Anderson from the whole stored history, as written in the module docstring:
    gamma = argmin |r_k - dR gamma| (with the ridge), next = g_k - dG gamma + (beta - 1)(r_k -
    dR gamma); across a memory overflow and a reset."""
    rng = np.random.default_rng(memory)
    acc = anderson.Anderson(memory, mixing)
    starts, images = [], []
    for step in range(16):
        if step == 9:
            acc.reset()
            starts, images = [], []
        start = rng.standard_normal((30, 4))
        image = start + 0.1 * rng.standard_normal((30, 4))
        starts, images = (starts + [start.ravel()])[-(memory + 1):], (images + [image.ravel()])[-(memory + 1):]
        proposal = acc.propose(start, image)
        if len(starts) < 2:
            assert proposal is None
            continue
        G = np.array(images)
        R = G - np.array(starts)
        dR, dG = np.diff(R, axis=0), np.diff(G, axis=0)
        normal = dR @ dR.T + anderson.RIDGE * np.trace(dR @ dR.T) * np.eye(len(dR))
        gamma = np.linalg.solve(normal, dR @ R[-1])
        expected = G[-1] - gamma @ dG + (mixing - 1) * (R[-1] - gamma @ dR)
        np.testing.assert_allclose(proposal.ravel(), expected, rtol=1e-10, atol=1e-12)
