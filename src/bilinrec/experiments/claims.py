"""The claims verdict of both papers: every part's claims, evaluated on the tables they read.

Each workflow part defines its claims in ``experiments/<part>/claims.py`` (``CLAIMS`` and the
columns of the tables they read, ``TABLE_COLUMNS``); the engine is :mod:`bilinrec.experiments.verdict`.
Thresholds and operating points come from the ``claims`` section of config.yaml.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import pandas as pd

from bilinrec.experiments.dp import claims as dp
from bilinrec.experiments.lrs import claims as lrs
from bilinrec.experiments.personalization import claims as personalization
from bilinrec.experiments.storage import claims as storage
from bilinrec.experiments.unlearn import claims as unlearn
from bilinrec.experiments.verdict import (
    Claim,
    ClaimInputError,
    evaluate_claims,
    load_table,
    write_claims,
)

_PARTS = (lrs, dp, storage, personalization, unlearn)

#: Every claim, in the order of the verdict table (Paper A, then Paper B).
CLAIMS: list[Claim] = [claim for part in _PARTS for claim in part.CLAIMS]
#: Columns each claims input table must have.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {name: cols for part in _PARTS for name, cols in part.TABLE_COLUMNS.items()}
#: The config keys (``claims`` section) that claims read.
CONFIG_KEYS: tuple[str, ...] = tuple(dict.fromkeys(key for claim in CLAIMS for key in claim.config_keys))


def run_claims(table_paths: Mapping[str, str | os.PathLike], config: Mapping[str, Any],
               csv_path: str | os.PathLike, md_path: str | os.PathLike) -> pd.DataFrame:
    """Load the given tables (all must exist and be well-formed), evaluate and write the verdict."""
    unknown = set(table_paths) - set(TABLE_COLUMNS)
    if unknown:
        raise ClaimInputError(f"no claim reads tables {sorted(unknown)}")
    tables = {name: load_table(path, TABLE_COLUMNS[name]) for name, path in table_paths.items()}
    verdict = evaluate_claims(CLAIMS, tables, config)
    write_claims(verdict, csv_path, md_path)
    return verdict
