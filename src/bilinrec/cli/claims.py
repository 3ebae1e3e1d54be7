"""``bilinrec claims``: the claims verdict from whichever result tables you have.

The workflow's ``claims`` rule needs every table; this command evaluates the claims whose tables
are given (the rest are ``not measured``), e.g. after running only part of the workflow with a
config overlay::

    bilinrec claims dp_utility=results/tables/dp_utility.csv --config config/paper.yaml

Thresholds are the schema's defaults with ``config.yaml`` of the current directory and then each
``--config`` file laid over them in turn, as ``snakemake --configfile`` does. Each file's ``claims``
section is validated against the workflow's schema (``workflow/schemas/claims.schema.yaml``): an
unknown or renamed key, or a value of the wrong type or range, is an error naming the key and the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from bilinrec.experiments.claims import CLAIMS, CONFIG_KEYS, TABLE_COLUMNS
from bilinrec.experiments.verdict import (
    ClaimInputError,
    evaluate_claims,
    load_table,
    write_claims,
)

DEFAULT_CONFIG = "config.yaml"
SCHEMA = Path("workflow") / "schemas" / "claims.schema.yaml"
#: Keys renamed in the ``claims`` section, with what replaced them.
RENAMED = {"b1_band_z": "b1_level (B1's test level)",
           "b3_objective_z": "unlearn.evaluation.fixed_point_tol (B3 counts the cost to the matched quality target)",
           "b4_mia_tolerance": "b4_level (B4's test level)"}


def claims_schema() -> Path:
    """The workflow's claims schema: next to ``./config.yaml`` (a checkout), else in the checkout
    the package is installed from (``pip install -e``)."""
    candidates = [Path.cwd() / SCHEMA, Path(__file__).resolve().parents[3] / SCHEMA]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"cannot validate the claims thresholds: no {SCHEMA} in {[str(p) for p in candidates]}; "
                            f"run from the repository checkout")


def check_claims_section(section: object, path: str, schema: Path) -> None:
    """Validate one config file's ``claims`` section with the workflow's validator and schema."""
    from jsonschema import ValidationError
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    if not isinstance(section, dict):
        raise ValueError(f"--config: {path}: claims must be a mapping of threshold keys to values, "
                         f"got {type(section).__name__} {section!r} (schema {schema})")
    try:
        validate(section, str(schema), set_default=False)
    except WorkflowError as exc:
        error = exc.__context__  # the jsonschema error snakemake's message is made from
        if not isinstance(error, ValidationError):
            raise
        where = ".".join(["claims", *map(str, error.path)])
        if error.validator == "additionalProperties":
            unknown = sorted(set(error.instance) - set(error.schema["properties"]))
            hints = "".join(f"; {key} was renamed: use {RENAMED[key]}" for key in unknown if key in RENAMED)
            message = (f"unknown key(s) {', '.join(f'{where}.{key}' for key in unknown)}{hints} "
                       f"(known keys: {', '.join(sorted(error.schema['properties']))})")
        else:
            message = f"{where}: {error.message}"
        raise ValueError(f"--config: {path}: {message} (schema {schema})") from None


def read_thresholds(config_paths: list[str]) -> dict:
    """The claims thresholds: the schema's defaults with the ``claims`` section of each config file
    laid over them, later files overriding earlier ones."""
    from snakemake.utils import validate

    schema = claims_schema()
    thresholds: dict = {}
    validate(thresholds, str(schema))  # fills in the defaults
    for path in config_paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--config: {path} does not exist")
        try:
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValueError(f"--config: {path} is not valid YAML: {exc}") from None
        if not isinstance(config, dict):
            raise ValueError(f"--config: {path} is not a YAML mapping of config keys")
        section = config.get("claims") or {}
        check_claims_section(section, path, schema)
        thresholds.update(section)
    missing = sorted(set(CONFIG_KEYS) - set(thresholds))
    if missing:
        raise ValueError(f"{schema} has no default for the claims thresholds {missing} and the config files "
                         f"{config_paths} set none")
    return thresholds


def parse_tables(pairs: list[str]) -> dict[str, str]:
    tables = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not path:
            raise ValueError(f"tables are given as NAME=PATH, got {pair!r}")
        if name not in TABLE_COLUMNS:
            raise ClaimInputError(f"no claim reads a table {name!r}; known tables: {sorted(TABLE_COLUMNS)}")
        tables[name] = path
    return tables


def config_stack(overlays: list[str] | None) -> list[str]:
    """``config.yaml`` of the current directory (if there is one), then the overlays in order."""
    base = [DEFAULT_CONFIG] if Path(DEFAULT_CONFIG).is_file() else []
    return base + list(overlays or [])


def cmd_claims(args: argparse.Namespace) -> int:
    thresholds = read_thresholds(config_stack(args.config))
    tables = {name: load_table(path, TABLE_COLUMNS[name]) for name, path in parse_tables(args.tables).items()}
    verdict = evaluate_claims(CLAIMS, tables, thresholds)
    if args.out:
        write_claims(verdict, f"{args.out}.csv", f"{args.out}.md")
    for row in verdict.itertuples(index=False):
        value = "" if row.value is None or row.value != row.value else f" {row.value:.4g}"
        print(f"{row.id}: {row.verdict}{value} ({row.detail})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``claims`` on the ``bilinrec`` command line."""
    claims = subparsers.add_parser("claims", help="claims verdict from result tables",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    claims.add_argument("tables", nargs="+", metavar="NAME=PATH",
                        help=f"result tables by name: {', '.join(sorted(TABLE_COLUMNS))}")
    claims.add_argument("--config", action="append", default=None, metavar="FILE",
                        help="config overlay whose 'claims' section overrides the thresholds of "
                             "./config.yaml; repeatable, later ones win")
    claims.add_argument("--out", default=None, metavar="PREFIX", help="also write PREFIX.csv and PREFIX.md")
    claims.set_defaults(func=cmd_claims)
