"""The compiled LRS kernels (fused_user_step.py, segment_kernels.py) give the batched NumPy results up to rounding."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bilinrec.models.lrs import AMHTLRS, compiled, fused_user_step, segment_kernels, statistics, user_step
from bilinrec.models.lrs.data import prepare_data
from bilinrec.models.lrs.forget import copy_heads
from bilinrec.models.lrs.mechanism import segment_gram_norms
from bilinrec.models.lrs.synthetic import make_problem


def _data(n_users=300, samples=20, seed=0, **kw):
    pr = make_problem(n_users, 30, 3, 3, samples, noise=0.1, seed=seed, **kw)
    return pr, prepare_data(pr.X, pr.y, pr.users)


@pytest.mark.parametrize("pursuit,threshold,samples", [("subspace", None, 20), ("htp", None, 20),
                                                        ("subspace", 0.3, 12), ("htp", None, 7)])
def test_fused_user_step_matches_numpy(monkeypatch, pursuit, threshold, samples):
    pr, data = _data(samples=samples, sample_distribution="lognormal", min_samples=3)
    U = np.linalg.qr(pr.U + 0.3 * np.random.default_rng(0).standard_normal(pr.U.shape))[0]
    fits = {}
    for fused in (False, True):
        monkeypatch.setattr(compiled, "ENABLED", fused)
        heads, _, it1 = user_step.fit_user_parameters(data, U, 3, None, pursuit=pursuit, threshold=threshold)
        heads, res, it2 = user_step.fit_user_parameters(data, U, 3, heads, pursuit=pursuit, threshold=threshold)
        fits[fused] = (heads.dense_sparse_part(data.dim), heads.W, res, it1, it2)
    (B0, W0, r0, *it0), (B1, W1, r1, *it1) = fits[False], fits[True]
    assert it0 == it1
    assert np.array_equal(B0 != 0, B1 != 0)  # same supports
    # users with fewer samples than unknowns (r + k) are solved by the 1e-10 ridge alone
    # (condition ~1e10): there LU and Cholesky differ by ~1e-6; elsewhere by rounding only
    posed = data.counts >= 3 + 3
    np.testing.assert_allclose(B1[posed], B0[posed], atol=1e-10)
    np.testing.assert_allclose(W1[posed], W0[posed], atol=1e-10)
    np.testing.assert_allclose(B1, B0, atol=1e-4)
    np.testing.assert_allclose(W1, W0, atol=1e-4)
    np.testing.assert_allclose(r1, r0, atol=1e-9)


@pytest.mark.parametrize("sparsity", [3, 0])
def test_the_user_steps_normal_rhs_is_the_u_steps_pass(monkeypatch, sparsity):
    """The U step's right-hand side and CG's start residual summed by the per-user step equal the
    U step's own pass over ``X`` (rounding only), on any number of threads, for several chunks."""
    monkeypatch.setattr(compiled, "CHUNK_USERS", 64)
    pr, data = _data(n_users=300, samples=12, sample_distribution="lognormal", min_samples=3)
    U = np.linalg.qr(pr.U + 0.3 * np.random.default_rng(0).standard_normal(pr.U.shape))[0]
    warm, _, _ = user_step.fit_user_parameters(data, U, sparsity)

    def step(**kw):  # the per-user step updates the heads it is given
        return user_step.fit_user_parameters(data, U, sparsity, copy_heads(warm), **kw)

    heads, res, _, (rhs, start) = step(normal_rhs=True)
    assert rhs.shape == start.shape == (data.dim, 3)
    b, b_start = segment_kernels.segment_xz_product(data, data.y, heads.W, heads, res)
    np.testing.assert_allclose(rhs, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    np.testing.assert_allclose(start, b_start, rtol=1e-10, atol=1e-12 * np.abs(b).max())
    # b - A vec(U) at the step's U: the start residual, as the U step uses it
    A_U = segment_kernels.kron_matvec(data, heads.W, None, U)
    np.testing.assert_allclose(b - A_U, start, atol=1e-9 * np.abs(b).max())
    with threadpool_limits(1):
        one_thread = step(normal_rhs=True)[3]
    assert all(np.array_equal(x, y) for x, y in zip(one_thread, (rhs, start)))
    assert step(offset=np.zeros(data.n_samples), normal_rhs=True)[3] is None
    monkeypatch.setattr(compiled, "ENABLED", False)
    assert step(normal_rhs=True)[3] is None


def test_streamed_statistics_match_dense():
    _, data = _data(n_users=200, samples=40, sample_distribution="lognormal")
    rng = np.random.default_rng(1)
    W, c = rng.standard_normal((data.n_users, 3)), rng.random(data.n_users)
    d, r = data.dim, 3
    grams = np.stack([data.X[a:b].T @ data.X[a:b] for a, b in zip(data.indptr[:-1], data.indptr[1:])])
    coef = c[:, None, None] * W[:, :, None] * W[:, None, :]
    A = np.einsum("iab,ipq->apbq", coef, grams).reshape(d * r, d * r)
    np.testing.assert_allclose(segment_kernels.kron_gram(data, W, c), A, rtol=1e-12, atol=1e-10)
    V = rng.standard_normal((d, r))
    np.testing.assert_allclose(segment_kernels.kron_matvec(data, W, c, V).ravel(order="F"),
                               A @ V.ravel(order="F"), rtol=1e-12, atol=1e-10)
    stats = statistics.moment_statistics(data)
    Z = data.X * np.abs(data.y)[:, None]
    np.testing.assert_allclose(stats.total(c), Z.T @ (Z * c[data.row_user][:, None]), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(stats.per_user_norms(), segment_gram_norms(data, Z), rtol=1e-12)
    np.testing.assert_allclose(stats.Z, Z)


def test_amht_fit_matches_numpy_path(monkeypatch):
    pr = make_problem(400, 30, 3, 3, 20, noise=0.05, seed=3)
    fits = []
    for fused in (False, True):
        monkeypatch.setattr(compiled, "ENABLED", fused)
        fits.append(AMHTLRS(3, 3, max_rounds=4, tol=0.0, min_loss=0.0).fit(pr.X, pr.y, pr.users))
    np.testing.assert_allclose(fits[1].U_, fits[0].U_, atol=1e-10)
    np.testing.assert_allclose(fits[1].theta_, fits[0].theta_, atol=1e-10)
    assert fits[1].n_rounds_ == fits[0].n_rounds_


def test_segment_sums_are_bitwise_the_bincount_sums(monkeypatch):
    # users without rows (zeros), long segments (sequential, not pairwise, order) and row weights
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 300, size=50)
    counts[[0, 7, 49]] = 0
    users = np.repeat(np.arange(50), counts)
    data = prepare_data(rng.standard_normal((len(users), 2)), rng.standard_normal(len(users)), users, n_users=50)
    values, weights = rng.standard_normal(len(users)) * 1e3, rng.random(len(users))
    expected = [np.bincount(users, weights=v, minlength=50) for v in (values, values * weights)]
    assert np.array_equal(segment_kernels.segment_sums(values, data.indptr), expected[0])
    assert np.array_equal(data.segment_sum(values), expected[0])
    assert np.array_equal(data.segment_sum(values, row_weights=weights), expected[1])
    assert data._row_user is None  # no (N,) row -> user array was made
    monkeypatch.setattr(compiled, "ENABLED", False)
    assert np.array_equal(data.segment_sum(values, row_weights=weights), expected[1])


def test_sorted_rows_are_used_in_place_and_subsets_keep_the_caller_rows():
    pr, data = _data(n_users=40, samples=5)
    assert data.order is None and np.shares_memory(data.X, pr.X) and np.shares_memory(data.y, pr.y)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(pr.y))
    other = prepare_data(pr.X[shuffled], pr.y[shuffled], pr.users[shuffled])
    np.testing.assert_array_equal(other.X, pr.X[shuffled][other.order])
    mask, users = rng.random(len(pr.y)) < 0.5, np.array([3, 17, 30])
    for d, X_in in ((data, pr.X), (other, pr.X[shuffled])):
        np.testing.assert_array_equal(d.row_user, np.sort(pr.users))  # made on first use
        # ``order`` of a subset still maps its rows to the caller's rows
        sub = d.subset_rows(mask)
        np.testing.assert_array_equal(sub.X, X_in[sub.order])
        part, _ = d.subset_users(users)
        np.testing.assert_array_equal(part.X, X_in[part.order])
        assert part.n_samples == 15


