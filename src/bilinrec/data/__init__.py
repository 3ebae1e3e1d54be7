"""Data layer: dataset registry, safe acquisition, strict parsers, synthetic generator, prepared form.

Typical use by other parts::

    from bilinrec.data import load_prepared
    data = load_prepared("results/data/ml-100k/ratings.npz")
    R = data.to_csr()           # users x items ratings
"""

from bilinrec.data.acquire import fetch, resolve_local_dir
from bilinrec.data.errors import AcquisitionError, DataFormatError, VerificationError
from bilinrec.data.parsers import parse_ratings
from bilinrec.data.prepare import Ratings, load_prepared, prepare, read_summary
from bilinrec.data.registry import (
    MOVIELENS,
    SYNTHETIC,
    DatasetSpec,
    RatingsFormat,
    get_spec,
)
from bilinrec.data.synthetic import GroundTruth, SyntheticConfig, generate

__all__ = [
    "AcquisitionError",
    "DataFormatError",
    "DatasetSpec",
    "GroundTruth",
    "MOVIELENS",
    "Ratings",
    "RatingsFormat",
    "SYNTHETIC",
    "SyntheticConfig",
    "VerificationError",
    "fetch",
    "generate",
    "get_spec",
    "load_prepared",
    "parse_ratings",
    "prepare",
    "read_summary",
    "resolve_local_dir",
]
