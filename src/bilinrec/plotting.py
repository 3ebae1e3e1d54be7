"""Shared figure style and deterministic figure saving (method names and colours: ``labels``)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bilinrec.io import atomic_path  # noqa: E402


def style_path() -> str:
    return str(resources.files("bilinrec").joinpath("bilinrec.mplstyle"))


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply the project's matplotlib style inside the block."""
    with plt.style.context(style_path()):
        yield


def use_style() -> None:
    """Apply the project's matplotlib style globally (for notebooks)."""
    plt.style.use(style_path())


def legend_right(fig: "plt.Figure", handles, labels, width: float = 2.6) -> None:
    """Widen ``fig`` by ``width`` inches and put the legend in that margin (kept inside the saved figure)."""
    w, h = fig.get_size_inches()
    fig.set_size_inches(w + width, h)
    fig.tight_layout(rect=(0, 0, w / (w + width), 1))
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(w / (w + width), 0.5), frameon=False)


def savefig(fig: "plt.Figure", stem: str | os.PathLike, close: bool = True) -> list[Path]:
    """Save ``fig`` as ``stem.pdf`` and ``stem.png``, atomically and deterministically.

    PDF metadata carries no creation date, so the same input gives a byte-identical PDF.
    """
    stem = Path(stem)
    written = []
    for ext, kwargs in (
        ("pdf", {"metadata": {"CreationDate": None, "ModDate": None, "Producer": "bilinrec", "Creator": "bilinrec"}}),
        ("png", {"metadata": {"Software": "bilinrec"}}),
    ):
        target = stem.with_suffix(f".{ext}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=ext, **kwargs)
        written.append(target)
    if close:
        plt.close(fig)
    return written
