"""ALS engine and exact unlearning, checked against dense brute-force formulas."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from bilinrec.models.als import (
    ALS,
    Weighting,
    apply_deletions,
    as_deletions,
    as_weighting,
    user_history,
)
from bilinrec.models.als.cells import build_cells
from bilinrec.testing.data import random_implicit, random_ratings


def dense_cells(C, feedback="implicit", mask=None, negatives=None):
    """Per-cell confidence and target matrices, written out densely."""
    D = C.toarray()
    stored = D != 0
    if feedback == "implicit":
        conf, target = np.where(stored, D, 1.0), stored.astype(float)
    else:
        conf, target = stored.astype(float), D
    if mask is not None:
        conf[mask.toarray() != 0] = 0.0
    if negatives is not None:
        N = negatives.toarray()
        conf[N != 0] = N[N != 0] if feedback == "implicit" else 1.0
        target[N != 0] = 0.0
    return conf, target


def dense_objective(model, conf, target):
    X, Y = model.user_factors_.astype(float), model.item_factors_.astype(float)
    pred = X @ Y.T
    lam_u = lam_i = model.regularization
    sq_u, sq_i = (X**2).sum(1), (Y**2).sum(1)
    if model.use_bias:
        pred = pred + model.global_mean_ + model.user_bias_[:, None] + model.item_bias_[None, :]
        sq_u, sq_i = sq_u + model.user_bias_**2, sq_i + model.item_bias_**2
    if model.scale_regularization:  # ALS-WR; only used with explicit feedback here
        lam_u = model.regularization * np.maximum((conf > 0).sum(1), 1)
        lam_i = model.regularization * np.maximum((conf > 0).sum(0), 1)
    return float(np.sum(conf * (target - pred) ** 2) + np.sum(lam_u * sq_u) + np.sum(lam_i * sq_i))


def relative(a, b):
    return abs(a - b) / abs(b)


# ------------------------------------------------------------------------------------------
# Engine
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("with_extra", [False, True])
def test_implicit_objective_matches_dense_formula(with_extra):
    C = random_implicit()
    mask = negatives = None
    if with_extra:
        rng = np.random.default_rng(1)
        free = np.argwhere(C.toarray() == 0)
        pick = free[rng.choice(len(free), 40, replace=False)]
        mask = sp.csr_matrix((np.ones(20), (pick[:20, 0], pick[:20, 1])), shape=C.shape)
        negatives = sp.csr_matrix((2 + rng.random(20), (pick[20:, 0], pick[20:, 1])), shape=C.shape)
    model = ALS(factors=4, regularization=0.3, random_state=3, iterations=2).fit(C, mask=mask, negatives=negatives)
    conf, target = dense_cells(C, "implicit", mask, negatives)
    assert relative(model.objective(C, mask=mask, negatives=negatives), dense_objective(model, conf, target)) < 1e-12
    assert relative(model.history_[-1]["objective"], dense_objective(model, conf, target)) < 1e-12


@pytest.mark.parametrize("use_bias, scaled", [(False, False), (True, False), (True, True)])
def test_explicit_objective_matches_dense_formula(use_bias, scaled):
    C = random_ratings()
    model = ALS(factors=3, regularization=0.2, feedback="explicit", use_bias=use_bias,
                scale_regularization=scaled, random_state=2, iterations=3).fit(C)
    conf, target = dense_cells(C, "explicit")
    assert relative(model.objective(C), dense_objective(model, conf, target)) < 1e-12
    if use_bias:
        assert model.global_mean_ == pytest.approx(C.data.mean())


def test_half_sweep_is_the_exact_dense_least_squares_solution():
    C = random_implicit()
    rng = np.random.default_rng(4)
    mask = sp.csr_matrix((np.ones(3), ([0, 1, 2], [0, 1, 2])), shape=C.shape)
    C = C.tolil()
    C[[0, 1, 2], [0, 1, 2]] = 0
    C = sp.csr_matrix(C)
    C.eliminate_zeros()
    model = ALS.from_factors(rng.random((30, 5)), rng.random((25, 5)), regularization=0.5)
    conf, target = dense_cells(C, "implicit", mask)
    Y = model.item_factors_.copy()
    model._half_sweep(build_cells(C, mask=mask), users=slice(None))
    for u in range(C.shape[0]):
        A = Y.T @ (conf[u][:, None] * Y) + 0.5 * np.eye(5)
        expected = np.linalg.solve(A, Y.T @ (conf[u] * target[u]))
        np.testing.assert_allclose(model.user_factors_[u], expected, rtol=1e-10, atol=1e-12)


def test_objective_decreases_monotonically_for_every_solver_and_dtype():
    C = random_implicit(60, 40, seed=5)
    for solver in ("cholesky", "cg"):
        for dtype in (np.float64, np.float32):
            model = ALS(factors=6, regularization=0.1, solver=solver, dtype=dtype, random_state=1, iterations=8).fit(C)
            objectives = [r["objective"] for r in model.history_]
            assert model.user_factors_.dtype == dtype
            assert all(b <= a * (1 + 1e-6) for a, b in zip(objectives, objectives[1:])), (solver, dtype)


def test_cg_with_enough_steps_reaches_the_exact_solution():
    C = random_implicit(seed=6)
    exact = ALS(factors=5, regularization=0.1, random_state=7, iterations=5).fit(C)
    cg = ALS(factors=5, regularization=0.1, random_state=7, solver="cg", cg_steps=30, iterations=5).fit(C)
    np.testing.assert_allclose(cg.user_factors_, exact.user_factors_, rtol=1e-6, atol=1e-9)


def test_cg_gives_rows_without_positive_cells_their_exact_solution_zero():
    C = random_implicit(seed=16).tolil()
    C[3, :] = 0  # user 3 has no positive cell: its normal equations have right-hand side 0
    C = C.tocsr()
    C.eliminate_zeros()
    model = ALS(factors=4, regularization=0.1, random_state=2, solver="cg", iterations=2).fit(C)
    assert np.all(model.user_factors_[3] == 0) and np.all(np.any(model.user_factors_ != 0, axis=1)[C.getnnz(axis=1) > 0])


def test_fit_is_deterministic_and_seed_dependent():
    C = random_implicit(seed=8)
    a = ALS(factors=4, random_state=11, iterations=3).fit(C)
    b = ALS(factors=4, random_state=11, iterations=3).fit(C)
    c = ALS(factors=4, random_state=12, iterations=3).fit(C)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    assert not np.allclose(a.user_factors_, c.user_factors_)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_worker_threads_give_the_same_model(solver):
    C = random_implicit(200, 150, density=0.1, seed=21)
    small = dict(factors=8, solver=solver, random_state=5, chunk_bytes=2**14)  # many small batches
    one = ALS(num_threads=1, **small, iterations=3).fit(C)
    two = ALS(num_threads=2, **small, iterations=3).fit(C)
    np.testing.assert_allclose(two.user_factors_, one.user_factors_, rtol=1e-10, atol=1e-13)
    # the compiled objective and scores add per-row sums in a fixed order: bitwise the same
    two.user_factors_, two.item_factors_ = one.user_factors_.copy(), one.item_factors_.copy()
    assert two.objective(C) == one.objective(C)
    users, items = np.nonzero(np.ones(C.shape))
    np.testing.assert_array_equal(two.predict(users, items), one.predict(users, items))


_FIT_AND_PRINT = """
import hashlib, numpy as np, scipy.sparse as sp
from bilinrec.models.als import ALS
rng = np.random.default_rng(3)
C = sp.random(300, 200, density=0.1, random_state=rng, format="csr") * 5
m = ALS(factors=32, solver="cg", dtype=np.float32, iterations=2, random_state=1, num_threads=1).fit(C)
print(hashlib.sha256(m.user_factors_.tobytes() + m.item_factors_.tobytes()).hexdigest(),
      m.history_[-1]["objective"].hex())
