"""The claims verdict of both papers: every part's claims, evaluated on the tables they read.

Each workflow part defines its claims in ``experiments/<part>/claims.py`` (``CLAIMS`` and the
columns of the tables they read, ``TABLE_COLUMNS``), found here by looking, not by a list; the
engine is :mod:`bilinrec.experiments.verdict`.
Thresholds and operating points come from the ``claims`` section of config.yaml.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
from typing import Any, Mapping

import pandas as pd

from bilinrec import experiments
from bilinrec.experiments.verdict import (
    Claim,
    ClaimInputError,
    evaluate_claims,
    load_table,
    write_claims,
)


def _claims_modules() -> list:
    """``experiments/<part>/claims.py`` of every part that has one (found, not listed)."""
    parts = [info.name for info in pkgutil.iter_modules(experiments.__path__) if info.ispkg]
    return [importlib.import_module(f"{experiments.__name__}.{part}.claims") for part in sorted(parts)
            if importlib.util.find_spec(f"{experiments.__name__}.{part}.claims") is not None]


def _claim_order(claim: Claim) -> tuple:
    """A1 < A2 < ... < A10 < B1: Paper A, then Paper B, then any other part's claims."""
    letters, number = re.fullmatch(r"([A-Za-z]*)(\d*)", claim.id).groups()
    return letters, int(number or 0), claim.id


_PARTS = _claims_modules()

#: Every claim, in the order of the verdict table (Paper A, then Paper B).
CLAIMS: list[Claim] = sorted((claim for part in _PARTS for claim in part.CLAIMS), key=_claim_order)
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
    unregistered = set(TABLE_COLUMNS) - set(table_paths)
    if unregistered:
        raise ClaimInputError(f"claims read tables {sorted(unregistered)} that no rule file registers "
                              f"(CLAIM_TABLES[name] = path in workflow/rules/<part>.smk)")
    tables = {name: load_table(path, TABLE_COLUMNS[name]) for name, path in table_paths.items()}
    verdict = evaluate_claims(CLAIMS, tables, config)
    write_claims(verdict, csv_path, md_path)
    return verdict
