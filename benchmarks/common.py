"""What every benchmark shares: the datasets, whole-process peak memory and the machine's GEMM rate.

Imported as ``from common import ...`` (each benchmark runs as a script from this folder)."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def peak_rss_bytes() -> int:
    """The whole process's peak resident memory so far (``VmHWM``; includes C/C++ buffers)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def gemm_rate(n: int = 2000, repeats: int = 3, dtype=np.float64) -> float:
    """Achieved FLOP per CPU second of a square matrix product (float64 unless ``dtype``; CPU
    time, so that a busy shared machine does not distort it)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    a @ a
    start = time.process_time()
    for _ in range(repeats):
        a @ a
    return repeats * 2 * n**3 / (time.process_time() - start)


def movielens_100k_binary() -> sp.csr_matrix:
    """ml-100k as in Unlearn-ALS: ratings < 3 dropped, the rest set to 1 (from BILINREC_DATA_DIR)."""
    data_dir = os.environ.get("BILINREC_DATA_DIR")
    if not data_dir or not (Path(data_dir) / "ml-100k.zip").exists():
        raise SystemExit("set BILINREC_DATA_DIR to a directory holding ml-100k.zip")
    with zipfile.ZipFile(Path(data_dir) / "ml-100k.zip") as archive:
        table = np.loadtxt(io.BytesIO(archive.read("ml-100k/u.data")), dtype=np.int64)
    table = table[table[:, 2] >= 3]
    return sp.csr_matrix((np.ones(len(table)), (table[:, 0] - 1, table[:, 1] - 1)))


def movielens_100k() -> sp.csr_matrix:
    """ml-100k confidences of Unlearn-ALS: 5 x BM25(K1=100, B=0.9) of the binary interactions."""
    from implicit.nearest_neighbours import bm25_weight

    return (5 * bm25_weight(movielens_100k_binary(), K1=100, B=0.9)).tocsr()


#: ML-20M's users, items and stored cells.
ML20M = (138_493, 26_744, 20_000_000)


def synthetic_20m(seed: int = 0, scale: float = 1.0) -> sp.csr_matrix:
    """A random matrix of ML-20M scale (138,493 users x 26,744 items, 20M stored cells, skewed
    user and item popularity), confidences uniform on [1, 5); ``scale`` shrinks users, items and
    cells alike (at most a quarter of the grid is stored at small scales)."""
    n_users, n_items, n_cells = (max(10, round(n * scale)) for n in ML20M)
    n_cells = min(n_cells, n_users * n_items // 4)
    rng = np.random.default_rng(seed)
    user_weight = rng.lognormal(0.0, 1.0, n_users)
    item_weight = 1.0 / np.arange(1, n_items + 1) ** 0.9
    keys = np.empty(0, dtype=np.int64)
    while keys.size < n_cells:
        draw = 2 * (n_cells - keys.size) + 1000
        drawn = rng.choice(n_users, draw, p=user_weight / user_weight.sum())
        drawn *= n_items
        drawn += rng.choice(n_items, draw, p=item_weight / item_weight.sum())  # keys user * n_items + item, in place
        keys = np.concatenate([keys, drawn])
        del drawn
        keys = _sorted_unique(keys)
    keys = np.sort(rng.choice(keys, n_cells, replace=False))
    conf = 1.0 + 4.0 * rng.random(n_cells)
    # keys are sorted and unique: the CSR arrays directly (no COO conversion and its copies)
    indptr = np.searchsorted(keys, np.arange(n_users + 1) * n_items)
    keys %= n_items
    return sp.csr_matrix((conf, keys.astype(np.int32), indptr), shape=(n_users, n_items))


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)``, sorting ``a`` in place: a fraction of ``np.unique``'s temporary memory
    (~6x the input with NumPy 2.4), which set the peak of building the 20M matrix."""
    a.sort()
    keep = np.empty(a.size, dtype=bool)
    keep[:1] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def synthetic_20m_binary() -> sp.csr_matrix:
    """:func:`synthetic_20m` with its stored values taken as binary interactions."""
    X = synthetic_20m()
    X.data[:] = 1.0
    return X
