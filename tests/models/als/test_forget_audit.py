"""The forgetting audit of ALS (bilinrec.models.als.audit) and the near-miss controls it must reject."""

import numpy as np
import pytest
import scipy.sparse as sp

from bilinrec.experiments.forget.controls import (
    control_frozen,
    control_shrink,
    control_sweeps,
)
from bilinrec.models.als import ALS, Weighting, apply_deletions, user_history
from bilinrec.models.als.audit import (
    AuditCells,
    RetrainBand,
    forget_audit,
    membership_auc,
    nonmember_cells,
    own_history_aucs,
)

USERS = [3, 8, 21]
RETRAINS = 3


def interactions(n_users=60, n_items=40, rank=3, density=0.2, seed=0):
    """Binary interactions of a low-rank preference matrix (so that a model can learn them)."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items)) + 0.5 * rng.normal(size=(n_users, n_items))
    return sp.csr_matrix((scores > np.quantile(scores, 1 - density)).astype(float))


PARAMS = {"factors": 4, "regularization": 0.3, "iterations": 60, "tol": 1e-7, "random_state": 0}


def retrained(C, deleted, params, count=RETRAINS, first_seed=100):
    reduced = apply_deletions(C, deleted, "retrain").C
    return [ALS(**{**params, "random_state": first_seed + k}).fit(reduced) for k in range(count)]


@pytest.fixture(scope="module")
def setting():
    C = interactions()
    params = {**PARAMS, "weighting": Weighting("linear", alpha=10.0)}
    model = ALS(**params).fit(C)
    return C, params, model, retrained(C, user_history(C, USERS), params)


def audit_of(setting, forgotten, **kwargs):
    C, _, model, retrains = setting
    return forget_audit(model, forgotten, C, users=USERS, retrains=retrains, seed=5, **kwargs)


def test_exact_forget_leaves_the_own_history_at_chance_like_retraining(setting):
    C, _, model, retrains = setting
    exact = model.forget(C, users=USERS, method="exact").model
    for forgotten in (exact, retrains[0]):
        # a user without cells has a zero right-hand side: a zero row, every score tied
        assert not forgotten.user_factors_[USERS].any()
        assert own_history_aucs(forgotten, C, USERS).tolist() == [0.5] * len(USERS)
    assert (own_history_aucs(model, C, USERS) > 0.8).all()
    report = audit_of(setting, exact)
    assert report["passed"] and report["own_history_auc"] == report["retrain_own_history_auc"] == 0.5
    assert report["mia_auc"] == 0.5 and report["original_mia_auc"] > 0.8


def test_an_ideal_unlearner_passes_and_the_untouched_model_fails(setting):
    C, params, model, _ = setting
    ideal = retrained(C, user_history(C, USERS), params, count=1, first_seed=999)[0]
    report = audit_of(setting, ideal)
    assert report["passed"] and report["retrains"] == RETRAINS
    assert not report["original_passed"]
    assert not audit_of(setting, model)["passed"]


def test_a_shrunk_row_keeps_the_history_readable_and_fails(setting):
    C, _, model, _ = setting
    shrunk = control_shrink(model, USERS)
    ratio = np.linalg.norm(shrunk.user_factors_[USERS], axis=1) / np.linalg.norm(model.user_factors_[USERS], axis=1)
    assert np.allclose(ratio, 0.67 / 15.5, rtol=1e-6)
    # the ranking does not depend on the row's norm: the history is ranked first as before
    assert np.array_equal(own_history_aucs(shrunk, C, USERS), own_history_aucs(model, C, USERS))
    report = audit_of(setting, shrunk)
    assert not report["passed"] and report["own_history_auc"] > 0.8


def test_a_cut_short_unlearner_of_records_fails():
    C = interactions(n_users=80, n_items=50, seed=2)
    params = {**PARAMS, "weighting": Weighting("linear", alpha=10.0)}
    model = ALS(**params).fit(C)
    coo = C.tocoo()
    pick = np.random.default_rng(1).choice(C.nnz, C.nnz // 10, replace=False)
    pairs = np.column_stack([coo.row[pick], coo.col[pick]])
    retrains = retrained(C, pairs, params)
    def audit(m):
        return forget_audit(model, m, C, pairs=pairs, retrains=retrains, seed=3)
    report = audit(model.unlearn(C, pairs, max_iterations=1, local_update=False))
    assert not report["passed"] and np.isnan(report["own_history_auc"])
    assert abs(report["mia_auc"] - report["retrain_mia_auc"]) > report["tolerance_mia_auc"]
    assert audit(model.forget(C, pairs=pairs, method="exact").model)["passed"]


def test_what_the_audit_of_whole_users_does_not_see(setting):
    """Measured limits (docs/forgetting.md): a 10-sweep Unlearn-ALS and frozen BM25 weights both zero
    the forgotten users' rows in the first sweep, so their own history and records are unreadable
    and both pass; the frozen weights are caught by the distance to the retraining fixed point."""
    C, params, model, _ = setting
    assert audit_of(setting, control_sweeps(model, C, USERS))["passed"]
    bm25 = {**params, "weighting": Weighting("bm25", scale=5.0, K1=100.0, B=0.9)}
    deleted = user_history(C, USERS)
    reduced = apply_deletions(C, deleted, "retrain").C
    original = ALS(**bm25).fit(C)
    retrains = retrained(C, deleted, bm25)
    frozen = control_frozen(original, C, USERS)
    assert forget_audit(original, frozen, C, users=USERS, retrains=retrains, seed=5)["passed"]
    def gap(m):
        return max(r.max() for r in m.row_residuals(reduced))
    assert gap(frozen) > 5 * max(gap(m) for m in retrains)
    with pytest.raises(ValueError, match="control_frozen: the model's weighting must be data-dependent"):
        control_frozen(model, C, USERS)


def test_certified_forget_leaves_the_own_history_at_chance(setting):
    C, _, model, _ = setting
    certified = model.forget(C, users=USERS, method="certified").model
    assert own_history_aucs(certified, C, USERS).tolist() == [0.5] * len(USERS)
    assert audit_of(setting, certified)["passed"]


def test_nonmembers_are_matched_by_user_unstored_and_seeded():
    C = interactions(seed=4)
    members = np.vstack([user_history(C, [2])[:3], user_history(C, [7])])
    drawn = nonmember_cells(C, members, seed=9)
    assert np.array_equal(drawn, nonmember_cells(C, members, seed=9))
    assert not np.array_equal(drawn, nonmember_cells(C, members, seed=10))
    assert np.array_equal(np.unique(drawn[:, 0], return_counts=True)[1], [3, C[7].nnz])
    assert not np.asarray(C[drawn[:, 0], drawn[:, 1]]).any()  # never trained on
    assert len(np.unique(drawn, axis=0)) == len(drawn)


def test_membership_and_own_history_auc_hand_values():
    model = ALS.from_factors(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[3.0, 0.0], [1.0, 0.0], [2.0, 0.0]]))
    C = sp.csr_matrix(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    assert own_history_aucs(model, C, [0, 1]).tolist() == [1.0, 0.5]  # user 1: a zero row, all tied
    # members scored 3 and 1 against a non-member scored 2: one of two pairs ordered
    assert membership_auc(model, [[0, 0], [0, 1]], [[0, 2]]) == 0.5
    assert membership_auc(model, [[0, 0]], [[0, 2], [1, 0]]) == 1.0


def test_the_band_tolerance_is_a_prediction_interval_with_a_rounding_floor():
    cells = AuditCells.of(interactions(seed=5), users=[1, 2], seed=0)
    from bilinrec.models.als.audit import AuditScores
    band = RetrainBand.of([AuditScores(0.5, 0.60), AuditScores(0.5, 0.62), AuditScores(0.5, 0.64)], cells)
    # t quantile (two-sided 95%, 2 degrees of freedom) 4.3027 x std 0.02 x sqrt(1 + 1/3)
    assert band.tolerance.mia_auc == pytest.approx(4.302653 * 0.02 * np.sqrt(4 / 3), rel=1e-6)
    assert band.passes(AuditScores(0.5, 0.70)) and not band.passes(AuditScores(0.5, 0.72))
    step = cells.step().own_history_auc
    assert band.tolerance.own_history_auc == pytest.approx(step / 2)
    assert not band.passes(AuditScores(0.5 + step, 0.62))


def test_bad_arguments_name_their_source(setting):
    C, _, model, retrains = setting
    with pytest.raises(ValueError, match="retrains: the band needs at least 2"):
        forget_audit(model, model, C, users=USERS, retrains=retrains[:1])
    with pytest.raises(ValueError, match="forget audit needs users="):
        forget_audit(model, model, C, retrains=retrains)
    with pytest.raises(ValueError, match="users: user 0 has 0 of"):
        AuditCells.of(sp.csr_matrix((2, 3)), users=[0])
    with pytest.raises(ValueError, match="control_shrink: factor"):
        control_shrink(model, USERS, factor=1.0)
