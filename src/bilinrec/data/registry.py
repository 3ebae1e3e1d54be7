"""Known datasets: where each MovieLens archive lives, how to verify it and how its ratings look.

Checksums and counts come from the published archives (see the project README). A value of
``None`` means "not known": the acquisition code then falls back to the next available check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

#: Base URL of the official MovieLens archives.
GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"

#: Name of the offline MovieLens-style generator (no file to fetch).
SYNTHETIC = "synthetic-ml"


@dataclass(frozen=True)
class RatingsFormat:
    """How one delimited ratings file is laid out.

    ``columns`` maps each field (user, item, rating, timestamp) to a column index, or to a
    header name when the file has a header; ``timestamp`` may be ``None``.
    """

    sep: str
    header: bool
    columns: Mapping[str, int | str | None]
    encoding: str = "utf-8"
    rating_min: float = 1.0
    rating_max: float = 5.0
    #: Ratings must be multiples of this step (1 for whole stars, 0.5 for half stars); ``None`` = any value.
    rating_step: float | None = 1.0
    #: Allow non-numeric user/item ids (custom files); MovieLens ids must be integers.
    string_ids: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: its source, its verification data and its ratings format."""

    name: str
    kind: str  # "movielens" | "custom" | "synthetic"
    fmt: RatingsFormat | None = None
    #: Path of the ratings file inside the archive (MovieLens) or on disk (custom).
    ratings_path: str = ""
    url: str | None = None
    archive_sha256: str | None = None
    archive_md5: str | None = None
    ratings_sha256: str | None = None
    n_ratings: int | None = None
    n_users: int | None = None
    n_items: int | None = None
    notes: str = ""

    @property
    def archive_name(self) -> str:
        return f"{self.name}.zip"

    @property
    def ratings_filename(self) -> str:
        return self.ratings_path.rsplit("/", 1)[-1]

    def expected_counts(self) -> dict[str, int]:
        """The documented counts that are known (possibly empty)."""
        counts = {"n_ratings": self.n_ratings, "n_users": self.n_users, "n_items": self.n_items}
        return {k: v for k, v in counts.items() if v is not None}


_ML_OLD = dict(header=False, columns={"user": 0, "item": 1, "rating": 2, "timestamp": 3})
_ML_CSV = dict(
    sep=",",
    header=True,
    columns={"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"},
)


def _movielens(name: str, ratings_path: str, fmt: RatingsFormat, **kwargs: Any) -> DatasetSpec:
    return DatasetSpec(
        name=name, kind="movielens", fmt=fmt, ratings_path=ratings_path, url=f"{GROUPLENS_URL}/{name}.zip", **kwargs
    )


#: MovieLens datasets by name.
MOVIELENS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        _movielens(
            "ml-100k",
            "ml-100k/u.data",
            RatingsFormat(sep="\t", encoding="latin-1", **_ML_OLD),
            archive_sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            ratings_sha256="06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
            n_ratings=100_000,
            n_users=943,
            n_items=1_682,
        ),
        _movielens(
            "ml-1m",
            "ml-1m/ratings.dat",
            RatingsFormat(sep="::", encoding="latin-1", **_ML_OLD),
            archive_sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            n_ratings=1_000_209,
            n_users=6_040,
            n_items=3_706,
        ),
        _movielens(
            "ml-10m",
            "ml-10M100K/ratings.dat",
            RatingsFormat(sep="::", encoding="latin-1", rating_min=0.5, rating_step=0.5, **_ML_OLD),
            archive_md5="ce571fd55effeba0271552578f2648bd",
            n_ratings=10_000_054,
            notes="only an md5 of the archive is published",
        ),
        _movielens(
            "ml-20m",
            "ml-20m/ratings.csv",
            RatingsFormat(rating_min=0.5, rating_step=0.5, **_ML_CSV),
            archive_sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            n_ratings=20_000_263,
            n_users=138_493,
        ),
        _movielens(
            "ml-25m",
            "ml-25m/ratings.csv",
            RatingsFormat(rating_min=0.5, rating_step=0.5, **_ML_CSV),
            archive_sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            n_ratings=25_000_095,
            n_users=162_541,
        ),
        _movielens(
            "ml-latest-small",
            "ml-latest-small/ratings.csv",
            RatingsFormat(rating_min=0.5, rating_step=0.5, **_ML_CSV),
            notes="updated in place by GroupLens: no stable checksum or counts; only parse checks apply",
        ),
    )
}


def custom_spec(name: str, entry: Mapping[str, Any]) -> DatasetSpec:
    """Build the spec of a custom ratings file from its ``data.custom.<name>`` config entry."""
    if not entry.get("path"):
        raise ValueError(f"data.custom.{name}.path: a ratings file path is required")
    columns = dict(entry.get("columns") or {})
    missing = [c for c in ("user", "item", "rating") if columns.get(c) is None]
    if missing:
        raise ValueError(f"data.custom.{name}.columns: missing {', '.join(missing)}")
    columns.setdefault("timestamp", None)
    header = bool(entry.get("header", True))
    for key, col in columns.items():
        if isinstance(col, str) and not header:
            raise ValueError(f"data.custom.{name}.columns.{key}: column name {col!r} needs header: true")
    low, high = entry.get("rating_scale", [1, 5])
    if not low < high:
        raise ValueError(f"data.custom.{name}.rating_scale: need min < max, got [{low}, {high}]")
    fmt = RatingsFormat(
        sep=entry.get("sep", ","),
        header=header,
        columns=columns,
        encoding=entry.get("encoding", "utf-8"),
        rating_min=float(low),
        rating_max=float(high),
        rating_step=None,
        string_ids=True,
    )
    return DatasetSpec(name=name, kind="custom", fmt=fmt, ratings_path=str(entry["path"]))


def get_spec(name: str, custom: Mapping[str, Mapping[str, Any]] | None = None) -> DatasetSpec:
    """Spec of dataset ``name``: a MovieLens name, ``synthetic-ml`` or a key of ``custom``."""
    custom = custom or {}
    if name in custom:
        if name in MOVIELENS or name == SYNTHETIC:
            raise ValueError(f"data.custom.{name}: the name clashes with a built-in dataset")
        return custom_spec(name, custom[name])
    if name in MOVIELENS:
        return MOVIELENS[name]
    if name == SYNTHETIC:
        return DatasetSpec(name=SYNTHETIC, kind="synthetic")
    known = ", ".join([*MOVIELENS, SYNTHETIC, *custom])
    raise ValueError(f"unknown dataset {name!r}; known: {known} (or define it under data.custom)")
