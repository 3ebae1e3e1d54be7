"""Tests of the synthetic low-rank + sparse generator."""

import numpy as np
import pytest

from bilinrec.models.lrs.synthetic import _orthonormal_basis, make_problem, samples_per_user


def test_same_seed_same_problem_and_different_seed_differs():
    a = make_problem(50, 20, 2, 3, 10, noise=0.1, seed=7)
    b = make_problem(50, 20, 2, 3, 10, noise=0.1, seed=7)
    c = make_problem(50, 20, 2, 3, 10, noise=0.1, seed=8)
    for name in ("U", "W", "B", "X", "y", "users"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.theta, c.theta)


def test_structure_of_the_truth():
    p = make_problem(40, 30, 3, 4, 12, seed=1)
    np.testing.assert_allclose(p.U.T @ p.U, np.eye(3), atol=1e-12)
    assert p.supports.shape == (40, 4)
    assert np.all(np.count_nonzero(p.B, axis=1) == 4)
    np.testing.assert_array_equal(np.sort(np.flatnonzero(p.B[5])), p.supports[5])
    np.testing.assert_allclose(p.theta, p.W @ p.U.T + p.B)
    assert p.X.shape == (40 * 12, 30) and np.all(np.bincount(p.users) == 12)
    # noiseless: y is exactly <x, theta_user>
    np.testing.assert_allclose(p.y, np.einsum("nd,nd->n", p.X, p.theta[p.users]), atol=1e-12)


def test_noise_level_matches():
    p = make_problem(200, 10, 2, 1, 50, noise=0.5, seed=2)
    resid = p.y - np.einsum("nd,nd->n", p.X, p.theta[p.users])
    assert abs(resid.std() - 0.5) < 0.02


def test_without_sparse_parts_keeps_everything_but_b():
    """Claim A2's planted problem: the same U*, W, X and noise draw, with b_i = 0 (k = 0)."""
    p = make_problem(60, 15, 2, 3, 12, noise=0.3, seed=9)
    q = p.without_sparse_parts()
    for name in ("U", "W", "X", "users"):
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))
    assert not q.B.any() and q.supports.shape == (60, 0) and q.noise == p.noise
    np.testing.assert_allclose(q.theta, p.W @ p.U.T)
    # the same noise: y minus <x, theta> is unchanged
    np.testing.assert_allclose(q.y - np.einsum("nd,nd->n", q.X, q.theta[q.users]),
                               p.y - np.einsum("nd,nd->n", p.X, p.theta[p.users]), atol=1e-12)
    assert np.count_nonzero(p.B) == 60 * 3  # the original is untouched


def test_adversarial_supports_concentrate_on_a_pool():
    p = make_problem(300, 50, 2, 3, 5, support="adversarial", seed=3)
    assert len(np.unique(p.supports)) == 6
    q = make_problem(300, 50, 2, 3, 5, support="adversarial", adversarial_pool=4, seed=3)
    assert len(np.unique(q.supports)) == 4


def test_coherence_one_gives_coordinate_vectors():
    p = make_problem(5, 20, 3, 1, 5, coherence=1.0, seed=4)
    assert np.allclose(np.sort(np.abs(p.U), axis=0)[-1], 1.0)


def test_long_tailed_counts():
    rng = np.random.default_rng(0)
    counts = samples_per_user(20000, 20, "lognormal", rng, minimum=2, spread=1.0)
    assert counts.min() >= 2
    assert abs(counts.mean() - 20) < 1.0
    assert np.median(counts) < counts.mean() and counts.max() > 5 * counts.mean()
    p = make_problem(100, 10, 2, 1, 15, sample_distribution="lognormal", min_samples=3, seed=5)
    assert np.bincount(p.users).min() >= 3


def test_fresh_samples_come_from_the_same_model():
    p = make_problem(20, 10, 2, 2, 5, seed=6)
    X, y, users = p.sample(7, np.random.default_rng(1))
    assert X.shape == (140, 10)
    np.testing.assert_allclose(y, np.einsum("nd,nd->n", X, p.theta[users]))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"rank": 40}, "rank"),
        ({"sparsity": 31}, "sparsity"),
        ({"coherence": 1.5}, "coherence"),
        ({"noise": -1.0}, "noise"),
        ({"support": "clustered"}, "support"),
        ({"support": "adversarial", "adversarial_pool": 1}, "adversarial_pool"),
        ({"sample_distribution": "zipf"}, "distribution"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    args = dict(n_users=10, dim=30, rank=2, sparsity=2, samples=5) | kwargs
    with pytest.raises(ValueError, match=name):
        make_problem(**args)


def _one_shot_problem(n_users, dim, rank, sparsity, samples, *, noise=0.0, support="random",
                      sample_distribution="fixed", seed=0):
    """The generator's arithmetic without any memory saving: one draw per array, ``theta`` and
    ``y`` as whole-array expressions (the reference the in-place, blocked generator must equal)."""
    rng = np.random.default_rng(seed)
    U = _orthonormal_basis(dim, rank, 0.0, rng)
    W = rng.standard_normal((n_users, rank))
    if support == "random":
        supports = np.argsort(rng.random((n_users, dim)), axis=1)[:, :sparsity]
    else:
        pool = rng.choice(dim, size=2 * sparsity, replace=False)
        supports = pool[np.argsort(rng.random((n_users, 2 * sparsity)), axis=1)[:, :sparsity]]
    supports = np.sort(supports, axis=1)
    B = np.zeros((n_users, dim))
    if sparsity:
        np.put_along_axis(B, supports, 1.0 / np.sqrt(sparsity) * rng.standard_normal((n_users, sparsity)), axis=1)
    users = np.repeat(np.arange(n_users), samples_per_user(n_users, samples, sample_distribution, rng))
    X = rng.standard_normal((len(users), dim))
    y = np.einsum("nd,nd->n", X, (W @ U.T + B)[users]) + noise * rng.standard_normal(len(users))
    return dict(U=U, W=W, B=B, supports=supports, X=X, y=y, users=users)


@pytest.mark.parametrize("shape", [(1, 1, 1, 0, 1), (9, 5, 2, 2, 3), (300, 20, 3, 4, 7.5), (3000, 100, 5, 5, 20)])
@pytest.mark.parametrize("noise", [0.0, 0.3])
@pytest.mark.parametrize("support", ["random", "adversarial"])
@pytest.mark.parametrize("distribution", ["fixed", "lognormal"])
def test_generator_is_bitwise_the_one_shot_draw(shape, noise, support, distribution):
    # blocks of prediction rows (8,192; the 3,000-user case spans several) and in-place sums
    # must not change a single bit
    t, d, r, k, m = shape
    if support == "adversarial" and 2 * k > d:
        pytest.skip("the default adversarial pool (2 k) needs 2 k <= d")
    args = dict(noise=noise, support=support, sample_distribution=distribution, seed=t + d)
    p = make_problem(t, d, r, k, m, **args)
    for name, expected in _one_shot_problem(t, d, r, k, m, **args).items():
        got = getattr(p, name)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), name
