"""ALS.forget: the certified local forget (and its certificate) and the exact one, on small data."""

import numpy as np
import pytest
import scipy.sparse as sp

from bilinrec.models.als import ALS, Weighting, apply_deletions, user_history
from bilinrec.models.forgetting import ForgetRecord
from bilinrec.testing.data import random_implicit, random_ratings


def dense_residuals(model, C):
    """Max row residual |A x - b| of every user and item row, from dense per-cell weights (independent
    of the library's residual code): A_u = sum_i c_ui y_i y_i^T + reg_u I, b_u = sum_i c_ui p_ui y_i."""
    confidences = model._confidences(C).toarray()
    stored = C.toarray() != 0
    if model.feedback == "implicit":
        conf, target = np.where(stored, confidences, 1.0), stored.astype(float)
    else:
        conf, target = stored.astype(float), confidences
    X, Y = model.user_factors_.astype(float), model.item_factors_.astype(float)
    lam = model.regularization
    reg_u = lam * np.maximum(stored.sum(1), 1) if model.scale_regularization else np.full(X.shape[0], lam)
    reg_i = lam * np.maximum(stored.sum(0), 1) if model.scale_regularization else np.full(Y.shape[0], lam)
    worst = 0.0
    for own, other, cw, tw, reg in ((X, Y, conf, target, reg_u), (Y, X, conf.T, target.T, reg_i)):
        for r in range(own.shape[0]):
            A = (other * cw[r][:, None]).T @ other + reg[r] * np.eye(own.shape[1])
            b = other.T @ (cw[r] * tw[r])
            worst = max(worst, float(np.linalg.norm(A @ own[r] - b)))
    return worst


@pytest.fixture(scope="module")
def fitted():
    C = random_implicit(40, 30, seed=3)
    return C, ALS(factors=4, regularization=0.3, iterations=25, random_state=1).fit(C)


#: The tolerance the tests hold certified forgets to: an absolute number chosen by the caller.
TOLERANCE = 0.3


def test_certified_forget_of_one_user_holds_its_certificate(fitted):
    C, model = fitted
    assert dense_residuals(model, C) < TOLERANCE  # the trained model is within it: the forget restores it
    result = model.forget(C, users=[5], tolerance=TOLERANCE)
    assert isinstance(result.record, ForgetRecord)
    model2, record = result
    reduced = apply_deletions(C, user_history(C, [5])).C
    assert record.method == "certified" and record.users == [5] and record.records == C[5].nnz
    assert record.bound == TOLERANCE
    assert record.gap == pytest.approx(dense_residuals(model2, reduced), rel=1e-9, abs=1e-12)
    assert record.certified and record.gap <= record.bound
    assert record.to_dict()["certified"] is True
    details = record.details
    assert details["rounds"][0]["side"] == "users" and details["rounds"][0]["forced"]
    assert details["rounds"][1]["side"] == "items" and details["rounds"][1]["forced"]
    assert 0 < record.rows_touched == details["users_touched"] + details["items_touched"] < sum(C.shape)
    # the whole history is gone: the user's row is exactly what retraining gives it (zero)
    assert not model2.user_factors_[5].any() and model.user_factors_[5].any()
    # the residuals of the result are cached for a second forget from the same data (the ledger
    # takes the earlier deletions out again); other data, such as the reduced matrix, is hashed anew
    again = model2.forget(C, users=[7], tolerance=TOLERANCE).record
    assert again.details["state_source"] == "cached" and again.certified
    assert model2.forget(reduced, users=[7]).record.details["state_source"] == "computed"


@pytest.mark.parametrize("method", ["certified", "exact"])
def test_a_forgotten_user_is_unreadable_whatever_the_tolerance(method):
    """The guarantee is by construction: a loosely trained original (one sweep), no tolerance or a
    tight one with no rounds left -- the user's row is exactly zero, so their own-history ranking
    is at chance (AUC 0.5, every item tied), as after retraining."""
    C = random_implicit(40, 30, seed=11)
    loose = ALS(factors=4, regularization=0.3, iterations=1, random_state=1).fit(C)
    for kwargs in ({}, {"tolerance": 1e-9, "max_iterations": 0}):
        out, record = loose.forget(C, users=[3, 9], method=method, max_iterations=kwargs.get("max_iterations", 1),
                                   tolerance=kwargs.get("tolerance"))
        assert not out.user_factors_[[3, 9]].any()
        scores = out.user_factors_[3] @ out.item_factors_.T
        assert np.ptp(scores) == 0.0  # every item tied: own-history AUC exactly 0.5
        if "tolerance" in kwargs:  # the tight tolerance is not met: said so, never claimed
            assert not record.certified and record.gap > record.bound
        else:
            assert record.bound is None and not record.certified


