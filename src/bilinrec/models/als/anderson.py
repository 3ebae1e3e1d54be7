"""Anderson acceleration of ALS sweeps, safeguarded so the objective never rises.

A full ALS sweep is a fixed-point map on the item side, ``V -> g(V)`` (users solved against
``V``, then items against those users); its fixed points are the fixed points of ALS. Plain ALS
iterates ``V <- g(V)`` and, at small regularization, converges slowly (sublinearly on ml-100k
at 100 factors and lambda = 0.01). Anderson acceleration (type II, Walker and Ni 2011) starts the
next sweep from the combination of the last ``memory + 1`` images that minimises the linearised
residual ``g(V) - V``::

    gamma = argmin | r_k - dR gamma |,   V_next = g_k - dG gamma

with ``dR``, ``dG`` the differences of consecutive residuals and images. The safeguard: the
objective after a sweep from an extrapolated start must not exceed the objective of the last
accepted point; otherwise that sweep is discarded, the memory cleared, and a plain sweep is taken
from the last accepted point (whose objective it cannot raise). The extrapolation only ever sets
the *start* of a sweep, so the model always holds a point that a sweep produced.
"""

from __future__ import annotations

import numpy as np

#: Tikhonov weight of the least-squares problem, relative to its scale (keeps it well posed when
#: the stored residual differences become nearly dependent close to convergence).
RIDGE = 1e-10


def accept(objective: float, previous: float) -> bool:
    """The safeguard: a sweep from an extrapolated start is kept only if it did not raise the
    objective above the last accepted point's."""
    return objective <= previous


class Anderson:
    """The memory of Anderson acceleration over flattened states.

    Kept incrementally: the last ``memory`` differences of residuals and images, and the Gram
    matrix of the residual differences, updated by one row of dot products per sweep. So a
    proposal costs O(memory x state) flops and no copy of the whole memory (rebuilding and
    multiplying the stacked memory took ~40% of an exact sweep on ml-100k at memory 10).
    """

    def __init__(self, memory: int):
        self.memory = int(memory)
        self.stride = 1.0  # of the stretched step that replaces a rejected one (balanced_anderson)
        self.reset()

    def reset(self) -> None:
        self._image: np.ndarray | None = None  # the last image and its residual
        self._residual: np.ndarray | None = None
        self._d_residuals: list[np.ndarray] = []  # oldest first
        self._d_images: list[np.ndarray] = []
        self._gram = np.zeros((0, 0))  # of _d_residuals

    def propose(self, start: np.ndarray, image: np.ndarray) -> np.ndarray | None:
        """Record that a sweep from ``start`` gave ``image``; the next start (None: ``image`` itself,
        when fewer than two sweeps are remembered)."""
        g = np.array(image, dtype=np.float64).ravel()
        r = g - np.asarray(start, dtype=np.float64).ravel()
        previous_image, previous_residual = self._image, self._residual
        self._image, self._residual = g, r
        if previous_image is None:
            return None
        d_r = r - previous_residual
        self._d_residuals.append(d_r)
        self._d_images.append(g - previous_image)
        cross = np.array([float(d @ d_r) for d in self._d_residuals])
        n = len(cross)
        gram = np.empty((n, n))
        gram[:-1, :-1], gram[-1], gram[:, -1] = self._gram, cross, cross
        if n > self.memory:
            del self._d_residuals[0], self._d_images[0]
            gram = gram[1:, 1:]
        self._gram = gram
        normal = gram.copy()
        normal[np.diag_indices_from(normal)] += RIDGE * max(float(np.trace(normal)), 1e-300)
        gamma = np.linalg.solve(normal, np.array([float(d @ r) for d in self._d_residuals]))
        proposal = g.copy()
        for weight, d_g in zip(gamma, self._d_images):
            proposal -= weight * d_g
        return proposal.reshape(np.shape(image))
