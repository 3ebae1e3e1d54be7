"""Item genres: binary item attributes aligned with a prepared dataset's item indices.

MovieLens 100K lists 19 binary genre flags per movie in ``u.item`` (pipe-separated, Latin-1);
MovieLens 1M lists ``Genre|Genre`` strings in ``movies.dat``. A prepared dataset may also carry
its own ``item_genres`` array (the generated positive-control data does). Items without an entry
get all-zero rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bilinrec.data.acquire import ratings_file_of
from bilinrec.data.errors import DataFormatError
from bilinrec.io import load_npz

#: The 19 genre flags of ``ml-100k/u.item``, in file order.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
ML1M_GENRES = ML100K_GENRES[1:]


def parse_ml100k_items(path: str | os.PathLike, item_ids: np.ndarray) -> np.ndarray:
    """Genre flags (``len(item_ids)`` x 19, float) of ``u.item`` rows, aligned with ``item_ids``."""
    flags = {}
    with open(path, encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("|")
            if len(fields) < 5 + len(ML100K_GENRES):
                raise DataFormatError(f"{path}:{lineno}: expected {5 + len(ML100K_GENRES)} fields, got {len(fields)}")
            try:
                flags[int(fields[0])] = [int(v) for v in fields[-len(ML100K_GENRES):]]
            except ValueError as exc:
                raise DataFormatError(f"{path}:{lineno}: {exc}") from exc
    out = np.zeros((len(item_ids), len(ML100K_GENRES)))
    for row, item in enumerate(np.asarray(item_ids)):
        if int(item) in flags:
            out[row] = flags[int(item)]
    return out


def parse_ml1m_movies(path: str | os.PathLike, item_ids: np.ndarray) -> np.ndarray:
    """Genre flags (``len(item_ids)`` x 18) of ``movies.dat`` rows (``id::title::A|B``), aligned with ``item_ids``."""
    column = {g: j for j, g in enumerate(ML1M_GENRES)}
    flags = {}
    with open(path, encoding="latin-1") as fh:
        for lineno, line in enumerate(fh, 1):
            fields = line.rstrip("\n").split("::")
            if len(fields) != 3:
                continue
            flags[int(fields[0])] = [column[g] for g in fields[2].split("|") if g in column]
    out = np.zeros((len(item_ids), len(ML1M_GENRES)))
    for row, item in enumerate(np.asarray(item_ids)):
        out[row, flags.get(int(item), [])] = 1.0
    return out


def item_genres(name: str, ratings_path: str | os.PathLike, item_ids: np.ndarray,
                resources: str | os.PathLike = "resources") -> np.ndarray | None:
    """Genres of dataset ``name`` aligned with ``item_ids``, or None if the dataset has none.

    Looked up first in the prepared ``ratings.npz`` (key ``item_genres``), then in the fetched
    copy under ``resources`` (``u.item`` of ml-100k, ``movies.dat`` of ml-1m).
    """
    arrays = load_npz(ratings_path)
    if "item_genres" in arrays:
        return np.asarray(arrays["item_genres"], dtype=np.float64)
    if name not in ("ml-100k", "ml-1m"):
        return None
    ratings_file, _ = ratings_file_of(resources, name)
    folder = Path(ratings_file).parent
    if name == "ml-100k":
        return parse_ml100k_items(folder / "u.item", item_ids)
    return parse_ml1m_movies(folder / "movies.dat", item_ids)