"""


def test_a_freshly_compiled_kernel_and_its_cached_copy_give_the_same_model(tmp_path):
    """The first process compiles the kernels, the second loads them from Numba's disk cache:
    with fast-math freedoms beyond reassociation and FMA (``arcp``) the two gave different float32
    fits, so a workflow's tables depended on which job compiled first."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    fresh, cached = (subprocess.run([sys.executable, "-c", _FIT_AND_PRINT], env=env, capture_output=True, text=True,
                                    check=True).stdout for _ in range(2))
    assert any(tmp_path.rglob("*.nbc")), "the first run should have filled the cache"
    assert cached == fresh


def test_history_tol_callback_and_warm_start():
    C = random_implicit(seed=9)
    seen = []

    def callback(model, record):
        seen.append(record["iteration"])
        return {"mean_score": float(model.predict([0], [0])[0])}

    model = ALS(factors=4, regularization=0.1, iterations=200, tol=1e-4).fit(C, callback=callback)
    sweeps = model.history_[1:]
    assert model.history_[0]["phase"] == "start" and len(sweeps) < 200
    assert sweeps[-1]["rel_change"] < 1e-4 <= sweeps[-2]["rel_change"]
    assert seen == [r["iteration"] for r in sweeps] and "mean_score" in sweeps[-1]
    assert model.train_iterations_ == len(sweeps) and model.sweep_seconds_ > 0
    start = model.history_[-1]["objective"]
    model.set_params(iterations=1, tol=0.0).fit(C, warm_start=True)
    assert model.history_[0]["objective"] == pytest.approx(start, rel=1e-12)


def test_factors_interchange_with_the_implicit_library():
    import implicit.cpu.als as implicit_als
    C = random_implicit(40, 30, seed=10)
    C.data = C.data.astype(np.float32).astype(np.float64)  # implicit stores confidences as float32
    rng = np.random.default_rng(0)
    U, V = rng.random((40, 6)) * 0.1, rng.random((30, 6)) * 0.1
    with threadpool_limits(1, "blas"):  # as implicit recommends
        theirs = implicit_als.AlternatingLeastSquares(factors=6, regularization=0.05, iterations=1, use_cg=False,
                                                      dtype=np.float64, num_threads=1, calculate_training_loss=False)
        theirs.user_factors, theirs.item_factors = U.copy(), V.copy()
        theirs.fit(C, show_progress=False)
    ours = ALS.from_factors(U, V, regularization=0.05, iterations=1).fit(C, warm_start=True)
    np.testing.assert_allclose(ours.user_factors_, theirs.user_factors, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.item_factors_, theirs.item_factors, rtol=1e-9, atol=1e-12)


