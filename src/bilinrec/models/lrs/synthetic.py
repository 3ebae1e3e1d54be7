"""Synthetic low-rank + sparse linear personalisation problems (Paper A's data model).

User ``i`` has ``theta_i = U* w_i + b_i`` (``U*`` orthonormal d x r, ``b_i`` with ``k``
non-zeros); sample ``j`` is ``y_ij = <x_ij, theta_i> + noise`` with ``x ~ N(0, I_d)`` and
``noise ~ N(0, sigma^2)``. Everything is drawn from one seed, so a problem is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["LRSProblem", "make_problem", "samples_per_user"]


@dataclass
class LRSProblem:
    """Ground truth and training samples of a synthetic problem.

    ``U`` (d, r), ``W`` (t, r), ``B`` (t, d) dense with ``supports`` (t, k) sorted column ids,
    ``theta = W U^T + B`` (t, d); stacked training samples ``X`` (N, d), ``y`` (N,),
    ``users`` (N,); ``noise`` is the noise standard deviation.
    """

    U: np.ndarray
    W: np.ndarray
    B: np.ndarray
    supports: np.ndarray
    X: np.ndarray
    y: np.ndarray
    users: np.ndarray
    noise: float

    @property
    def theta(self) -> np.ndarray:
        return self.W @ self.U.T + self.B

    @property
    def n_users(self) -> int:
        return self.W.shape[0]

    @property
    def dim(self) -> int:
        return self.U.shape[0]

    def without_sparse_parts(self) -> "LRSProblem":
        """The same problem with every ``b_i = 0`` (k = 0): the same ``U*``, ``W``, ``X`` and noise
        draw, with ``<x, b_i>`` taken out of every ``y`` -- the purely low-rank part of the data."""
        y = self.y - _rowwise_predictions(self.X, self.B, self.users)
        return replace(self, B=np.zeros_like(self.B), supports=self.supports[:, :0], y=y)

    def sample(self, n_per_user: int, rng: np.random.Generator):
        """Fresh samples (``n_per_user`` per user) from the same model: ``X, y, users``."""
        users = np.repeat(np.arange(self.n_users), n_per_user)
        X = rng.standard_normal((len(users), self.dim))
        y = np.einsum("nd,nd->n", X, self.theta[users]) + self.noise * rng.standard_normal(len(users))
        return X, y, users


def samples_per_user(
    n_users: int, mean: float, distribution: str, rng: np.random.Generator, minimum: int = 1,
    spread: float = 1.0,
) -> np.ndarray:
    """Sample counts per user: ``"fixed"`` (all ``round(mean)``) or ``"lognormal"`` (long tail,
    median below the mean, log-standard deviation ``spread``, at least ``minimum``)."""
    if mean < minimum:
        raise ValueError(f"mean samples per user ({mean}) must be at least minimum={minimum}")
    if distribution == "fixed":
        return np.full(n_users, int(round(mean)), dtype=np.int64)
    if distribution == "lognormal":
        raw = np.exp(spread * rng.standard_normal(n_users) - spread**2 / 2)
        return np.maximum(minimum, np.round(mean * raw)).astype(np.int64)
    raise ValueError(f"distribution must be 'fixed' or 'lognormal', got {distribution!r}")


def _orthonormal_basis(dim: int, rank: int, coherence: float, rng: np.random.Generator) -> np.ndarray:
    gaussian = rng.standard_normal((dim, rank)) / np.sqrt(dim)
    spikes = np.zeros((dim, rank))
    spikes[rng.choice(dim, size=rank, replace=False), np.arange(rank)] = 1.0
    Q, _ = np.linalg.qr((1.0 - coherence) * gaussian + coherence * spikes)
    return Q


def _rowwise_predictions(X: np.ndarray, theta: np.ndarray, users: np.ndarray,
                         block_rows: int = 8_192) -> np.ndarray:
    """``<x_j, theta_{users_j}>`` per row in blocks of rows (no (N, d) temporary; every row's
    dot product is the same as one ``einsum`` over all rows). The gathered ``theta`` rows of a
    block (6.5 MB at d = 100) sit on top of ``X`` at the generator's peak, so blocks are small."""
    out = np.empty(len(users))
    for s in range(0, len(users), block_rows):
        out[s : s + block_rows] = np.einsum("nd,nd->n", X[s : s + block_rows], theta[users[s : s + block_rows]])
    return out