def test_streamed_grams_are_bitwise_the_whole_array_formulas(monkeypatch):
    # per-block row scales and per-block user pairs give the bits of the formulas over all
    # rows / users at once (one thread, blocks small enough for several per call)
    monkeypatch.setattr(compiled, "n_threads", lambda: 1)
    monkeypatch.setattr(segment_kernels, "_ROW_BLOCK", 64)
    monkeypatch.setattr(segment_kernels, "_GRAM_BLOCK_ELEMENTS", 30 * 31 // 2 * 7)  # 7 users per block
    pr, data = _data(n_users=50, samples=9)
    rng = np.random.default_rng(1)
    scale, weights, coef = np.abs(pr.y), rng.random(len(pr.y)), rng.random(50)
    row_scale = scale * np.sqrt(weights)
    expected = np.zeros((30, 30))
    for s in range(0, len(pr.y), 64):
        Z = data.X[s : s + 64] * row_scale[s : s + 64, None]
        expected += Z.T @ Z
    assert np.array_equal(segment_kernels.weighted_row_gram(data.X, scale, weights), expected)
    ia, ib = np.triu_indices(3)
    pair = pr.W[:, ia] * pr.W[:, ib] * coef[:, None]
    acc = np.zeros((6, 30 * 31 // 2))
    for s in range(0, 50, 7):
        G = np.empty((min(7, 50 - s), 30 * 31 // 2))
        segment_kernels._packed_grams_kernel(data.X, data.indptr, s, G, s, min(50, s + 7))
        acc += pair[s : s + 7].T @ G
    got = segment_kernels.kron_gram(data, pr.W, coef).reshape(3, 30, 3, 30).transpose(0, 2, 1, 3)
    iu = np.triu_indices(30)
    for p, (a, b) in enumerate(zip(ia, ib)):
        assert np.array_equal(got[a, b][iu], acc[p]) and np.array_equal(got[b, a][iu], acc[p])


def _top_k_reference(values, k):
    """``k`` largest values, ties to the lowest index (a stable sort of the negated values)."""
    return np.sort(np.argsort(-values, kind="stable")[:k])


def test_top_k_selections_match_a_stable_sort():
    rng = np.random.default_rng(0)
    out, taken = np.empty(40, dtype=np.int64), np.empty(40, dtype=np.bool_)
    for trial in range(300):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 6))
        k = min(k, n)
        values = np.round(rng.standard_normal(n), 1)  # rounded: many ties
        values[rng.random(n) < 0.3] = 0.0
        values[rng.random(n) < 0.1] = -1.0
        fused_user_step._top_k(values, k, out, taken)
        np.testing.assert_array_equal(out[:k], _top_k_reference(values, k))
        # the sparse form: values zero outside idx (non-negative, as magnitudes are)
        mag = np.abs(values) * (rng.random(n) < 0.4)
        idx = np.flatnonzero(rng.random(n) < 0.5)
        idx = np.union1d(idx, np.flatnonzero(mag))
        rng.shuffle(idx)
        fused_user_step._top_k_of(mag, idx, len(idx), k, out, taken)
        np.testing.assert_array_equal(out[:k], _top_k_reference(mag, k))
    values = np.array([1.0, np.nan, 3.0, 2.0])  # NaN: the k-scan order of the reference kernel
    fused_user_step._top_k(values, 2, out, taken)
    np.testing.assert_array_equal(out[:2], [2, 3])