def test_cg_sweep_matches_the_implicit_reference_cg():
    import implicit.cpu.als as implicit_als
    C = random_implicit(40, 30, seed=19)
    C.data = C.data.astype(np.float32).astype(np.float64)
    rng = np.random.default_rng(1)
    U, V = rng.random((40, 6)) * 0.1, rng.random((30, 6)) * 0.1
    with threadpool_limits(1, "blas"):  # implicit's pure-Python CG: the algorithm in full float64
        theirs = implicit_als.AlternatingLeastSquares(factors=6, regularization=0.05, iterations=2, use_cg=True,
                                                      use_native=False, dtype=np.float64, num_threads=1,
                                                      calculate_training_loss=False)
        theirs.user_factors, theirs.item_factors = U.copy(), V.copy()
        theirs.fit(C, show_progress=False)
    ours = ALS.from_factors(U, V, regularization=0.05, solver="cg", iterations=2).fit(C, warm_start=True)
    np.testing.assert_allclose(ours.user_factors_, theirs.user_factors, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.item_factors_, theirs.item_factors, rtol=1e-10, atol=1e-12)


def test_save_load_roundtrip(tmp_path):
    C = random_ratings(seed=11)
    model = ALS(factors=3, feedback="explicit", use_bias=True, dtype=np.float32, random_state=4, iterations=2).fit(C)
    model.save(tmp_path / "m.npz")
    loaded = ALS.load(tmp_path / "m.npz")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.user_factors_, model.user_factors_)
    np.testing.assert_array_equal(loaded.item_bias_, model.item_bias_)
    assert loaded.history_ == model.history_ and loaded.train_iterations_ == 2
    assert loaded.objective(C) == pytest.approx(model.objective(C), rel=1e-12)


# ------------------------------------------------------------------------------------------
# Deletions and Unlearn-ALS
# ------------------------------------------------------------------------------------------
def some_deletions(C, fraction=0.2, seed=0):
    coo = C.tocoo()
    rng = np.random.default_rng(seed)
    pick = rng.choice(C.nnz, int(fraction * C.nnz), replace=False)
    return np.column_stack([coo.row[pick], coo.col[pick]])


def without(C, pairs):
    D = C.toarray()
    D[pairs[:, 0], pairs[:, 1]] = 0
    return sp.csr_matrix(D)


def test_apply_deletions_modes_leave_input_untouched():
    C = random_implicit(seed=12)
    before = C.copy()
    pairs = some_deletions(C)
    values = C.toarray()[pairs[:, 0], pairs[:, 1]]
    retrain = apply_deletions(C, pairs, "retrain")
    assert (retrain.C != without(C, pairs)).nnz == 0 and retrain.mask is None and retrain.negatives is None
    masked = apply_deletions(C, pairs, "mask")
    assert set(map(tuple, np.argwhere(masked.mask.toarray()))) == set(map(tuple, pairs))
    naive = apply_deletions(C, pairs, "naive")
    np.testing.assert_array_equal(naive.negatives.toarray()[pairs[:, 0], pairs[:, 1]], values)
    assert (C != before).nnz == 0
    explicit = apply_deletions(random_ratings(), user_history(random_ratings(), [0]), "naive", feedback="explicit")
    assert set(np.unique(explicit.negatives.data)) == {1.0}


@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_retrain_mode_objective_is_the_retraining_objective(feedback):
    C = random_implicit(seed=13) if feedback == "implicit" else random_ratings(seed=13)
    params = dict(factors=4, regularization=0.1, feedback=feedback, use_bias=feedback == "explicit", random_state=1)
    model = ALS(**params, iterations=10).fit(C)
    pairs = some_deletions(C, seed=1)
    reduced = without(C, pairs)
    unlearned = model.unlearn(C, pairs, mode="retrain", max_iterations=0, local_update=False)
    # start of unlearning = original factors on the reduced data; biased models use the new mean
    retrain_view = ALS.from_factors(model.user_factors_, model.item_factors_, user_bias=model.user_bias_,
                                    item_bias=model.item_bias_, global_mean=unlearned.global_mean_, **params)
    assert relative(unlearned.history_[0]["objective"], retrain_view.objective(reduced)) < 1e-10
    conf, target = dense_cells(reduced, feedback)
    assert relative(retrain_view.objective(reduced), dense_objective(retrain_view, conf, target)) < 1e-10
    if feedback == "explicit":
        assert unlearned.global_mean_ == pytest.approx(reduced.data.mean())


@pytest.mark.parametrize("feedback, mode", [("implicit", "retrain"), ("explicit", "retrain"),
                                            ("implicit", "mask"), ("implicit", "naive"), ("explicit", "naive")])