def make_problem(
    n_users: int,
    dim: int,
    rank: int,
    sparsity: int,
    samples: float,
    *,
    noise: float = 0.0,
    w_scale: float = 1.0,
    b_scale: float = 1.0,
    coherence: float = 0.0,
    support: str = "random",
    adversarial_pool: int | None = None,
    sample_distribution: str = "fixed",
    sample_spread: float = 1.0,
    min_samples: int = 1,
    seed: int = 0,
) -> LRSProblem:
    """Draw a problem.

    ``w_i ~ N(0, w_scale^2 I_r)``; the non-zeros of ``b_i`` are ``N(0, b_scale^2 / k)`` so that
    ``E||b_i||^2 = b_scale^2`` (comparable to ``E||U w_i||^2 = r w_scale^2``).
    ``coherence`` in [0, 1] mixes ``U*`` from a random subspace (0, incoherent) toward
    coordinate vectors (1, maximally coherent with sparse vectors). ``support="random"`` draws
    each support uniformly; ``"adversarial"`` draws all supports from a pool of
    ``adversarial_pool`` (default ``2 k``) fixed coordinates, so the sparse parts concentrate.
    ``samples`` is the number (``"fixed"``) or mean number (``"lognormal"``) of samples per user.
    """
    for name, value in (("n_users", n_users), ("dim", dim), ("rank", rank)):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if rank > dim:
        raise ValueError(f"rank ({rank}) must not exceed dim ({dim})")
    if not 0 <= sparsity <= dim:
        raise ValueError(f"sparsity must be in [0, dim={dim}], got {sparsity}")
    if not 0.0 <= coherence <= 1.0:
        raise ValueError(f"coherence must be in [0, 1], got {coherence}")
    if noise < 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    if support not in ("random", "adversarial"):
        raise ValueError(f"support must be 'random' or 'adversarial', got {support!r}")
    rng = np.random.default_rng(seed)
    U = _orthonormal_basis(dim, rank, coherence, rng)
    W = w_scale * rng.standard_normal((n_users, rank))
    if support == "random":
        supports = np.argsort(rng.random((n_users, dim)), axis=1)[:, :sparsity]
    else:
        pool_size = adversarial_pool if adversarial_pool is not None else 2 * sparsity
        if not sparsity <= pool_size <= dim:
            raise ValueError(f"adversarial_pool must be in [sparsity, dim], got {pool_size}")
        pool = rng.choice(dim, size=pool_size, replace=False)
        picks = np.argsort(rng.random((n_users, pool_size)), axis=1)[:, :sparsity]
        supports = pool[picks]
    supports = np.sort(supports, axis=1)
    B = np.zeros((n_users, dim))
    if sparsity:
        values = b_scale / np.sqrt(sparsity) * rng.standard_normal((n_users, sparsity))
        np.put_along_axis(B, supports, values, axis=1)
    counts = samples_per_user(n_users, samples, sample_distribution, rng, min_samples, sample_spread)
    users = np.repeat(np.arange(n_users), counts)
    X = rng.standard_normal((len(users), dim))
    # in place (the same values as ``W @ U.T + B`` and ``predictions + noise * draw``): no
    # (t, d) or (N,) temporaries next to X, the largest array
    theta = W @ U.T
    theta += B
    y = _rowwise_predictions(X, theta, users)
    del theta
    draw = rng.standard_normal(len(users))
    draw *= noise
    y += draw
    return LRSProblem(U=U, W=W, B=B, supports=supports, X=X, y=y, users=users, noise=float(noise))
