"""Small synthetic data for the contract suites and the tests (made in memory, seeded)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def random_implicit(n_users: int = 30, n_items: int = 25, density: float = 0.25, seed: int = 0) -> sp.csr_matrix:
    """Implicit confidences: each cell stored with probability ``density``, value in [0.5, 5.5)."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * (0.5 + 5 * rng.random((n_users, n_items)))
    return sp.csr_matrix(dense)


def random_ratings(n_users: int = 30, n_items: int = 25, density: float = 0.3, seed: int = 0) -> sp.csr_matrix:
    """Explicit ratings 1..5, each cell stored with probability ``density``."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density) * rng.integers(1, 6, (n_users, n_items))
    return sp.csr_matrix(dense.astype(float))


def planted_implicit(n_users: int = 40, n_items: int = 30, rank: int = 2, density: float = 0.3,
                     seed: int = 0) -> sp.csr_matrix:
    """Binary interactions: the top ``density`` share of a rank-``rank`` preference matrix plus
    noise, so that a fitted model ranks a user's own history above the rest."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items))
    scores += 0.3 * rng.normal(size=scores.shape)
    return sp.csr_matrix((scores > np.quantile(scores, 1 - density)).astype(float))