def test_unlearning_converges_to_a_fixed_point_of_the_modified_objective(feedback, mode):
    C = random_implicit(seed=14) if feedback == "implicit" else random_ratings(seed=14)
    model = ALS(factors=4, regularization=0.5, feedback=feedback, use_bias=feedback == "explicit",
                random_state=2, iterations=30).fit(C)
    original = model.user_factors_.copy()
    pairs = some_deletions(C, seed=2)
    unlearned = model.unlearn(C, pairs, mode=mode, max_iterations=2000, tol=1e-13)
    history = unlearned.history_
    assert [r["phase"] for r in history[:3]] == ["start", "local", "sweep"]
    assert history[-1]["rel_change"] < 1e-13
    data = apply_deletions(C, pairs, mode, feedback=feedback)
    check = unlearned.copy().set_params(iterations=1, tol=0.0).fit(data.C, warm_start=True, mask=data.mask, negatives=data.negatives)
    assert check.history_[0]["objective"] == pytest.approx(history[-1]["objective"], rel=1e-12)
    assert relative(check.history_[1]["objective"], check.history_[0]["objective"]) < 1e-9
    np.testing.assert_array_equal(model.user_factors_, original)  # the original model is kept


def test_explicit_feedback_mask_and_retrain_agree():
    C = random_ratings(seed=20)
    model = ALS(factors=3, regularization=0.3, feedback="explicit", random_state=1, iterations=10).fit(C)
    pairs = np.vstack([user_history(C, [0]), user_history(C, [3])[:2]])  # whole and partial histories
    retrain = model.unlearn(C, pairs, mode="retrain", max_iterations=5)
    masked = model.unlearn(C, pairs, mode="mask", max_iterations=5)
    np.testing.assert_allclose(masked.user_factors_, retrain.user_factors_, rtol=1e-12, atol=1e-14)


def test_local_update_lowers_the_objective_before_full_sweeps():
    C = random_implicit(60, 50, seed=15)
    model = ALS(factors=5, regularization=0.1, random_state=3, iterations=30).fit(C)
    unlearned = model.unlearn(C, user_history(C, [0, 1]), max_iterations=3)
    start, local = unlearned.history_[0]["objective"], unlearned.history_[1]["objective"]
    assert local < start


