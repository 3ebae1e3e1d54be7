"""Storage cost of per-user parameters, measured on actually serialized stores.

A *store* is the set of arrays a serving system keeps: the shared parameters (stored once)
and one per-user store holding every user's personalized parameters as stacked arrays.
Stores are serialized as uncompressed ``.npz`` (float32 values, the smallest unsigned
integer type that can address a layer for sparse indices) and their byte length is
measured. When a store would exceed ``max_bytes``, the same store is serialized with its
leading dimension cut to fit and with a leading dimension of zero, and the byte count is
extrapolated linearly in that dimension (exact for ``.npz``: the header does not grow);
such numbers are flagged as extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from bilinrec.experiments.serialized import VALUE_DTYPE, index_dtype, serialized_nbytes

#: Storage schemes: key -> what each user stores.
SCHEMES = {
    "finetune": "a full copy of the fine-tuned model (P values)",
    "last_layer": "a fine-tuned copy of the last layer",
    "user_embedding": "an r-dimensional embedding fed into the fixed global model",
    "amht_lrs": "per personalized layer: r low-rank coefficients and k sparse (index, value) pairs",
}


@dataclass(frozen=True)
class ModelSpec:
    """A model whose per-user storage is measured: ``parameters`` split evenly over ``layers``
    personalized layers, of which the last has ``last_layer_parameters``. ``embedding_dim``
    overrides the size of a user embedding for this model (e.g. d + 1 for the linear model)."""

    name: str
    parameters: int
    layers: int = 1
    last_layer_parameters: int | None = None
    embedding_dim: int | None = None

    def __post_init__(self):
        if self.parameters < 1:
            raise ValueError(f"model {self.name!r}: parameters must be positive, got {self.parameters}")
        if not 1 <= self.layers <= self.parameters:
            raise ValueError(f"model {self.name!r}: layers must be in [1, parameters], got {self.layers}")
        last = self.last_layer_parameters
        if last is not None and not 1 <= last <= self.parameters:
            raise ValueError(f"model {self.name!r}: last_layer_parameters must be in [1, parameters], got {last}")

    @property
    def layer_parameters(self) -> int:
        """Parameters of one personalized layer (layers are taken to be of equal size)."""
        return -(-self.parameters // self.layers)

    @property
    def last_layer(self) -> int:
        return self.last_layer_parameters or self.layer_parameters


@dataclass(frozen=True)
class LRSSpec:
    """Low-rank + sparse storage: rank ``r`` and, per layer, ``sparsity`` pairs or a ``sparsity_fraction``."""

    name: str
    rank: int
    sparsity: int | None = None
    sparsity_fraction: float | None = None

    def __post_init__(self):
        if self.rank < 0:
            raise ValueError(f"LRS variant {self.name!r}: rank must be >= 0, got {self.rank}")
        if (self.sparsity is None) == (self.sparsity_fraction is None):
            raise ValueError(f"LRS variant {self.name!r}: give exactly one of sparsity and sparsity_fraction")
        if self.sparsity is not None and self.sparsity < 0:
            raise ValueError(f"LRS variant {self.name!r}: sparsity must be >= 0, got {self.sparsity}")
        if self.sparsity_fraction is not None and not 0.0 <= self.sparsity_fraction <= 1.0:
            raise ValueError(f"LRS variant {self.name!r}: sparsity_fraction must be in [0, 1]")

    def k_for(self, layer_parameters: int) -> int:
        if self.sparsity is not None:
            return min(self.sparsity, layer_parameters)
        return min(layer_parameters, math.ceil(self.sparsity_fraction * layer_parameters))


# A layout is name -> (shape, dtype); the first axis of every array is the "leading" axis
# (users for per-user stores, parameters for shared stores).
Layout = Mapping[str, tuple[tuple[int, ...], np.dtype]]


def user_layout(scheme: str, model: ModelSpec, n_users: int, rank: int, lrs: LRSSpec | None = None) -> Layout:
    """Arrays of the per-user store of ``n_users`` users under ``scheme``."""
    if scheme == "finetune":
        return {"weights": ((n_users, model.parameters), VALUE_DTYPE)}
    if scheme == "last_layer":
        return {"last_layer": ((n_users, model.last_layer), VALUE_DTYPE)}
    if scheme == "user_embedding":
        return {"embedding": ((n_users, model.embedding_dim or rank), VALUE_DTYPE)}
    if scheme == "amht_lrs":
        if lrs is None:
            raise ValueError("scheme 'amht_lrs' needs an LRSSpec")
        k = lrs.k_for(model.layer_parameters)
        return {
            "coefficients": ((n_users, model.layers, lrs.rank), VALUE_DTYPE),
            "sparse_index": ((n_users, model.layers, k), index_dtype(model.layer_parameters)),
            "sparse_value": ((n_users, model.layers, k), VALUE_DTYPE),
        }
    raise ValueError(f"unknown storage scheme {scheme!r}; expected one of {sorted(SCHEMES)}")


def shared_layouts(scheme: str, model: ModelSpec, lrs: LRSSpec | None = None) -> list[Layout]:
    """Stores kept once (one file each): the global model, plus the low-rank bases for LRS."""
    layouts = [{"global_model": ((model.parameters,), VALUE_DTYPE)}]
    if scheme == "amht_lrs":
        if lrs is None:
            raise ValueError("scheme 'amht_lrs' needs an LRSSpec")
        layouts.append({"bases": ((model.layer_parameters, model.layers, lrs.rank), VALUE_DTYPE)})
    return layouts


def _payload(layout: Layout, leading: int | None = None) -> int:
    total = 0
    for shape, dtype in layout.values():
        shape = (leading, *shape[1:]) if leading is not None else shape
        total += int(np.prod(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
    return total


def _materialize(layout: Layout, rng: np.random.Generator) -> dict[str, np.ndarray]:
    arrays = {}
    for name, (shape, dtype) in layout.items():
        if np.dtype(dtype).kind == "u":
            arrays[name] = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
        else:
            arrays[name] = rng.random(size=shape, dtype=np.float32).astype(dtype, copy=False)
    return arrays


def _resized(layout: Layout, leading: int, shrink: float = 1.0) -> Layout:
    """``layout`` with leading dimension ``leading`` and every trailing shape shrunk by ``shrink``."""
    out = {}
    for name, (shape, dtype) in layout.items():
        rest = tuple(max(1, int(dim * shrink)) if shrink < 1.0 and dim else dim for dim in shape[1:])
        out[name] = ((leading, *rest), dtype)
    return out


def measure_layout(layout: Layout, rng: np.random.Generator, max_bytes: int) -> tuple[int, bool]:
    """Serialized size of a store with ``layout`` and whether it was measured (True) or extrapolated.

    A store larger than ``max_bytes`` is serialized cut down (fewer rows; if one row alone is
    too large, also narrower rows) and empty, and its size is extrapolated linearly in the
    payload bytes: the ``.npz`` container adds a constant per array.
    """
    leading = {shape[0] for shape, _ in layout.values()}
    if len(leading) != 1:
        raise ValueError("all arrays of a store must share their leading dimension")
    if _payload(layout) <= max_bytes:
        return serialized_nbytes(_materialize(layout, rng)), True
    per_row = _payload(layout, leading=1)
    if per_row <= max_bytes:
        part_layout = _resized(layout, int(max_bytes // per_row))
    else:
        part_layout = _resized(layout, 1, shrink=max_bytes / per_row)
    empty = serialized_nbytes(_materialize(_resized(layout, 0), rng))
    part = serialized_nbytes(_materialize(part_layout, rng))
    scale = _payload(layout) / _payload(part_layout)
    return int(round(empty + (part - empty) * scale)), False


def storage_table(
    models: Sequence[ModelSpec],
    n_users: Iterable[int],
    rank: int,
    lrs_variants: Sequence[LRSSpec],
    rng: np.random.Generator,
    max_bytes: int,
) -> pd.DataFrame:
    """Bytes per user, shared bytes and total bytes of every (model, scheme, N).

    ``bytes_per_user`` is the marginal cost of a user (store of N users minus the empty
    store, over N). ``measured`` is False where any part was extrapolated.
    """
    n_users = sorted({int(n) for n in n_users})
    if not n_users or n_users[0] < 1:
        raise ValueError(f"n_users must be positive integers, got {n_users!r}")
    if not models:
        raise ValueError("models must not be empty")
    rows = []
    for model in models:
        schemes = [(s, None, s) for s in ("finetune", "last_layer", "user_embedding")]
        schemes += [("amht_lrs", v, v.name) for v in lrs_variants]
        for scheme, lrs, label in schemes:
            shared_parts = [measure_layout(layout, rng, max_bytes) for layout in shared_layouts(scheme, model, lrs)]
            shared = sum(nbytes for nbytes, _ in shared_parts)
            shared_measured = all(measured for _, measured in shared_parts)
            empty = serialized_nbytes(_materialize(user_layout(scheme, model, 0, rank, lrs), rng))
            for n in n_users:
                store, measured = measure_layout(user_layout(scheme, model, n, rank, lrs), rng, max_bytes)
                rows.append(
                    {
                        "model": model.name,
                        "parameters": model.parameters,
                        "scheme": scheme,
                        "variant": label,
                        "n_users": n,
                        "bytes_per_user": (store - empty) / n,
                        "shared_bytes": shared,
                        "total_bytes": shared + store,
                        "measured": bool(measured and shared_measured),
                    }
                )
    table = pd.DataFrame(rows)
    full = table[table["scheme"] == "finetune"].set_index(["model", "n_users"])["total_bytes"]
    keys = pd.MultiIndex.from_frame(table[["model", "n_users"]])
    table["full_over_scheme"] = full.reindex(keys).to_numpy() / table["total_bytes"].to_numpy()
    return table
