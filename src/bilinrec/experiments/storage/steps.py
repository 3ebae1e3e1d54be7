"""Steps of part 'storage': measure serialized per-user storage of every model and scheme."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from bilinrec.experiments.storage.measure import LRSSpec, ModelSpec, storage_table
from bilinrec.experiments.storage.trained import crossing_size, trained_storage_table
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


def trained_storage_step(output_csv: PathLike, cfg: Mapping[str, Any], seed: int, min_ratio: float) -> pd.DataFrame:
    """Fit AMHT-LRS and full fine-tuning at every model size of ``cfg`` (section ``storage.trained``),
    serialize both and write ``storage_trained.{csv,md}`` with the size where the ratio reaches ``min_ratio``."""
    table = trained_storage_table(cfg, seed)
    ours = table[table["scheme"] == "amht_lrs"]
    crossing = crossing_size(ours["dim"].to_numpy(), ours["ratio"].to_numpy(), min_ratio)
    shown = pd.DataFrame({
        "P = d": table["dim"], "scheme": table["scheme"],
        "non-zeros/user": table["nonzeros_per_user"].round(2),
        "test MSE": table["test_mse"].map(lambda v: f"{v:.3g}"), "rel. error": table["error"].map(lambda v: f"{v:.2g}"),
        "bytes/user": table["bytes_per_user"].round(1),
        "bytes/user (deflate)": table["bytes_per_user_compressed"].round(1),
        "full FT / scheme": table["ratio"].map(lambda r: f"{r:.3g}×"),
        "(deflate)": table["ratio_compressed"].map(lambda r: f"{r:.3g}×"),
        f"total, {int(table['n_users'].iloc[0])} users": table["total_ratio"].map(lambda r: f"{r:.3g}×"),
    })
    where = "not reached" if np.isnan(crossing) else f"reached from P ≈ {crossing:,.0f}"
    write_table(table, output_csv, display=shown, formats=("csv", "md"),
                caption=f"Serialized .npz bytes of TRAINED models (float32; AMHT-LRS: U shared, W and the fitted "
                        f"sparse part in CSR per user; fine-tuning: a full d-vector per user; amht_lrs_dense_b: the "
                        f"AMHT-LRS fit stored with a dense per-user part, the negative control; oracle: the fit with "
                        f"U* and supports given, in AMHT-LRS's format, the planted control). Bytes per user are "
                        f"marginal (store of t users minus store of t/2) plus the shared store over "
                        f"{int(cfg['amortize_users']):,} users. Ratio {min_ratio:g}×: {where}.")
    return table