def test_every_row_of_a_deleted_record_is_solved_exactly(fitted):
    """Forgetting records (not whole users): the users and items of the deleted cells are solved
    exactly on the reduced data first -- each one's residual is 0 right after its own solve --
    even when no tolerance asks for any further round."""
    C, model = fitted
    pairs = np.vstack([user_history(C, [2])[:2], user_history(C, [9])[-1:]])
    out, record = model.forget(C, pairs=pairs)
    reduced = apply_deletions(C, pairs).C
    forced = [r for r in record.details["rounds"] if r["forced"]]
    assert [r["side"] for r in forced] == ["users", "items"]
    assert forced[0]["rows"] == np.unique(pairs[:, 0]).size and forced[1]["rows"] == np.unique(pairs[:, 1]).size
    # the items were solved last: their residuals on the reduced data are at rounding level
    ru, ri = out.row_residuals(reduced)
    assert ri[np.unique(pairs[:, 1])].max() < 1e-10
    assert record.gap == pytest.approx(max(ru.max(), ri.max()), rel=1e-9)


def test_the_residual_cache_never_goes_stale(fitted):
    C, model = fitted
    level = model.max_row_residual(C)
    assert model.copy().forget(C, users=[5]).record.details["state_source"] == "cached"
    moved = model.copy()
    moved.user_factors_[0, 0] += 1.0  # in place: the cache key (a content hash of the factors) changes
    assert moved.max_row_residual(C) == pytest.approx(dense_residuals(moved, C), rel=1e-9) and \
        moved.max_row_residual(C) > level
    shuffled = model.copy()  # rows permuted: the same bytes in another order, a different model
    shuffled.item_factors_[:] = shuffled.item_factors_[::-1].copy()
    assert shuffled.max_row_residual(C) == pytest.approx(dense_residuals(shuffled, C), rel=1e-9)
    assert shuffled.forget(C, users=[5]).record.details["state_source"] == "cached"  # cached by the call above
    other = C.copy()
    other.data[0] += 1.0  # other data: recomputed too
    assert model.forget(other, users=[5]).record.details["state_source"] == "computed"


def test_the_certificate_fails_when_the_tolerance_is_not_met(fitted):
    C, model = fitted
    reduced = apply_deletions(C, user_history(C, [5])).C
    out, record = model.forget(C, users=[5], tolerance=TOLERANCE, max_iterations=0)  # only the forced solves
    assert record.gap == pytest.approx(dense_residuals(out, reduced), rel=1e-9)
    assert record.gap > TOLERANCE and not record.certified and record.details["certificate"]["certified"] is False
    assert record.details["iterations"] == 2  # the two forced rounds


def test_a_chain_that_started_uncertified_is_held_to_the_same_tolerance(fitted):
    """The tolerance is the caller's, never the previous result's gap: after an uncertified forget,
    the next forget must still bring every row within it to be certified."""
    C, model = fitted
    first, rec1 = model.forget(C, users=[5], tolerance=TOLERANCE, max_iterations=0)
    assert not rec1.certified
    second, rec2 = first.forget(C, users=[7], tolerance=TOLERANCE, max_iterations=0)
    both = apply_deletions(C, second.deleted_pairs_).C
    assert rec2.bound == TOLERANCE and rec2.gap == pytest.approx(dense_residuals(second, both), rel=1e-9)
    assert not rec2.certified
    third, rec3 = first.forget(C, users=[7], tolerance=TOLERANCE)
    assert rec3.certified and dense_residuals(third, both) <= TOLERANCE * (1 + 1e-9)


