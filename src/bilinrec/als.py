"""Alternating least squares for bi-linear recommenders, and exact unlearning (Unlearn-ALS).

Cells of a users x items matrix carry a confidence ``c`` (weight in the loss) and a target ``p``:

* **implicit feedback** (Hu, Koren & Volinsky 2008) minimises, over *all* cells,
  ``sum c_ui (p_ui - x_u . y_i)^2 + lambda (|X|^2 + |Y|^2)``. The input CSR matrix ``C`` stores the
  confidence of each observed cell (target 1); unstored cells have ``c = 1, p = 0`` -- the convention
  of the ``implicit`` library, so data and factors interchange with it.
* **explicit feedback** minimises ``sum over observed (r_ui - x_u . y_i)^2`` plus L2 regularisation;
  optionally with a global mean and user/item biases (``r_ui - mu - b_u - b_i - x_u . y_i``) and
  ALS-WR count-scaled regularisation; ``C`` stores the ratings.

Two further kinds of cell are given as separate sparse matrices, never as stored values of ``C``
(an explicitly stored 0 does not survive most scipy operations):

* ``mask``: cells with confidence 0 -- no influence at all ("block influence");
* ``negatives``: cells with target 0 and the stored confidence ("confident negatives").

:func:`apply_deletions` turns a deletion set into these matrices for the three unlearning modes, and
:meth:`ALS.unlearn` runs warm-started exact ALS on the modified objective::

    model = ALS(factors=100, regularization=0.01, seed=seed).fit(C, iterations=150)
    forgotten = model.unlearn(C, pairs, mode="retrain", max_iterations=10)     # new model
    data = apply_deletions(C, pairs, "retrain")                                # the reference:
    retrained = ALS(factors=100, seed=seed).fit(data.C, mask=data.mask, negatives=data.negatives)
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import get_lapack_funcs

from .io import load_npz, save_npz

log = logging.getLogger(__name__)

FEEDBACKS = ("implicit", "explicit")
SOLVERS = ("cholesky", "cg")
MODES = ("retrain", "mask", "naive")
#: Memory budget (bytes) for one chunk of gathered factors / stacked normal matrices.
DEFAULT_CHUNK_BYTES = 16 * 2**20
#: Cache-sized chunks in which the objective's per-cell scores are computed.
CACHE_CHUNK_BYTES = 4 * 2**20
MODEL_FORMAT = "bilinrec-als-1"


# --------------------------------------------------------------------------------------------
# Input checking and the cell representation
# --------------------------------------------------------------------------------------------
def _as_csr(matrix: Any, name: str, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    """Canonical float64 CSR copy of a scipy sparse matrix, with a clear error otherwise."""
    if not sp.issparse(matrix):
        raise TypeError(f"{name} must be a scipy sparse matrix, got {type(matrix).__name__}")
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {matrix.ndim}-D")
    csr = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if shape is not None and csr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {csr.shape}, expected {tuple(shape)}")
    csr.sum_duplicates()
    csr.sort_indices()
    if not np.all(np.isfinite(csr.data)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return csr


@dataclass(frozen=True)
class Cells:
    """Stored cells of one problem in both row-major and column-major order.

    ``conf``/``target`` are per stored cell; ``base`` is the confidence of every unstored cell
    (1 for implicit feedback, 0 for explicit). ``t_*`` arrays are the item-major (transposed) view.
    """

    shape: tuple[int, int]
    base: float
    indptr: np.ndarray
    indices: np.ndarray
    conf: np.ndarray
    target: np.ndarray
    t_indptr: np.ndarray
    t_indices: np.ndarray
    t_conf: np.ndarray
    t_target: np.ndarray
    #: Cached padded layouts of all rows, keyed by (axis, width, dtype, budget): data-only, reused
    #: by every sweep.
    plans: dict = field(default_factory=dict, compare=False, repr=False)

    def csr(self, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, indices, conf, target) of the cells by user (axis 0) or by item (axis 1)."""
        if axis == 0:
            return self.indptr, self.indices, self.conf, self.target
        return self.t_indptr, self.t_indices, self.t_conf, self.t_target

    def plan(self, axis: int, rows: np.ndarray | None, width: int, dtype: Any, budget: int) -> list["RowBatch"]:
        """Padded row batches of users (axis 0) or items (axis 1); all rows (cached) if ``rows`` is None."""
        arrays = self.csr(axis)
        if rows is not None:
            return plan_rows(rows, *arrays, self.base, width, dtype, budget)
        key = (axis, width, np.dtype(dtype).name, budget)
        if key not in self.plans:
            self.plans[key] = plan_rows(np.arange(self.shape[axis]), *arrays, self.base, width, dtype, budget)
        return self.plans[key]

    @property
    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def counts(self, axis: int) -> np.ndarray:
        """Number of cells with positive confidence per user (axis 0) or per item (axis 1)."""
        if axis == 0:
            rows, weights = self.rows, self.conf
        else:
            rows, weights = np.repeat(np.arange(self.shape[1]), np.diff(self.t_indptr)), self.t_conf
        return np.bincount(rows[weights > 0], minlength=self.shape[axis]).astype(np.float64)


