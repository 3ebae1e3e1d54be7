"""Result tables in CSV, Markdown and LaTeX (booktabs), numbers as mean ± std."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from bilinrec.io import write_text


def _digits_for(std: float, significant: int = 2) -> int:
    if not np.isfinite(std) or std <= 0:
        return 3
    return max(0, min(6, significant - 1 - int(math.floor(math.log10(abs(std))))))


def mean_std_by(frame: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean and standard deviation of column ``y`` for each value of ``x`` (sorted by ``x``)."""
    return frame.groupby(x)[y].agg(["mean", "std"]).reset_index().sort_values(x)


def format_mean_std(mean: float, std: float | None = None, digits: int | None = None) -> str:
    """Format ``mean ± std`` with digits chosen from the spread (two significant in std)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        d = 3 if digits is None else digits
        return f"{mean:.{d}f}"
    d = _digits_for(std) if digits is None else digits
    return f"{mean:.{d}f} ± {std:.{d}f}"


def summarize(df: pd.DataFrame, by: Sequence[str], metrics: Iterable[str]) -> pd.DataFrame:
    """Group ``df`` by ``by`` and return mean, std and count of each metric (flat columns)."""
    metrics = list(metrics)
    grouped = df.groupby(list(by), dropna=False, sort=True)[metrics]
    out = grouped.agg(["mean", "std", "count"])
    out.columns = [f"{m}_{stat}" for m, stat in out.columns]
    return out.reset_index()


def display_table(summary: pd.DataFrame, by: Sequence[str], metrics: Iterable[str]) -> pd.DataFrame:
    """Turn the output of :func:`summarize` into strings ``mean ± std`` per metric."""
    shown = summary[list(by)].copy()
    for m in metrics:
        shown[m] = [
            format_mean_std(mu, sd) for mu, sd in zip(summary[f"{m}_mean"], summary[f"{m}_std"])
        ]
    return shown


def write_table(
    df: pd.DataFrame,
    csv_path: str | os.PathLike,
    display: pd.DataFrame | None = None,
    formats: Sequence[str] = ("csv", "md", "tex"),
    caption: str | None = None,
) -> list[Path]:
    """Write ``df`` as CSV (full precision) and ``display`` (or ``df``) as Markdown/LaTeX.

    Paths share the stem of ``csv_path``. Each file is written atomically.
    """
    csv_path = Path(csv_path)
    stem = csv_path.with_suffix("")
    shown = df if display is None else display
    written = []
    if "csv" in formats:
        write_text(csv_path, df.to_csv(index=False))
        written.append(csv_path)
    if "md" in formats:
        md = shown.to_markdown(index=False)
        if caption:
            md = f"{caption}\n\n{md}"
        write_text(stem.with_suffix(".md"), md + "\n")
        written.append(stem.with_suffix(".md"))
    if "tex" in formats:
        tex = shown.to_latex(index=False, escape=True, caption=caption)
        # pandas emits \toprule/\midrule/\bottomrule (booktabs) by default
        write_text(stem.with_suffix(".tex"), tex)
        written.append(stem.with_suffix(".tex"))
    return written