def test_a_certificate_names_its_model_and_data_and_is_reverified(fitted):
    from bilinrec.models.als.forget import CertificateError, verify_certificate

    C, model = fitted
    out, record = model.forget(C, users=[5], pairs=user_history(C, [8])[:2], tolerance=TOLERANCE)
    cert = record.details["certificate"]
    assert cert["tolerance"] == TOLERANCE and cert["users"] == [5] and len(cert["deleted_pairs"]) == C[5].nnz + 2
    checked = verify_certificate(out, C, cert)
    assert checked["gap"] == pytest.approx(record.gap, rel=1e-9) and checked["zero_users"] == 1
    shuffled = out.copy()
    shuffled.item_factors_[:] = shuffled.item_factors_[::-1].copy()
    with pytest.raises(CertificateError, match="the model is not the one certified"):
        verify_certificate(shuffled, C, cert)
    edited = C.copy()
    edited.data[3] += 1.0
    with pytest.raises(CertificateError, match="the data is not the one certified"):
        verify_certificate(out, edited, cert)
    with pytest.raises(CertificateError, match="over the tolerance"):
        verify_certificate(out, C, {**cert, "tolerance": record.gap / 2})
    with pytest.raises(CertificateError, match="do not match"):
        verify_certificate(out, C, {**cert, "deleted_pairs": cert["deleted_pairs"][1:]})
    for users in ([10**6], [-1], "5", [5.0]):  # an edited certificate: an error naming the field, not a crash
        with pytest.raises(CertificateError, match="users must be a list of user ids"):
            verify_certificate(out, C, {**cert, "users": users})
    untouched_model = model.copy()  # the original, named as the forgotten model: its hash differs
    with pytest.raises(CertificateError, match="model is not"):
        verify_certificate(untouched_model, C, {**cert, "model_sha256": cert["model_sha256"]})


def test_the_ledger_says_exact_only_when_the_objective_is_retrainings():
    C = random_implicit(40, 30, seed=12)  # varying confidences given pre-computed (weighting=None)
    model = ALS(factors=3, iterations=5, random_state=0).fit(C)
    with pytest.warns(UserWarning, match="not recomputed"):
        out = model.unlearn(C, user_history(C, [1]), max_iterations=1)
    assert out.ledger_[-1]["exact"] is False and out.ledger_[-1]["weights"] == "given (not recomputed)"
    binary = sp.csr_matrix((C.toarray() > 0).astype(float))
    model = ALS(factors=3, iterations=5, random_state=0, weighting=Weighting("bm25")).fit(binary)
    out = model.unlearn(binary, user_history(binary, [1]), max_iterations=1)
    assert out.ledger_[-1]["exact"] is True and out.ledger_[-1]["weights"] == "recomputed"
    frozen = model.unlearn(binary, user_history(binary, [1]), max_iterations=1, frozen_weights=True)
    assert frozen.ledger_[-1]["exact"] is False
    plain = ALS(factors=3, iterations=5, random_state=0).fit(binary)
    assert plain.unlearn(binary, user_history(binary, [1]), max_iterations=1).ledger_[-1]["exact"] is True


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_certificate_holds_for_float32_factors_and_both_row_solvers(solver):
    C = random_implicit(40, 30, seed=10)
    model = ALS(factors=4, regularization=0.3, iterations=20, random_state=3, dtype=np.float32, solver=solver).fit(C)
    tolerance = 1.2 * dense_residuals(model, C)  # the caller's choice: a little over the trained level
    out, record = model.forget(C, users=[0, 11], tolerance=tolerance)
    reduced = apply_deletions(C, user_history(C, [0, 11])).C
    assert record.certified and record.details["row_solver"] == solver
    assert not out.user_factors_[[0, 11]].any()
    assert out.user_factors_.dtype == np.float32
    assert record.gap == pytest.approx(dense_residuals(out, reduced), rel=1e-9)


@pytest.mark.parametrize("kind", ["explicit", "scaled-weighted", "pairs"])
def test_certificate_holds_for_explicit_feedback_weighting_scaling_and_records(kind):
    if kind == "explicit":
        C = random_ratings(40, 30, seed=4)
        model = ALS(factors=3, regularization=0.5, feedback="explicit", iterations=30, random_state=2).fit(C)
        pairs = user_history(C, [2])
    else:
        C = random_implicit(40, 30, seed=5)
        params = {"scale_regularization": True, "weighting": Weighting("linear", alpha=2.0)} \
            if kind == "scaled-weighted" else {}
        model = ALS(factors=3, regularization=0.05, iterations=30, random_state=2, **params).fit(C)
        pairs = np.vstack([user_history(C, [2])[:2], user_history(C, [9])[-1:]])
    tolerance = 1.2 * dense_residuals(model, C)
    out, record = model.forget(C, pairs=pairs, batch_rows=3, tolerance=tolerance)
    reduced = apply_deletions(C, pairs).C
    assert record.certified and record.users == [] and record.records == len(pairs)
    assert record.gap == pytest.approx(dense_residuals(out, reduced), rel=1e-9, abs=1e-12)
    assert max(r["rows"] for r in record.details["rounds"] if not r["forced"]) <= 3