def build_cells(
    C: Any,
    feedback: str = "implicit",
    mask: Any = None,
    negatives: Any = None,
) -> Cells:
    """Validate ``C`` (+ optional ``mask``/``negatives``) and build the :class:`Cells` of the problem."""
    _check_choice(feedback, FEEDBACKS, "feedback")
    C = _as_csr(C, "C")
    if feedback == "implicit" and C.nnz and C.data.min() <= 0:
        raise ValueError(
            "C contains zero or negative confidences; confidences must be > 0 "
            "(give cells of confidence 0 in mask=, confident negatives in negatives=)"
        )
    parts = [(C, np.ones_like(C.data) if feedback == "explicit" else C.data,
              C.data if feedback == "explicit" else np.ones_like(C.data))]
    if mask is not None:
        M = _as_csr(mask, "mask", C.shape)
        M.data[:] = 1.0  # only the pattern matters
        parts.append((M, np.zeros(M.nnz), np.zeros(M.nnz)))
    if negatives is not None:
        N = _as_csr(negatives, "negatives", C.shape)
        if N.nnz and N.data.min() <= 0:
            raise ValueError("negatives contains zero or negative confidences; they must be > 0")
        parts.append((N, N.data, np.zeros(N.nnz)))
    rows = np.concatenate([np.repeat(np.arange(C.shape[0]), np.diff(m.indptr)) for m, _, _ in parts])
    cols = np.concatenate([m.indices for m, _, _ in parts]).astype(np.int64)
    conf = np.concatenate([c for _, c, _ in parts])
    target = np.concatenate([t for _, _, t in parts])
    n_users, n_items = C.shape
    if len(parts) > 1:  # a single canonical CSR is already in (row, col) order
        order = np.lexsort((cols, rows))
        rows, cols, conf, target = rows[order], cols[order], conf[order], target[order]
        dup = (np.diff(rows) == 0) & (np.diff(cols) == 0)
        if dup.any():
            k = int(np.flatnonzero(dup)[0])
            raise ValueError(
                f"C, mask and negatives must not share cells; cell ({rows[k]}, {cols[k]}) is given twice"
            )
    t_order = np.argsort(cols, kind="stable")  # rows stay sorted within each column
    return Cells(
        shape=(n_users, n_items),
        base=1.0 if feedback == "implicit" else 0.0,
        indptr=_indptr(rows, n_users),
        indices=cols,
        conf=conf,
        target=target,
        t_indptr=_indptr(cols[t_order], n_items),
        t_indices=rows[t_order],
        t_conf=conf[t_order],
        t_target=target[t_order],
    )


def _indptr(sorted_rows: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(sorted_rows, minlength=n))]).astype(np.int64)


