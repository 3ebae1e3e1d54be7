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
    """The memory of Anderson acceleration over flattened item-side states."""

    def __init__(self, memory: int):
        self.memory = int(memory)
        self.stride = 1.0  # of the stretched step that replaces a rejected one (balanced_anderson)
        self.starts: list[np.ndarray] = []
        self.images: list[np.ndarray] = []

    def reset(self) -> None:
        self.starts, self.images = [], []

    def propose(self, start: np.ndarray, image: np.ndarray) -> np.ndarray | None:
        """Record that a sweep from ``start`` gave ``image``; the next start (None: ``image`` itself,
        when fewer than two sweeps are remembered)."""
        self.starts.append(np.array(start, dtype=np.float64).ravel())
        self.images.append(np.array(image, dtype=np.float64).ravel())
        del self.starts[:-(self.memory + 1)], self.images[:-(self.memory + 1)]
        if len(self.starts) < 2:
            return None
        G = np.array(self.images)
        R = G - np.array(self.starts)
        dR, dG = np.diff(R, axis=0), np.diff(G, axis=0)
        normal = dR @ dR.T
        normal[np.diag_indices_from(normal)] += RIDGE * max(float(np.trace(normal)), 1e-300)
        gamma = np.linalg.solve(normal, dR @ R[-1])
        return (G[-1] - gamma @ dG).reshape(np.shape(image))