def test_exact_forget_reaches_the_fixed_point_of_retraining():
    C = random_implicit(n_users=25, n_items=20, seed=6)
    model = ALS(factors=3, regularization=0.5, iterations=2000, tol=1e-15, random_state=1).fit(C)
    out, record = model.forget(C, users=[4], method="exact")
    reduced = apply_deletions(C, user_history(C, [4])).C
    retrained = ALS(factors=3, regularization=0.5, iterations=2000, tol=1e-15, random_state=7).fit(reduced)
    check = out.copy().set_params(iterations=1, tol=0.0).fit(reduced, warm_start=True)
    assert abs(check.history_[1]["objective"] - check.history_[0]["objective"]) / check.history_[0]["objective"] < 1e-9
    assert out.objective(reduced) == pytest.approx(retrained.objective(reduced), rel=1e-9)
    np.testing.assert_allclose(out.predict(*np.nonzero(np.ones(C.shape))),
                               retrained.predict(*np.nonzero(np.ones(C.shape))), atol=1e-6)
    assert record.method == "exact" and record.bound is None and not record.certified
    assert record.gap == pytest.approx(dense_residuals(out, reduced), rel=1e-6, abs=1e-12) and record.gap < 1e-6
    assert record.details["sweeps"] >= 1 and record.rows_touched >= sum(C.shape)
    # the certified forget, continued by exact sweeps, meets the same fixed point
    certified = model.forget(C, users=[4], tolerance=1e-3).model
    assert certified.objective(reduced) >= out.objective(reduced) - 1e-12


@pytest.mark.parametrize("method", ["certified", "exact"])
def test_forget_leaves_self_and_data_unchanged_and_updates_the_ledger(fitted, method):
    C, model = fitted
    C_before = C.copy()
    U, V = model.user_factors_.copy(), model.item_factors_.copy()
    history, ledger = [dict(r) for r in model.history_], [dict(e) for e in model.ledger_]
    out, record = model.forget(C, users=[1, 8], method=method, max_iterations=3)
    np.testing.assert_array_equal(model.user_factors_, U)
    np.testing.assert_array_equal(model.item_factors_, V)
    assert model.history_ == history and model.ledger_ == ledger and len(model.deleted_pairs_) == 0
    assert (C != C_before).nnz == 0 and np.array_equal(C.indices, C_before.indices)
    expected = user_history(C, [1, 8])
    np.testing.assert_array_equal(out.deleted_pairs_, expected)
    assert out.ledger_[-1]["count"] == len(expected) and out.ledger_[-1]["mode"] == "retrain"
    assert record.users == [1, 8] and record.records == len(expected)
    # forgetting again with the ORIGINAL data removes the earlier deletions too and never re-learns them
    twice, second = out.forget(C, users=[3], method=method, max_iterations=3)
    assert second.details.get("reapplied", len(expected)) == len(expected)
    assert len(twice.deleted_pairs_) == len(expected) + C[3].nnz and twice.ledger_[-1]["reapplied"] == len(expected)
    if method == "certified":
        both = apply_deletions(C, np.vstack([expected, user_history(C, [3])])).C
        assert second.gap == pytest.approx(dense_residuals(twice, both), rel=1e-9)
    with pytest.raises(ValueError, match="already forgotten"):
        out.forget(C, users=[1], method=method)