def _check_choice(value: str, choices: Sequence[str], name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


# --------------------------------------------------------------------------------------------
# Deletions
# --------------------------------------------------------------------------------------------
class ModifiedData(NamedTuple):
    """Training data after deletions: pass as ``fit(C, mask=mask, negatives=negatives)``."""

    C: sp.csr_matrix
    mask: sp.csr_matrix | None
    negatives: sp.csr_matrix | None


def as_deletions(deletions: Any, shape: tuple[int, int]) -> np.ndarray:
    """Normalise a deletion set to a sorted ``(n, 2)`` int64 array of (user, item) pairs.

    Accepts an ``(n, 2)`` array, a pair ``(users, items)`` of equal-length 1-D arrays, or a mapping
    ``{user: items}`` (use :func:`user_history` to delete whole histories). Out-of-range ids,
    non-integers and duplicate pairs raise ``ValueError`` naming ``deletions``.
    """
    if isinstance(deletions, Mapping):
        pairs = [(u, i) for u, items in deletions.items() for i in np.atleast_1d(items)]
        arr = np.asarray(pairs).reshape(-1, 2)
    elif isinstance(deletions, tuple) and len(deletions) == 2 and np.ndim(deletions[0]) == 1:
        users, items = (np.asarray(a) for a in deletions)
        if users.shape != items.shape:
            raise ValueError(
                f"deletions: users and items differ in length ({users.size} vs {items.size})"
            )
        arr = np.column_stack([users, items]) if users.size else np.empty((0, 2))
    else:
        arr = np.asarray(deletions)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"deletions must be an (n, 2) array of (user, item) pairs; got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError("deletions must contain integer user and item ids")
    arr = arr.astype(np.int64)
    for col, name, n in ((0, "user", shape[0]), (1, "item", shape[1])):
        bad = (arr[:, col] < 0) | (arr[:, col] >= n)
        if bad.any():
            raise ValueError(f"deletions: {name} id {arr[bad][0, col]} out of range [0, {n})")
    arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
    dup = np.all(np.diff(arr, axis=0) == 0, axis=1)
    if dup.any():
        raise ValueError(f"deletions: duplicate pair {tuple(arr[np.flatnonzero(dup)[0]])}")
    return arr


def user_history(C: Any, users: Sequence[int] | np.ndarray) -> np.ndarray:
    """All observed (user, item) pairs of ``users`` in ``C``: the deletion set 'forget these users'."""
    C = _as_csr(C, "C")
    users = np.unique(np.asarray(users, dtype=np.int64))
    if users.size and (users.min() < 0 or users.max() >= C.shape[0]):
        raise ValueError(f"users: ids must lie in [0, {C.shape[0]})")
    sub = C[users].tocoo()
    return np.column_stack([users[sub.row], sub.col]).astype(np.int64)


def apply_deletions(
    C: Any,
    deletions: Any,
    mode: str = "retrain",
    *,
    feedback: str = "implicit",
    mask: Any = None,
    negatives: Any = None,
) -> ModifiedData:
    """The training data after deleting ``deletions`` under ``mode``; ``C`` is not modified.

    * ``retrain``: deleted cells leave ``C`` and become ordinary unstored cells (implicit: ``c = 1,
      p = 0``; explicit: unobserved). Retraining on the result *is* retraining without the data.
    * ``mask``: deleted cells get confidence 0 (added to ``mask``): they influence nothing.
    * ``naive``: deleted cells keep their confidence with target 0 (added to ``negatives``; for
      explicit feedback they become observed ratings 0 of weight 1).

    Every deleted pair must be a stored cell of ``C``.
    """
    _check_choice(mode, MODES, "mode")
    _check_choice(feedback, FEEDBACKS, "feedback")
    C = _as_csr(C, "C")
    pairs = as_deletions(deletions, C.shape)
    mask = None if mask is None else _as_csr(mask, "mask", C.shape)
    negatives = None if negatives is None else _as_csr(negatives, "negatives", C.shape)
    if len(pairs) == 0:
        return ModifiedData(C, mask, negatives)
    coo = C.tocoo()
    key = coo.row.astype(np.int64) * C.shape[1] + coo.col
    del_key = pairs[:, 0] * C.shape[1] + pairs[:, 1]
    pos = np.searchsorted(key, del_key)  # CSR order == sorted keys
    found = (pos < key.size) & (key[np.minimum(pos, key.size - 1)] == del_key)
    if not found.all():
        u, i = pairs[~found][0]
        raise ValueError(
            f"deletions: {int((~found).sum())} pair(s) are not observed cells of C, e.g. ({u}, {i})"
        )
    keep = np.ones(C.nnz, dtype=bool)
    keep[pos] = False
    remaining = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=C.shape)
    deleted_values = coo.data[pos]

    def cells(values: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((values, (pairs[:, 0], pairs[:, 1])), shape=C.shape)

    def union(existing: sp.csr_matrix | None, new: sp.csr_matrix) -> sp.csr_matrix:
        return new if existing is None else (existing + new).tocsr()

    if mode == "retrain":
        return ModifiedData(remaining, mask, negatives)
    if mode == "mask":
        return ModifiedData(remaining, union(mask, cells(np.ones(len(pairs)))), negatives)
    weights = deleted_values if feedback == "implicit" else np.ones(len(pairs))
    return ModifiedData(remaining, mask, union(negatives, cells(weights)))


# --------------------------------------------------------------------------------------------
# Batched row solvers
# --------------------------------------------------------------------------------------------
def _row_chunks(lengths: np.ndarray, width: int, itemsize: int, budget: int) -> list[np.ndarray]:
    """Rows grouped by similar length so that a padded (rows, length, width) gather fits ``budget``."""
    order = np.argsort(lengths, kind="stable")
    sorted_len = lengths[order]
    cap = max(1, budget // (max(width, 1) * itemsize))
    max_rows = max(1, budget // (max(width, 1) ** 2 * itemsize))
    chunks, start, n = [], 0, order.size
    while start < n:
        stop = min(n, start + max_rows)
        # padding bound: the longest row of a chunk is at most 1.2 x + 4 its shortest row
        stop = min(stop, int(np.searchsorted(sorted_len, 1.2 * sorted_len[start] + 4, side="right")))
        sizes = np.arange(1, stop - start + 1) * np.maximum(sorted_len[start:stop], 1)
        stop = start + max(1, int(np.searchsorted(sizes, cap, side="right")))
        chunks.append(order[start:stop])
        start = stop
    return chunks


@dataclass(frozen=True)
class RowBatch:
    """Rows of similar length with their cells laid out padded to (rows, width); padding has weight 0."""

    rows: np.ndarray
    index: np.ndarray  # (n, width) ids on the other side (padding: 0)
    conf: np.ndarray  # (n, width) confidences c (padding: 0)
    target: np.ndarray  # (n, width) targets p (padding: 0)
    weight: np.ndarray  # (n, width) c - base (padding: 0)


def plan_rows(
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    target: np.ndarray,
    base: float,
    width: int,
    dtype: Any,
    budget: int,
) -> list[RowBatch]:
    """Group ``rows`` into padded :class:`RowBatch` es of at most ``budget`` bytes of gathered factors."""
    dtype = np.dtype(dtype)
    lengths = indptr[rows + 1] - indptr[rows]
    batches = []
    for chunk in _row_chunks(lengths, width, dtype.itemsize, budget):
        chunk = rows[chunk]
        count = indptr[chunk + 1] - indptr[chunk]
        slots = np.arange(int(count.max()) if chunk.size else 0)
        valid = slots < count[:, None]
        pos = np.where(valid, indptr[chunk][:, None] + slots, 0)
        if indices.size == 0:
            valid = np.zeros((chunk.size, 0), dtype=bool)
            pos = np.zeros((chunk.size, 0), dtype=np.int64)
        batches.append(RowBatch(
            rows=chunk,
            index=np.where(valid, indices[pos], 0).astype(np.intp),
            conf=np.where(valid, conf[pos], 0.0).astype(dtype),
            target=np.where(valid, target[pos], 0.0).astype(dtype),
            weight=np.where(valid, conf[pos] - base, 0.0).astype(dtype),
        ))
    return batches


def solve_rows(
    out: np.ndarray,
    batches: Sequence[RowBatch],
    other: np.ndarray,
    base: float,
    reg: np.ndarray,
    target_shift: np.ndarray | None = None,
    workers: int = 1,
) -> None:
    """Update ``out[rows]`` in place by solving each row's normal equations exactly.

    Row ``u`` solves ``(base * Y^T Y + sum_i (c_ui - base) y_i y_i^T + reg_u I) x_u = sum_i c_ui p_ui y_i``
    over its stored cells ``i`` with ``Y = other`` (one batched Gram product and Cholesky solve per
    batch). ``target_shift[i]`` (optional) is subtracted from the targets of column ``i``.
    ``workers > 1`` solves batches in parallel threads (they overlap where NumPy releases the GIL).
    """
    k = other.shape[1]
    dtype = other.dtype
    gram = (base * (other.T @ other)).astype(dtype)
    diag = np.arange(k)
    largest = max((batch.index.size for batch in batches), default=0)
    buffers = threading.local()  # one gather buffer per thread: fresh large arrays cost page faults

    def solve(batch: RowBatch) -> None:
        if not hasattr(buffers, "feats"):
            buffers.feats = np.empty(largest * k, dtype)
        feats = buffers.feats[: batch.index.size * k].reshape(batch.index.shape + (k,))
        np.take(other, batch.index, axis=0, out=feats, mode="clip")  # ids are in range by construction
        target = batch.target if target_shift is None else batch.target - np.take(target_shift, batch.index)
        b = np.matmul((batch.conf * target)[:, None, :], feats)[:, 0, :]
        A = np.matmul(feats.transpose(0, 2, 1) * batch.weight[:, None, :], feats)
        A += gram
        A[:, diag, diag] += reg[batch.rows].astype(dtype)[:, None]
        out[batch.rows] = _spd_solve(A, b, batch.rows)

    if workers > 1 and len(batches) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(solve, batches))  # batches own disjoint rows of ``out``
    else:
        for batch in batches:
            solve(batch)


def _spd_solve(A: np.ndarray, b: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Solve stacked symmetric positive-definite systems ``A x = b`` by Cholesky (LAPACK ``posv``).

    ``A`` is overwritten. A loop of ``posv`` calls beats NumPy's batched ``solve`` (LU) and
    ``cholesky`` + triangular solves here; ``A[j].T`` is the Fortran-ordered view LAPACK wants.
    """
    (posv,) = get_lapack_funcs(("posv",), (A,))
    x = np.empty_like(b)
    for j in range(A.shape[0]):
        _, x[j], info = posv(A[j].T, b[j], lower=1, overwrite_a=1, overwrite_b=0)
        if info != 0:
            raise np.linalg.LinAlgError(
                f"the normal matrix of row {rows[j]} is not positive definite (LAPACK info={info}); "
                "increase regularization"
            )
    return x


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
class ALS:
    """Bi-linear recommender trained by alternating least squares, with exact unlearning.

    Parameters
    ----------
    factors : latent dimension.
    regularization : L2 weight ``lambda`` on user and item factors (and biases).
    feedback : ``"implicit"`` (confidence-weighted loss over all cells) or ``"explicit"``
        (squared error on observed ratings only).
    solver : ``"cholesky"`` (exact batched solve, the default) or ``"cg"`` (``cg_steps``
        conjugate-gradient steps per row and half-sweep, warm-started; as in ``implicit``; a
        Numba kernel, compiled on first use and cached on disk).
    dtype : ``np.float64`` or ``np.float32`` for factors and solves (objectives use float64).
    seed : seed of the random initial factors (uniform on [0, 0.01), as in ``implicit``).
    use_bias : explicit feedback only: learn a global mean and user/item biases.
    scale_regularization : multiply ``lambda`` by each row's number of observed cells (ALS-WR).
    num_threads : worker threads over row batches (``cg``: over rows) during fit/unlearn, each
        with single-threaded BLAS (results do not depend on it); ``None``: one worker, BLAS
        threads as configured.
    chunk_bytes : memory budget of one batch of gathered factors / normal matrices.
    """

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        feedback: str = "implicit",
        solver: str = "cholesky",
        cg_steps: int = 3,
        dtype: Any = np.float64,
        seed: int = 0,
        use_bias: bool = False,
        scale_regularization: bool = False,
        num_threads: int | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    ):
        if isinstance(factors, bool) or not isinstance(factors, (int, np.integer)) or factors < 1:
            raise ValueError(f"factors must be a positive integer, got {factors!r}")
        if not np.isfinite(regularization) or regularization < 0:
            raise ValueError(f"regularization must be a finite number >= 0, got {regularization!r}")
        _check_choice(feedback, FEEDBACKS, "feedback")
        _check_choice(solver, SOLVERS, "solver")
        if isinstance(cg_steps, bool) or not isinstance(cg_steps, (int, np.integer)) or cg_steps < 1:
            raise ValueError(f"cg_steps must be a positive integer, got {cg_steps!r}")
        if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        if use_bias and feedback != "explicit":
            raise ValueError("use_bias is only available with feedback='explicit'")
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.feedback = feedback
        self.solver = solver
        self.cg_steps = int(cg_steps)
        self.dtype = np.dtype(dtype)
        self.seed = int(seed)
        self.use_bias = bool(use_bias)
        self.scale_regularization = bool(scale_regularization)
        self.num_threads = num_threads
        self.chunk_bytes = int(chunk_bytes)
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self.user_bias_: np.ndarray | None = None
        self.item_bias_: np.ndarray | None = None
        self.global_mean_: float = 0.0
        self.history_: list[dict[str, Any]] = []
        #: Full sweeps of the training that produced the factors, and their mean wall time.
        self.train_iterations_: int = 0
        self.sweep_seconds_: float = float("nan")

    # -- configuration -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        return {
            "factors": self.factors,
            "regularization": self.regularization,
            "feedback": self.feedback,
            "solver": self.solver,
            "cg_steps": self.cg_steps,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "use_bias": self.use_bias,
            "scale_regularization": self.scale_regularization,
            "num_threads": self.num_threads,
            "chunk_bytes": self.chunk_bytes,
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"ALS({args})"

    @property
    def user_factors_(self) -> np.ndarray | None:
        return self.user_factors

    @property
    def item_factors_(self) -> np.ndarray | None:
        return self.item_factors

    @property
    def is_fitted(self) -> bool:
        return self.user_factors is not None and self.item_factors is not None

    @classmethod
    def from_factors(
        cls,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        *,
        user_bias: np.ndarray | None = None,
        item_bias: np.ndarray | None = None,
        global_mean: float = 0.0,
        train_iterations: int = 0,
        sweep_seconds: float = float("nan"),
        **params: Any,
    ) -> "ALS":
        """A model holding given factors (e.g. from an ``implicit`` model), ready to unlearn.

        ``params`` are constructor arguments; ``factors`` and ``dtype`` default to the factors'.
        """
        U, V = np.asarray(user_factors), np.asarray(item_factors)
        for name, F in (("user_factors", U), ("item_factors", V)):
            if F.ndim != 2 or not np.issubdtype(F.dtype, np.floating) or not np.all(np.isfinite(F)):
                raise ValueError(f"{name} must be a finite 2-D float array, got {F.dtype} {F.shape}")
        if U.shape[1] != V.shape[1]:
            raise ValueError(
                f"user_factors and item_factors differ in width ({U.shape[1]} vs {V.shape[1]})"
            )
        params.setdefault("factors", U.shape[1])
        params.setdefault("dtype", U.dtype if U.dtype in (np.float32, np.float64) else np.float64)
        model = cls(**params)
        if model.factors != U.shape[1]:
            raise ValueError(f"factors={model.factors} does not match the factors' width {U.shape[1]}")
        model.user_factors = np.array(U, dtype=model.dtype)
        model.item_factors = np.array(V, dtype=model.dtype)
        if model.use_bias:
            model.user_bias_ = _bias(user_bias, U.shape[0], "user_bias", model.dtype)
            model.item_bias_ = _bias(item_bias, V.shape[0], "item_bias", model.dtype)
            model.global_mean_ = float(global_mean)
        elif user_bias is not None or item_bias is not None:
            raise ValueError("user_bias/item_bias need use_bias=True (and feedback='explicit')")
        model.train_iterations_ = int(train_iterations)
        model.sweep_seconds_ = float(sweep_seconds)
        return model

    def copy(self) -> "ALS":
        """A deep copy (factors, biases, history)."""
        model = type(self)(**self.get_params())
        for name in ("user_factors", "item_factors", "user_bias_", "item_bias_"):
            value = getattr(self, name)
            setattr(model, name, None if value is None else value.copy())
        model.global_mean_ = self.global_mean_
        model.history_ = [dict(rec) for rec in self.history_]
        model.train_iterations_ = self.train_iterations_
        model.sweep_seconds_ = self.sweep_seconds_
        return model

    # -- training ------------------------------------------------------------------------
    def fit(
        self,
        C: Any,
        iterations: int = 15,
        tol: float = 0.0,
        callback: Callable[["ALS", dict[str, Any]], Mapping[str, Any] | None] | None = None,
        show_progress: bool = False,
        *,
        mask: Any = None,
        negatives: Any = None,
        warm_start: bool = False,
    ) -> "ALS":
        """Train on ``C`` (users x items CSR of confidences, or ratings for explicit feedback).

        Runs full sweeps (users, then items) until ``iterations`` sweeps are done or the relative
        objective change of a sweep falls below ``tol``. ``warm_start=True`` starts from the
        current factors instead of random ones. ``callback(model, record)`` is called after every
        sweep; a returned mapping (e.g. ``{"test_auc": ...}``) is added to that sweep's record.
        ``history_`` holds one record per sweep (plus record 0, phase ``"start"``: the starting
        point) with ``iteration``, ``phase``, ``objective``, ``rel_change`` (None at the start),
        ``seconds`` (the sweep alone) and ``elapsed`` (since the start, objectives included).
        """
        _check_iterations(iterations, "iterations")
        _check_tol(tol)
        cells = build_cells(C, self.feedback, mask, negatives)
        if warm_start:
            self._check_factors(cells.shape)
        else:
            self._init_factors(cells.shape)
        if self.use_bias:
            self.global_mean_ = _weighted_mean(cells)
        self.history_ = []
        with self._threads():
            self._iterate(cells, iterations, tol, callback, show_progress, desc="ALS fit")
        sweeps = [r["seconds"] for r in self.history_ if r.get("phase") == "sweep"]
        self.train_iterations_ = len(sweeps)
        self.sweep_seconds_ = float(np.mean(sweeps)) if sweeps else float("nan")
        return self

    def unlearn(
        self,
        C: Any,
        deletions: Any,
        mode: str = "retrain",
        max_iterations: int = 10,
        tol: float = 0.0,
        callback: Callable[["ALS", dict[str, Any]], Mapping[str, Any] | None] | None = None,
        show_progress: bool = False,
        *,
        mask: Any = None,
        negatives: Any = None,
        local_update: bool = True,
    ) -> "ALS":
        """Forget ``deletions`` from a model trained on ``C``: a NEW model; ``self``/``C`` unchanged.

        The data are modified as :func:`apply_deletions` does for ``mode``; then exact ALS runs
        warm-started from the current factors on the modified objective. With ``local_update``
        the rows whose normal equations changed are solved first (the deleted cells' users, then
        their items: history phase ``"local"``), followed by up to ``max_iterations`` full sweeps
        (stopping early when the relative objective change is below ``tol``). The solver is always
        exact (Cholesky), whatever ``self.solver``. ``history_`` of the result starts with the
        objective of the original factors on the modified data.
        """
        _check_iterations(max_iterations, "max_iterations")
        _check_tol(tol)
        if not self.is_fitted:
            raise RuntimeError("unlearn needs a fitted model (fit it or use ALS.from_factors)")
        _check_choice(mode, MODES, "mode")
        data = apply_deletions(C, deletions, mode, feedback=self.feedback, mask=mask, negatives=negatives)
        pairs = as_deletions(deletions, data.C.shape)
        model = self.copy()
        model.solver = "cholesky"
        cells = build_cells(data.C, self.feedback, data.mask, data.negatives)
        model._check_factors(cells.shape)
        model.history_ = []
        if len(pairs) == 0:
            msg = "unlearn: empty deletion set; returning an unchanged copy of the model"
            warnings.warn(msg, stacklevel=2)
            log.warning(msg)
            model.history_ = [model._record(cells, 0, "start", 0.0, 0.0, None)]
            return model
        if model.use_bias:
            model.global_mean_ = _weighted_mean(cells)
        local = (np.unique(pairs[:, 0]), np.unique(pairs[:, 1])) if local_update else None
        with model._threads():
            model._iterate(cells, max_iterations, tol, callback, show_progress, desc=f"unlearn ({mode})",
                           local=local)
        model.solver = self.solver
        return model

    def _iterate(self, cells, iterations, tol, callback, show_progress, desc, local=None):
        from tqdm.auto import tqdm

        start = time.perf_counter()
        record = self._record(cells, 0, "start", 0.0, 0.0, None)
        self.history_.append(record)
        previous = record["objective"]
        if local is not None:
            t0 = time.perf_counter()
            self._half_sweep(cells, users=local[0])
            self._half_sweep(cells, items=local[1])
            record = self._record(cells, 0, "local", time.perf_counter() - t0,
                                  time.perf_counter() - start, previous)
            self.history_.append(record)
            previous = record["objective"]
        bar = tqdm(range(1, iterations + 1), desc=desc, disable=not show_progress, leave=False)
        for it in bar:
            t0 = time.perf_counter()
            self._half_sweep(cells, users=slice(None))
            self._half_sweep(cells, items=slice(None))
            seconds = time.perf_counter() - t0
            record = self._record(cells, it, "sweep", seconds, time.perf_counter() - start, previous)
            if callback is not None:
                extra = callback(self, record)
                if extra:
                    record.update(extra)
            self.history_.append(record)
            bar.set_postfix(objective=f"{record['objective']:.6g}", rel=f"{record['rel_change']:.2e}")
            previous = record["objective"]
            if record["rel_change"] < tol:
                break
        bar.close()

    def _record(self, cells, iteration, phase, seconds, elapsed, previous):
        objective = self._objective(cells)
        rel = None if previous is None else abs(previous - objective) / max(abs(previous), 1e-300)
        return {"iteration": iteration, "phase": phase, "objective": objective, "rel_change": rel,
                "seconds": seconds, "elapsed": elapsed}

    def _half_sweep(self, cells: Cells, users: Any = None, items: Any = None) -> None:
        """Re-solve all (``slice(None)``) or the given users' (or items') rows, the other side fixed."""
        axis = 0 if users is not None else 1
        which = users if axis == 0 else items
        rows = None if isinstance(which, slice) else np.asarray(which, dtype=np.int64)
        own, other = (self.user_factors, self.item_factors) if axis == 0 else (self.item_factors, self.user_factors)
        reg = self._reg(cells, axis)
        workers = self.num_threads or 1

        def solve(own, other, target_shift=None):
            if self.solver == "cg":
                from .als_cg import cg_solve_rows  # compiles on first use (cached on disk)

                cg_rows = np.arange(cells.shape[axis]) if rows is None else rows
                cg_solve_rows(own, cg_rows, cells.csr(axis), other, cells.base, reg, self.cg_steps,
                              target_shift, workers)
            else:
                batches = cells.plan(axis, rows, own.shape[1], self.dtype, self.chunk_bytes)
                solve_rows(own, batches, other, cells.base, reg, target_shift, workers)

        if not self.use_bias:
            solve(own, other)
            return
        # biases: solve [x_u, b_u] against [y_i, 1] with targets r - mu - b_i
        own_bias = self.user_bias_ if axis == 0 else self.item_bias_
        other_bias = self.item_bias_ if axis == 0 else self.user_bias_
        ext_other = np.column_stack([other, np.ones(other.shape[0], self.dtype)])
        ext_own = np.column_stack([own, own_bias])
        solve(ext_own, ext_other, self.global_mean_ + other_bias)
        own[:] = ext_own[:, :-1]
        own_bias[:] = ext_own[:, -1]

    def _reg(self, cells: Cells, axis: int) -> np.ndarray:
        n = cells.shape[axis]
        if not self.scale_regularization:
            return np.full(n, self.regularization)
        return self.regularization * np.maximum(cells.counts(axis), 1.0)

    # -- objective and prediction ---------------------------------------------------------
    def objective(self, C: Any, *, mask: Any = None, negatives: Any = None) -> float:
        """The training objective (float64) of the current factors on ``C`` (+ mask/negatives)."""
        cells = build_cells(C, self.feedback, mask, negatives)
        self._check_factors(cells.shape)
        return self._objective(cells)

    def _objective(self, cells: Cells) -> float:
        X = self.user_factors.astype(np.float64)
        Y = self.item_factors.astype(np.float64)
        total = 0.0
        if cells.base:
            total += cells.base * float(np.sum((X.T @ X) * (Y.T @ Y)))
        rows = cells.rows
        pred = self._predict_pairs(rows, cells.indices)
        total += float(np.sum(cells.conf * (cells.target - pred) ** 2 - cells.base * pred**2))
        reg_u, reg_i = self._reg(cells, 0), self._reg(cells, 1)
        sq_u, sq_i = np.sum(X**2, axis=1), np.sum(Y**2, axis=1)
        if self.use_bias:
            sq_u = sq_u + self.user_bias_.astype(np.float64) ** 2
            sq_i = sq_i + self.item_bias_.astype(np.float64) ** 2
        return total + float(reg_u @ sq_u + reg_i @ sq_i)

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Scores (float64) of the (user, item) pairs ``zip(users, items)``."""
        if not self.is_fitted:
            raise RuntimeError("predict needs a fitted model")
        users, items = np.asarray(users), np.asarray(items)
        if users.shape != items.shape:
            raise ValueError(f"users and items must have the same shape, got {users.shape} and {items.shape}")
        for name, ids, n in (("users", users, self.user_factors.shape[0]),
                             ("items", items, self.item_factors.shape[0])):
            if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= n):
                raise ValueError(f"{name} must be integer ids in [0, {n})")
        flat = self._predict_pairs(users.ravel().astype(np.int64), items.ravel().astype(np.int64))
        return flat.reshape(users.shape)

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Float64 scores of (user, item) pairs, in chunks of bounded memory."""
        X = self.user_factors.astype(np.float64, copy=False)
        Y = self.item_factors.astype(np.float64, copy=False)
        out = np.empty(users.size, dtype=np.float64)
        step = max(1, min(self.chunk_bytes, CACHE_CHUNK_BYTES) // (16 * self.factors))
        for s in range(0, users.size, step):
            out[s:s + step] = np.einsum("nk,nk->n", np.take(X, users[s:s + step], axis=0),
                                        np.take(Y, items[s:s + step], axis=0))
        if self.use_bias:
            out += self.global_mean_ + self.user_bias_[users] + self.item_bias_[items]
        return out

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: Any) -> None:
        """Write the model to ``path`` (``.npz``, no pickles): factors, biases, parameters, history."""
        if not self.is_fitted:
            raise RuntimeError("save needs a fitted model")
        meta = {
            "format": MODEL_FORMAT,
            "params": self.get_params(),
            "global_mean": self.global_mean_,
            "train_iterations": self.train_iterations_,
            "sweep_seconds": None if np.isnan(self.sweep_seconds_) else self.sweep_seconds_,
            "history": self.history_,
        }
        arrays = {"user_factors": self.user_factors, "item_factors": self.item_factors,
                  "meta": np.array(json.dumps(meta, allow_nan=True, default=float))}
        if self.use_bias:
            arrays.update(user_bias=self.user_bias_, item_bias=self.item_bias_)
        save_npz(path, **arrays)

    @classmethod
    def load(cls, path: Any) -> "ALS":
        """Read a model written by :meth:`save`."""
        arrays = load_npz(path)
        if "meta" not in arrays:
            raise ValueError(f"{path}: not an ALS model file (no 'meta' entry)")
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != MODEL_FORMAT:
            raise ValueError(f"{path}: unknown model format {meta.get('format')!r}")
        params = dict(meta["params"])
        params["dtype"] = np.dtype(params["dtype"])
        sweep = meta.get("sweep_seconds")
        model = cls.from_factors(
            arrays["user_factors"], arrays["item_factors"],
            user_bias=arrays.get("user_bias"), item_bias=arrays.get("item_bias"),
            global_mean=meta.get("global_mean", 0.0), train_iterations=meta.get("train_iterations", 0),
            sweep_seconds=float("nan") if sweep is None else sweep, **params,
        )
        model.history_ = meta.get("history", [])
        return model

    # -- helpers --------------------------------------------------------------------------
    def _init_factors(self, shape: tuple[int, int]) -> None:
        rng = np.random.default_rng(self.seed)
        self.user_factors = (rng.random((shape[0], self.factors)) * 0.01).astype(self.dtype)
        self.item_factors = (rng.random((shape[1], self.factors)) * 0.01).astype(self.dtype)
        if self.use_bias:
            self.user_bias_ = np.zeros(shape[0], self.dtype)
            self.item_bias_ = np.zeros(shape[1], self.dtype)

    def _check_factors(self, shape: tuple[int, int]) -> None:
        if not self.is_fitted:
            raise RuntimeError("the model has no factors yet (fit it or use ALS.from_factors)")
        if self.user_factors.shape[0] != shape[0] or self.item_factors.shape[0] != shape[1]:
            raise ValueError(
                f"C has shape {shape} but the model has {self.user_factors.shape[0]} users and "
                f"{self.item_factors.shape[0]} items"
            )

    def _threads(self):
        """Single-threaded BLAS while fitting when ``num_threads`` is set (the batches run in parallel)."""
        from contextlib import nullcontext

        if self.num_threads is None:
            return nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")


def _weighted_mean(cells: Cells) -> float:
    weight = cells.conf.sum()
    return float(cells.conf @ cells.target / weight) if weight > 0 else 0.0


def _bias(value: Any, n: int, name: str, dtype: np.dtype) -> np.ndarray:
    if value is None:
        return np.zeros(n, dtype)
    arr = np.asarray(value, dtype=dtype)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be a finite array of shape ({n},), got {arr.shape}")
    return arr.copy()


def _check_iterations(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _check_tol(tol: Any) -> None:
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