def planted(n_users=150, n_items=120, rank=3, seed=0):
    """Binary matrix thresholded from a planted rank-``rank`` score matrix, with held-out cells."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items))
    truth = scores > np.quantile(scores, 0.85)
    held = rng.random(truth.shape) < 0.05
    train = sp.csr_matrix(np.where(truth & ~held, 5.0, 0.0))
    return train, truth, held


def auc(model, truth, held):
    users, items = np.nonzero(held)
    score = model.predict(users, items)
    label = truth[users, items]
    ranks = np.argsort(np.argsort(score)) + 1
    n_pos, n_neg = label.sum(), (~label).sum()
    return (ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def test_unlearned_auc_lies_in_the_seed_band_of_retrained_models():
    train, truth, held = planted()
    params = dict(factors=3, regularization=1.0)
    original = ALS(random_state=0, **params, iterations=40).fit(train)
    pairs = some_deletions(train, fraction=0.2, seed=3)
    reduced = without(train, pairs)
    retrained = [auc(ALS(random_state=s, **params, iterations=40).fit(reduced), truth, held) for s in range(1, 6)]
    unlearned = auc(original.unlearn(train, pairs, max_iterations=40), truth, held)
    low, high = min(retrained), max(retrained)
    assert low > 0.8  # the planted structure is learnable at all
    assert low - (high - low) <= unlearned <= high + (high - low), (unlearned, retrained)
    # the band is narrow enough to tell: the model that still knows the deleted cells is outside it
    assert auc(original, truth, held) > high + (high - low)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------
def test_bad_inputs_name_the_argument():
    C = random_implicit(seed=16)
    model = ALS(factors=3, iterations=1).fit(C)
    observed = np.argwhere(C.toarray() != 0)
    free = np.argwhere(C.toarray() == 0)
    with pytest.raises(ValueError, match="not observed cells of C"):
        model.unlearn(C, free[:2])
    with pytest.raises(ValueError, match="deletions: user id 30 out of range"):
        model.unlearn(C, [[30, 0]])
    with pytest.raises(ValueError, match="deletions: duplicate pair"):
        model.unlearn(C, np.vstack([observed[:1], observed[:1]]))
    with pytest.raises(ValueError, match="integer"):
        model.unlearn(C, np.array([[0.5, 1.0]]))
    bad = C.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="C contains NaN"):
        ALS().fit(bad)
    bad.data[0] = -1.0
    with pytest.raises(ValueError, match="negative confidences"):
        ALS().fit(bad)
    with pytest.raises(ValueError, match="C has shape"):
        model.unlearn(C[:, :-1], observed[:1])
    with pytest.raises(ValueError, match="user_factors and item_factors differ"):
        ALS.from_factors(np.ones((3, 2)), np.ones((4, 3)))
    with pytest.raises(ValueError, match="mask has shape"):
        ALS().fit(C, mask=sp.csr_matrix((2, 2)))
    with pytest.raises(ValueError, match="must not share cells"):
        ALS().fit(C, mask=C)
    with pytest.raises(ValueError, match="mode must be one of"):
        model.unlearn(C, observed[:1], mode="forget")
    with pytest.raises(ValueError, match="factors must be"):
        ALS(factors=0).fit(C)  # parameters are checked by fit, not by the constructor
    with pytest.raises(ValueError, match="random_state must be"):
        ALS(random_state=-1).fit(C)
    with pytest.raises(ValueError, match="iterations must be"):
        ALS(iterations=1.5).fit(C)
    with pytest.raises(RuntimeError, match="fitted"):
        ALS().unlearn(C, observed[:1])


def test_empty_deletions_warn_and_change_nothing():
    C = random_implicit(seed=17)
    model = ALS(factors=3, iterations=2).fit(C)
    with pytest.warns(UserWarning, match="empty deletion set"):
        same = model.unlearn(C, np.empty((0, 2), dtype=int))
    np.testing.assert_array_equal(same.user_factors_, model.user_factors_)
    assert as_deletions(np.empty((0, 2), dtype=int), C.shape).shape == (0, 2)


def test_deleting_a_whole_user_history_is_allowed():
    C = random_implicit(seed=18)
    model = ALS(factors=3, regularization=0.1, iterations=5).fit(C)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="forgetting with confidences given pre-computed")  # C varies
        forgotten = model.unlearn(C, user_history(C, [4]), max_iterations=50, tol=1e-12)
    # implicit feedback: a user without positives is pushed to score 0 everywhere
    assert np.abs(forgotten.predict(np.full(25, 4), np.arange(25))).max() < 1e-8
    assert user_history(C, [4]).shape[0] == C[4].nnz


def test_predict_and_load_reject_bad_input(tmp_path):
    model = ALS(factors=2, iterations=1).fit(random_implicit(seed=22))
    with pytest.raises(ValueError, match="items must be integer ids"):
        model.predict([0], [25])
    with pytest.raises(ValueError, match="same shape"):
        model.predict([0, 1], [0])
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not an ALS model file"):
        ALS.load(tmp_path / "other.npz")


@pytest.mark.parametrize("k", [1, 7, 37])
def test_compiled_stacked_cholesky_matches_lapack(k):
    from scipy.linalg import cho_factor, cho_solve

    from bilinrec.models.als.chol import spd_solve

    rng = np.random.default_rng(k)
    F = rng.standard_normal((9, 2 * k + 3, k))
    A = np.matmul(F.transpose(0, 2, 1), F) + 0.1 * np.eye(k)
    b = rng.standard_normal((9, k))
    x, bad = spd_solve(A, b)
    assert bad == -1
    for r in range(9):
        np.testing.assert_allclose(x[r], cho_solve(cho_factor(A[r], lower=True), b[r]), rtol=1e-9, atol=1e-12)
    A[4] = -np.eye(k)
    assert spd_solve(A, b)[1] == 4


def test_compiled_row_solver_matches_the_dense_normal_equations():
    """Rows of any length (cells in rank-4 groups and a remainder), weights below the base (c < 1),
    targets other than 1 (negatives), shifted targets, a subset of rows and two threads."""
    from bilinrec.models.als.chol import cholesky_solve_rows

    rng = np.random.default_rng(31)
    C = random_implicit(40, 35, density=0.3, seed=31)
    negatives = sp.csr_matrix((rng.random((40, 35)) < 0.05) * (C.toarray() == 0) * 2.0)
    cells = build_cells(C, negatives=negatives)
    conf, target = dense_cells(C, "implicit", negatives=negatives)
    stored = (C + negatives).toarray() != 0
    k = 9
    Y = rng.standard_normal((35, k))
    shift = rng.standard_normal(35)
    reg = 0.1 + rng.random(40)
    rows = np.array([0, 3, 4, 17, 39])
    for workers in (1, 2):
        X = rng.standard_normal((40, k))
        expected = X.copy()
        for u in rows:
            A = Y.T @ (conf[u][:, None] * Y) + reg[u] * np.eye(k)
            expected[u] = np.linalg.solve(A, Y.T @ (stored[u] * conf[u] * (target[u] - shift)))
        cholesky_solve_rows(X, rows, cells.csr(0), Y, 1.0, reg, shift, workers)
        np.testing.assert_allclose(X, expected, rtol=1e-9, atol=1e-12)


def test_singular_normal_equations_name_the_row():
    C = random_ratings(seed=23).tolil()
    C[7, :] = 0  # user 7 has no ratings: with no regularization its normal matrix is 0
    C = sp.csr_matrix(C)
    C.eliminate_zeros()
    with pytest.raises(np.linalg.LinAlgError, match="row 7 is not positive definite"):
        ALS(factors=2, regularization=0.0, feedback="explicit", iterations=1).fit(C)


# ------------------------------------------------------------------------------------------
# scikit-learn estimator convention
# ------------------------------------------------------------------------------------------
def test_estimator_convention_params_and_fitted_attributes():
    model = ALS(factors=0, dtype="float32", random_state=3)  # stored as given, not checked yet
    assert model.get_params()["factors"] == 0 and model.get_params()["dtype"] == "float32"
    assert not hasattr(model, "user_factors_") and not hasattr(model, "user_factors")
    assert model.set_params(factors=3, iterations=2) is model
    with pytest.raises(ValueError, match="invalid parameter 'seed'"):
        model.set_params(seed=1)
    assert "random_state=3" in repr(model) and "iterations=2" in repr(model)
    model.fit(random_implicit(seed=24))
    assert model.user_factors_.dtype == np.float32 and model.train_iterations_ == 2
    again = ALS(**model.get_params()).fit(random_implicit(seed=24))
    np.testing.assert_array_equal(again.item_factors_, model.item_factors_)
    sklearn_base = pytest.importorskip("sklearn.base")
    clone = sklearn_base.clone(model)
    assert clone.get_params() == model.get_params() and not clone.is_fitted


def test_model_files_of_the_previous_version_still_load(tmp_path):
    """Files written before random_state/iterations: params hold 'seed' and no 'iterations'."""
    import json

    C = random_implicit(seed=25)
    model = ALS(factors=3, iterations=2, random_state=9).fit(C)
    meta = {"format": "bilinrec-als-1",
            "params": {"factors": 3, "regularization": 0.01, "feedback": "implicit", "solver": "cholesky",
                       "cg_steps": 3, "dtype": "float64", "seed": 9, "use_bias": False,
                       "scale_regularization": False, "num_threads": None, "chunk_bytes": 16 * 2**20},
            "global_mean": 0.0, "train_iterations": 2, "sweep_seconds": 0.001, "history": []}
    np.savez(tmp_path / "old.npz", user_factors=model.user_factors_, item_factors=model.item_factors_,
             meta=np.array(json.dumps(meta)))
    old = ALS.load(tmp_path / "old.npz")
    assert old.random_state == 9 and old.iterations == 15 and old.train_iterations_ == 2
    np.testing.assert_array_equal(old.user_factors_, model.user_factors_)
    refit = old.copy().set_params(iterations=2).fit(C)
    np.testing.assert_array_equal(refit.user_factors_, model.user_factors_)
    # a weighting of an older file names its BM25 axis "rows"
    meta["params"]["weighting"] = {"scheme": "bm25", "scale": 5.0, "rows": "users"}
    np.savez(tmp_path / "old.npz", user_factors=model.user_factors_, item_factors=model.item_factors_,
             meta=np.array(json.dumps(meta)))
    assert ALS.load(tmp_path / "old.npz").get_params()["weighting"]["bm25_rows"] == "users"


# ------------------------------------------------------------------------------------------
# Deletion through the whole pipeline: recomputed weights, ledger, one deletion shape
# ------------------------------------------------------------------------------------------
def binary_matrix(n_users=40, n_items=30, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix((rng.random((n_users, n_items)) < density).astype(float))
    X.eliminate_zeros()
    return X


BM25 = {"scheme": "bm25", "scale": 5.0, "K1": 100.0, "B": 0.9, "bm25_rows": "items"}


def _one_sweep_rel_change(model, X):
    """Relative objective change of one more exact sweep of the RETRAINING objective on X."""
    check = model.copy().set_params(iterations=1, tol=0.0, solver="cholesky")
    check.deleted_pairs_ = np.empty((0, 2), dtype=np.int64)  # X is the reduced data: nothing to resurrect
    check.fit(X, warm_start=True)
    return check.history_[-1]["rel_change"]


def test_unlearning_reaches_the_fixed_point_of_retraining_with_recomputed_weights():
    """Done criterion of issue 14: retrain mode + recomputed BM25 weights reaches the fixed point of
    retraining-from-scratch's objective on the reduced data to 1e-9; the frozen-weight shortcut
    (confidences computed with the deleted records) does not."""
    X = binary_matrix(seed=31)
    model = ALS(factors=4, regularization=0.5, iterations=300, tol=1e-14, random_state=1, weighting=BM25).fit(X)
    pairs = some_deletions(X, fraction=0.1, seed=4)
    reduced = apply_deletions(X, pairs, "retrain").C
    exact = model.unlearn(X, pairs, max_iterations=3000, tol=1e-15)
    frozen = model.unlearn(X, pairs, max_iterations=3000, tol=1e-15, frozen_weights=True)
    assert _one_sweep_rel_change(exact, reduced) < 1e-9
    assert _one_sweep_rel_change(frozen, reduced) > 1e-9
    # the objective it minimised IS retraining's: same value on the same factors
    retrain_view = ALS(factors=4, regularization=0.5, weighting=BM25)
    assert exact.history_[-1]["objective"] == pytest.approx(
        ALS.from_factors(exact.user_factors_, exact.item_factors_, regularization=0.5,
                         weighting=BM25).objective(reduced), rel=1e-12)
    assert retrain_view.get_params()["weighting"] == BM25
    # BM25 on the reduced data differs from BM25 on the full data on the remaining cells
    w = model.weighting
    full, red = ALS(weighting=w)._confidences(X), ALS(weighting=w)._confidences(reduced)
    assert np.abs(full.multiply(red.astype(bool)).data - red.data).max() > 1e-3
    assert exact.ledger_[-1]["weights"] == "recomputed" and exact.ledger_[-1]["exact"]
    assert frozen.ledger_[-1]["weights"] == "frozen" and not frozen.ledger_[-1]["exact"]


def test_ledger_forgetting_twice_never_resurrects(tmp_path):
    X = binary_matrix(seed=32)
    model = ALS(factors=3, regularization=0.3, iterations=50, random_state=2, weighting=BM25).fit(X)
    first, second = some_deletions(X, 0.05, seed=1), None
    once = model.unlearn(X, first, max_iterations=500, tol=1e-14)
    rest = apply_deletions(X, first, "retrain").C
    second = some_deletions(rest, 0.05, seed=2)
    # the original matrix (still holding `first`) and the reduced one give the same model
    via_original = once.unlearn(X, second, max_iterations=20, local_update=False)
    via_reduced = once.unlearn(rest, second, max_iterations=20, local_update=False)
    np.testing.assert_array_equal(via_original.user_factors_, via_reduced.user_factors_)
    assert [r["objective"] for r in via_original.history_] == [r["objective"] for r in via_reduced.history_]
    both = as_deletions(np.vstack([first, second]), X.shape)
    np.testing.assert_array_equal(via_original.deleted_pairs_, both)
    assert via_original.ledger_[-1]["reapplied"] == len(first) and via_reduced.ledger_[-1]["reapplied"] == 0
    assert via_original.forgotten_["count"] == len(both)
    # the objective is that of forgetting both at once
    at_once = model.unlearn(X, both, max_iterations=0, local_update=False)
    assert via_original.objective(apply_deletions(X, both, "retrain").C) == pytest.approx(
        via_original.history_[-1]["objective"], rel=1e-12)
    np.testing.assert_array_equal(at_once.deleted_pairs_, both)
    with pytest.raises(ValueError, match="already forgotten"):
        once.unlearn(X, first[:1])
    with pytest.raises(ValueError, match="re-learn"):
        once.copy().fit(X, warm_start=True)
    once.save(tmp_path / "once.npz")
    loaded = ALS.load(tmp_path / "once.npz")
    np.testing.assert_array_equal(loaded.deleted_pairs_, as_deletions(first, X.shape))
    assert loaded.ledger_ == once.ledger_ and loaded.forgotten_["sha256"] == once.forgotten_["sha256"]
    assert as_weighting(loaded.weighting) == Weighting(**BM25)


def test_weighting_has_one_spelling_and_names_an_unknown_key():
    assert as_weighting({"scheme": "bm25", "bm25_rows": "users"}).bm25_rows == "users"
    with pytest.raises(ValueError, match=r"unknown key\(s\) 'rows'; expected some of .*bm25_rows"):
        Weighting.from_dict({"scheme": "bm25", "rows": "users"})
    with pytest.raises(ValueError, match=r"unknown key\(s\) 'K2', 'rows'"):
        ALS(factors=2, iterations=1, weighting={"scheme": "bm25", "rows": "users", "K2": 1.0}).fit(binary_matrix())


def test_deletions_have_one_unambiguous_shape():
    C = random_implicit(seed=33)
    rows = np.argwhere(C.toarray() != 0)[:2]
    # a list of two pairs, or an (n, 2) array, is two (user, item) rows
    np.testing.assert_array_equal(as_deletions(rows.tolist(), C.shape), rows)
    np.testing.assert_array_equal(as_deletions(list(map(tuple, rows)), C.shape), rows)
    np.testing.assert_array_equal(as_deletions(rows, C.shape), rows)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        as_deletions({0: [1, 2]}, C.shape)
    with pytest.raises(ValueError, match="integer"):
        as_deletions(rows.astype(float), C.shape)


PARALLEL = {
    "tuple of arrays": lambda users, items: (users, items),
    "list of arrays": lambda users, items: [users, items],
    "tuple of lists": lambda users, items: (users.tolist(), items.tolist()),
}


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("spelling", sorted(PARALLEL))
@pytest.mark.parametrize("entry", ["apply_deletions", "unlearn", "forget"])
def test_parallel_user_item_arrays_are_rejected_for_every_length(entry, spelling, n):
    """Parallel ``(users, items)`` arrays of length 2 read as two (user, item) rows; on a dense
    matrix both are stored cells, so the wrong records were deleted without an error."""
    C = sp.csr_matrix(1 + np.random.default_rng(35).random((6, 6)))
    users, items = np.arange(n), np.arange(n) + 3
    given = PARALLEL[spelling](users, items)
    model = ALS(factors=2, iterations=1).fit(C)
    calls = {"apply_deletions": lambda: apply_deletions(C, given),
             "unlearn": lambda: model.unlearn(C, given, max_iterations=1),
             "forget": lambda: model.forget(C, pairs=given, max_iterations=1)}
    name = "pairs" if entry == "forget" else "deletions"
    with pytest.raises(ValueError, match=rf"^{name} must be .*np\.column_stack\(\[users, items\]\)"):
        calls[entry]()
    # the spelling the message names deletes the intended cells
    deleted = apply_deletions(C, np.column_stack([users, items])).C.toarray() == 0
    np.testing.assert_array_equal(np.argwhere(deleted), np.column_stack([users, items]))


def test_from_implicit_is_exact_including_alpha():
    import implicit.cpu.als as implicit_als
    X = binary_matrix(40, 30, seed=34)
    X.data = (1 + np.arange(X.nnz) % 3).astype(np.float32).astype(np.float64)  # counts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):
            theirs = implicit_als.AlternatingLeastSquares(factors=5, regularization=0.05, alpha=7.0, iterations=3,
                                                          use_cg=False, dtype=np.float64,
                                                          calculate_training_loss=False, random_state=3)
            theirs.fit(X, show_progress=False)
            U0, V0 = theirs.user_factors.copy(), theirs.item_factors.copy()
            theirs.iterations = 1
            theirs.fit(X, show_progress=False)  # implicit warm-starts from its factors
    model = type("FittedImplicitLike", (), {})()
    model.user_factors, model.item_factors, model.regularization, model.alpha = U0, V0, 0.05, 7.0
    model.iterations, model.use_cg = 1, False
    ours = ALS.from_implicit(model)
    assert ours.weighting.scale == 7.0
    ours.fit(X, warm_start=True)  # one exact sweep on alpha * X: implicit's objective
    np.testing.assert_allclose(ours.user_factors_, theirs.user_factors, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.item_factors_, theirs.item_factors, rtol=1e-8, atol=1e-10)
    # and from the real implicit object
    real = ALS.from_implicit(theirs)
    assert real.weighting.scale == 7.0 and real.regularization == 0.05 and real.factors == 5
    wrong = ALS.from_implicit(model, alpha=1.0).fit(X, warm_start=True)
    assert not np.allclose(wrong.user_factors_, theirs.user_factors, rtol=1e-4)


def test_stored_pairs_finds_exactly_the_stored_cells():
    from bilinrec.models.als import stored_pairs

    rng = np.random.default_rng(0)
    dense = (rng.random((30, 25)) < 0.2) * rng.random((30, 25))
    dense[4] = 0.0  # an empty row
    C = sp.csr_matrix(dense)
    pairs = np.column_stack([rng.integers(0, 30, 400), rng.integers(0, 25, 400)]).astype(np.int64)
    expected = pairs[dense[pairs[:, 0], pairs[:, 1]] != 0]
    np.testing.assert_array_equal(stored_pairs(C, pairs), expected)
    assert len(expected) and len(expected) < len(pairs)
    assert len(stored_pairs(sp.csr_matrix((3, 3)), np.array([[0, 0], [2, 1]]))) == 0


def test_unlearn_solves_exactly_without_changing_the_solver_parameter():
    C = random_implicit(seed=21)
    pairs = np.argwhere(C.toarray() != 0)[:2]
    model = ALS(factors=3, solver="cg", iterations=3).fit(C)
    seen = []
    out = model.unlearn(C, pairs, max_iterations=2, callback=lambda m, record: seen.append(m.solver))
    assert seen == ["cg", "cg"] and out.solver == model.solver == "cg"
    exact = model.copy().set_params(solver="cholesky").unlearn(C, pairs, max_iterations=2)
    np.testing.assert_array_equal(out.user_factors_, exact.user_factors_)  # solved exactly all the same


def test_cg_unlearning_is_cg_retraining_warm_started():
    """``unlearn(solver="cg")`` runs CG sweeps (not exact): it differs from exact unlearning after
    a sweep, tends to the same fixed point, and a bad solver name is an error naming it."""
    C = random_implicit(seed=22)
    pairs = np.argwhere(C.toarray() != 0)[:3]
    # 8 factors: 3 CG steps do not solve an 8 x 8 system exactly (they would a 3 x 3 one)
    model = ALS(factors=8, iterations=40, regularization=0.1, random_state=0).fit(C)
    exact = model.unlearn(C, pairs, max_iterations=1)
    cg = model.unlearn(C, pairs, max_iterations=1, solver="cg")
    assert not np.allclose(cg.user_factors_, exact.user_factors_, atol=1e-9)
    exact_long = model.unlearn(C, pairs, max_iterations=300, tol=1e-12)
    cg_long = model.unlearn(C, pairs, max_iterations=300, tol=1e-12, solver="cg")
    assert abs(cg_long.history_[-1]["objective"] - exact_long.history_[-1]["objective"]) \
        <= 1e-6 * exact_long.history_[-1]["objective"]
    assert cg.solver == model.solver == "cholesky"
    with pytest.raises(ValueError, match="solver"):
        model.unlearn(C, pairs, solver="lu")