def test_bad_arguments_name_the_argument(fitted):
    C, model = fitted
    free = np.argwhere(C.toarray() == 0)[:1]
    with pytest.raises(ValueError, match="method must be one of 'exact', 'certified'"):
        model.forget(C, users=[0], method="dp")
    with pytest.raises(ValueError, match="users= .* or pairs="):
        model.forget(C)
    with pytest.raises(ValueError, match=r"users: user id 40 out of range \[0, 40\)"):
        model.forget(C, users=[40])
    with pytest.raises(ValueError, match="users must be a 1-D sequence"):
        model.forget(C, users=[[1, 2]])
    with pytest.raises(ValueError, match="pairs: 1 pair.s. are not stored cells of C"):
        model.forget(C, pairs=free)
    with pytest.raises(ValueError, match=r"pairs must be an \(n, 2\) integer array"):
        model.forget(C, pairs=[1, 2, 3])
    with pytest.raises(ValueError, match="pairs: duplicate pair"):
        model.forget(C, pairs=np.vstack([user_history(C, [0])[:1]] * 2))
    with pytest.raises(ValueError, match="max_iterations must be"):
        model.forget(C, users=[0], max_iterations=-1)
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="tolerance must be a finite number > 0"):
            model.forget(C, users=[0], tolerance=bad)
    with pytest.raises(ValueError, match="batch_rows must be"):
        model.forget(C, users=[0], batch_rows=0)
    with pytest.raises(ValueError, match="C has shape"):
        model.forget(C[:, :-1], users=[0])
    with pytest.raises(RuntimeError, match="fitted"):
        ALS().forget(C, users=[0])


def test_a_user_without_stored_cells_is_an_error(fitted):
    C, model = fitted
    empty = C.tolil()
    empty[6, :] = 0
    empty = sp.csr_matrix(empty)
    empty.eliminate_zeros()
    with pytest.raises(ValueError, match="users: user 6 has no stored cells in C; nothing to forget"):
        model.forget(empty, users=[6])


def test_certified_is_not_claimed_where_it_is_not_implemented():
    C = random_ratings(40, 30, seed=8)
    biased = ALS(factors=2, feedback="explicit", use_bias=True, iterations=3).fit(C)
    with pytest.raises(NotImplementedError, match="biases.*method='exact'"):
        biased.forget(C, users=[0])
    assert biased.forget(C, users=[0], method="exact", max_iterations=2).record.gap >= 0
    X = sp.csr_matrix((random_implicit(40, 30, seed=9).toarray() > 0).astype(float))
    bm25 = ALS(factors=2, iterations=3, weighting=Weighting("bm25")).fit(X)
    with pytest.raises(NotImplementedError, match="bm25 weighting"):
        bm25.forget(X, users=[0])


def test_pending_gramian_bound_triggers_exact_recompute():
    """SideResiduals screens rows by |R_u| + |x_u| |D|_2: a row whose stored residual is under the
    level but whose pending Gramian term lifts it over must be computed exactly and reported."""
    from bilinrec.models.als.residuals import SideResiduals, norms

    rng = np.random.default_rng(0)
    F = rng.normal(size=(50, 3))
    R = rng.normal(scale=0.1, size=(50, 3))
    F[7] = [10.0, 0.0, 0.0]  # a large factor row ...
    R[7] = [0.5, 0.0, 0.0]  # ... whose stored residual (0.5) is under the level 1
    D = np.diag([0.2, 0.0, 0.0])  # the pending term adds F[7] D = [2, 0, 0]: exact residual 2.5
    side = SideResiduals(F, R.copy(), D.copy(), norms(R), norms(F))
    exact = norms(R + F @ D)
    assert norms(R)[7] < 1.0 < side.upper()[7] and exact[7] == pytest.approx(2.5)
    rows, n = side.over(1.0)
    np.testing.assert_array_equal(rows, np.flatnonzero(exact > 1.0))
    np.testing.assert_allclose(n, exact[rows], rtol=1e-12)
    assert 7 in rows.tolist()
    # the bound is rigorous for every row, and the exact maximum is found by computing few rows
    assert (side.upper() >= exact).all()
    top, computed = side.max()
    assert top == pytest.approx(exact.max(), rel=1e-12) and 1 <= computed <= 50
    # a pending term that cancels the stored residual: the row drops under the level exactly
    side.set(np.array([7]), np.zeros((1, 3)))
    np.testing.assert_allclose(side.exact(np.array([7])), 0.0, atol=1e-12)
    assert 7 not in side.over(1.0)[0].tolist()
    side.add_gram(-D)  # nothing pending: the stored residuals are exact again
    assert side.dnorm == 0.0 and side.max()[0] == pytest.approx(norms(side.R).max())


