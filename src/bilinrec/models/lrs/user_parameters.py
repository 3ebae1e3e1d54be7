"""The per-user parameters of AMHT-LRS (each user's head and sparse part), in support form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class UserParameters:
    """Every user's own parameters: heads ``W`` (t, r) and the sparse part as support ``S`` (t, k)
    with values ``V`` (t, k) and an ``active`` mask (t, k) (inactive slots hold zero). User ``i``'s
    parameter vector is ``theta_i = U w_i + b_i``; the code calls an instance ``heads``."""

    W: np.ndarray
    S: np.ndarray
    V: np.ndarray
    active: np.ndarray

    @classmethod
    def empty(cls, n_users: int, rank: int, sparsity: int) -> "UserParameters":
        return cls(
            np.zeros((n_users, rank)),
            np.zeros((n_users, sparsity), dtype=np.int64),
            np.zeros((n_users, sparsity)),
            np.zeros((n_users, sparsity), dtype=bool),
        )

    def take(self, users: np.ndarray) -> "UserParameters":
        return UserParameters(self.W[users], self.S[users], self.V[users], self.active[users])

    def put(self, users: np.ndarray, part: "UserParameters") -> None:
        self.W[users], self.S[users], self.V[users], self.active[users] = (
            part.W, part.S, part.V, part.active)

    def dense_sparse_part(self, dim: int) -> np.ndarray:
        B = np.zeros((self.S.shape[0], dim))
        np.put_along_axis(B, self.S, self.V * self.active, axis=1)
        return B

    def sparse_matrix(self, dim: int) -> sp.csr_matrix:
        """The sparse parts as a (t, dim) CSR matrix, built from the supports (no dense (t, dim)
        array; a support's slots are distinct indices, and inactive slots hold zeros, which go)."""
        t, k = self.S.shape
        B = sp.csr_matrix(((self.V * self.active).ravel(), self.S.ravel(), np.arange(t + 1) * k), shape=(t, dim))
        B.sum_duplicates()
        B.eliminate_zeros()
        return B
