"""``bilinrec data fetch|prepare|info DATASET``: the data steps of the workflow, from the shell."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bilinrec.data.acquire import SOURCE_RECORD
from bilinrec.data.registry import get_spec
from bilinrec.experiments.datasets.steps import fetch_step, prepare_step


def _load_config(path: str | None) -> dict[str, Any]:
    """The workflow config (``config.yaml`` by default, if present); empty when there is none."""
    import yaml

    if path is None:
        if not Path("config.yaml").is_file():
            return {}
        path = "config.yaml"
    try:
        with open(path, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"--config: {path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"--config: {path} is not a YAML mapping")
    return config


def _data_config(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    config = _load_config(args.config)
    data = dict(config.get("data") or {})
    if args.no_download:
        data["allow_download"] = False
    return data, int(config.get("seed", 20230213))


def _fetch(args: argparse.Namespace) -> int:
    data, _ = _data_config(args)
    record = fetch_step(args.dataset, data, args.resources, args.data_dir)
    print(json.dumps(record, indent=2) if record else f"{args.dataset}: generated, nothing to fetch")
    return 0


def _prepare(args: argparse.Namespace) -> int:
    data, seed = _data_config(args)
    if get_spec(args.dataset, data.get("custom")).kind != "synthetic":
        fetch_step(args.dataset, data, args.resources, args.data_dir)
    out = Path(args.out) / args.dataset if args.out else None
    summary = prepare_step(args.dataset, data, seed, args.resources, out)
    print(f"{args.dataset}: {summary['n_ratings']} ratings, {summary['n_users']} users, {summary['n_items']} items")
    return 0


def _info(args: argparse.Namespace) -> int:
    data, _ = _data_config(args)
    spec = get_spec(args.dataset, data.get("custom"))
    info: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "url": spec.url,
        "ratings_path": spec.ratings_path or None,
        "archive_sha256": spec.archive_sha256,
        "archive_md5": spec.archive_md5,
        "ratings_sha256": spec.ratings_sha256,
        "expected_counts": spec.expected_counts(),
        "notes": spec.notes or None,
    }
    if spec.fmt is not None:
        f = spec.fmt
        info["format"] = {"sep": f.sep, "header": f.header, "encoding": f.encoding,
                          "rating_scale": [f.rating_min, f.rating_max], "rating_step": f.rating_step}
    record = Path(args.resources) / spec.name / SOURCE_RECORD
    if record.is_file():
        info["fetched"] = json.loads(record.read_text(encoding="utf-8"))
    summary = Path(args.out or "results/data") / spec.name / "summary.json"
    if summary.is_file():
        info["prepared"] = json.loads(summary.read_text(encoding="utf-8"))
    print(json.dumps({k: v for k, v in info.items() if v is not None}, indent=2))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``data`` command group."""
    parser = subparsers.add_parser("data", help="fetch, prepare and describe datasets")
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    for name, func, help_ in (
        ("fetch", _fetch, "find or download a dataset into resources/<dataset>/ and verify it"),
        ("prepare", _prepare, "fetch if needed, then write <out>/<dataset>/{ratings.npz,summary.json}"),
        ("info", _info, "show a dataset's registry entry, fetch record and summary"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("dataset", metavar="DATASET", help="ml-100k, ml-1m, ..., synthetic-ml, or a data.custom name")
        p.add_argument("--resources", default="resources", help="directory of fetched datasets (default: resources)")
        p.add_argument("--data-dir", default=None,
                       help="directory with local copies (zip or extracted); default: env BILINREC_DATA_DIR, "
                       "else data.local_dir of the config")
        p.add_argument("--out", default=None, help="directory of prepared datasets (default: results/data)")
        p.add_argument("--config", default=None, help="workflow config for the data section and seed "
                       "(default: ./config.yaml if present)")
        p.add_argument("--no-download", action="store_true", help="never download; fail if no local copy")
        p.set_defaults(func=func)