def test_certified_forget_state_chains_with_pending_gramian(fitted):
    """The residual state a certified forget leaves (residual vectors with a pending Gramian term)
    is exact: materialised, it matches a from-scratch pass on the reduced data, and a further
    forget uses it as its cached bound."""
    from bilinrec.models.als.residuals import SideResiduals

    C, model = fitted
    out, record = model.forget(C, users=[5], tolerance=TOLERANCE)
    reduced = apply_deletions(C, user_history(C, [5])).C
    state = out._residuals[1]
    assert any(np.abs(d).max() > 0 for d in state["D"])  # the users' re-solve left a pending term
    sides = [SideResiduals(F, R.copy(), D.copy(), rn.copy(), fn.copy())
             for F, R, D, rn, fn in zip((out.user_factors_, out.item_factors_), state["R"], state["D"],
                                        state["rn"], state["fn"])]
    fresh = out._full_residuals(out._confidences(reduced))
    for side, R in zip(sides, fresh):
        np.testing.assert_allclose(side.materialized(), R, rtol=1e-9, atol=1e-11)
    again = out.forget(C, users=[9], tolerance=TOLERANCE).record
    assert again.details["state_source"] == "cached" and again.certified


def cell_gram(model, C, axis, row):
    """``sum over the row's stored cells of (c - base) y y^T`` from dense arrays (independent of the
    library's code)."""
    confidences = model._confidences(C).toarray()
    stored = C.toarray() != 0
    weight = np.where(stored, 1.0 if model.feedback == "explicit" else confidences - 1.0, 0.0)
    other = (model.item_factors_ if axis == 0 else model.user_factors_).astype(float)
    w = weight[row] if axis == 0 else weight[:, row]
    return (other * w[:, None]).T @ other


@pytest.mark.parametrize("kind", ["implicit-weighted", "explicit"])
def test_cached_cell_grams_stay_exact_along_a_chain_of_forgets(kind, monkeypatch):
    """The cell Grams a certified forget reads instead of its rows' cells (row_grams.RowGrams) are,
    wherever the cache calls them valid, equal to a from-scratch sum on the reduced data after each
    forget of a chain; and forgetting with the cache (and the users reached by the one-pass scatter)
    gives the same model as without it (and with the gathered scatter)."""
    from bilinrec.models.als import certify, row_grams

    monkeypatch.setattr(certify, "CSR_PASS_SHARE", 0.0)  # re-solved items reach users by the CSR pass
    if kind == "explicit":
        C = random_ratings(40, 30, seed=8)
        model = ALS(factors=3, regularization=0.5, feedback="explicit", iterations=30, random_state=2).fit(C)
    else:
        C = random_implicit(40, 30, seed=8)
        model = ALS(factors=3, regularization=0.05, iterations=30, random_state=2,
                    weighting=Weighting("linear", alpha=2.0)).fit(C)
    tolerance = 1.2 * dense_residuals(model, C)
    steps = [{"users": [4]}, {"pairs": np.vstack([user_history(C, [7])[:2], user_history(C, [12])[-1:]])},
             {"users": [20]}]
    current, used = model, 0
    for step in steps:
        out, record = current.forget(C, **step, tolerance=tolerance)  # earlier deletions taken out again (ledger)
        assert record.certified
        data = apply_deletions(C, out.deleted_pairs_).C
        assert record.gap == pytest.approx(dense_residuals(out, data), rel=1e-9, abs=1e-12)
        grams = out._residuals[1]["row_grams"]
        for axis in (0, 1):
            for row in np.flatnonzero(grams.slot[axis] >= 0):
                have, mats = grams.lookup(axis, np.array([row]))
                if have[0]:
                    used += 1
                    np.testing.assert_allclose(mats[0], cell_gram(out, data, axis, row), rtol=1e-10, atol=1e-12)
        with monkeypatch.context() as patch:  # the same forget with no cache, cells gathered and sorted
            patch.setattr(row_grams, "GRAM_CACHE_BYTES_PER_CELL", 0)
            patch.setattr(certify, "CSR_PASS_SHARE", 2.0)
            plain = current.copy()
            plain._residuals = None
            ref, ref_record = plain.forget(C, **step, tolerance=tolerance)
        assert ref._residuals[1]["row_grams"].S[0].shape[0] == 0
        np.testing.assert_allclose(out.user_factors_, ref.user_factors_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(out.item_factors_, ref.item_factors_, rtol=1e-9, atol=1e-12)
        assert record.rows_touched == ref_record.rows_touched
        current = out
    assert used > 0
