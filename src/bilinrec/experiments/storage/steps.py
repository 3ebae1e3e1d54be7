"""Steps of part 'storage': measure serialized per-user storage of every model and scheme."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bilinrec.experiments.storage.measure import LRSSpec, ModelSpec, storage_table
from bilinrec.seeds import derive_rng
from bilinrec.tables import write_table

PathLike = str | os.PathLike


def storage_models(cfg: Mapping[str, Any], linear_dims: Sequence[int]) -> list[ModelSpec]:
    """Reference models of the ``storage`` section plus one linear MovieLens model per d."""
    linear = [ModelSpec(f"linear MovieLens model (d={d})", int(d) + 1, 1, None, embedding_dim=int(d) + 1)
              for d in linear_dims]
    return linear + [ModelSpec(m["name"], m["parameters"], m.get("layers", 1), m.get("last_layer_parameters"))
                     for m in cfg["models"]]


def storage_step(output_csv: PathLike, cfg: Mapping[str, Any], linear_dims: Sequence[int], seed: int) -> None:
    """Measure serialized storage of every model and scheme; write ``storage.{csv,md}``."""
    variants = [LRSSpec(v["name"], v["rank"], v.get("sparsity"), v.get("sparsity_fraction"))
                for v in cfg["lrs_variants"]]
    table = storage_table(storage_models(cfg, linear_dims), cfg["n_users"], cfg["embedding_dim"], variants,
                          derive_rng(seed, "storage"), cfg["max_measured_bytes"])
    write_table(table, output_csv, display=storage_display(table), formats=("csv", "md"),
                caption="Serialized per-user storage (float32, uncompressed .npz). Shared parameters are "
                        "counted once; 'extrapolated' rows were not serialized in full.")


def human_bytes(n: float) -> str:
    """Decimal units (1 PB = 1e15 bytes), as in the paper's '1 GB x 1M users = 1 PB' example."""
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def storage_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "model": table["model"],
        "scheme": table["variant"],
        "users": table["n_users"].map(lambda n: f"{n:,}"),
        "bytes/user": table["bytes_per_user"].map(human_bytes),
        "shared": table["shared_bytes"].map(human_bytes),
        "total": table["total_bytes"].map(human_bytes),
        "full FT / scheme": table["full_over_scheme"].map(lambda r: f"{r:.3g}×"),
        "how": np.where(table["measured"], "measured", "extrapolated"),
    })
