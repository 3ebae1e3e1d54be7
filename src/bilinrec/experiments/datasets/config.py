"""Helpers of workflow/rules/datasets.smk: what each data rule depends on, given the config."""

from __future__ import annotations

from typing import Any, Mapping

from bilinrec.data.registry import SYNTHETIC, get_spec

_DOWNLOAD_KEYS = ("allow_download", "download_retries", "download_timeout")


def checked_datasets(config: Mapping[str, Any]) -> list[str]:
    """``config["datasets"]``, after checking that each name is known (fails before any job runs)."""
    custom = config.get("data", {}).get("custom", {})
    for name in config["datasets"]:
        try:
            get_spec(name, custom)
        except ValueError as exc:
            raise ValueError(f"config datasets: {exc}") from None
    return list(config["datasets"])


def fetch_record(dataset: str) -> list[str]:
    """Input of datasets_prepare: the fetch record, except for the generated dataset."""
    return [] if dataset == SYNTHETIC else [f"resources/{dataset}/source.json"]


def custom_source(config: Mapping[str, Any], dataset: str) -> list[str]:
    """Input of datasets_fetch: a custom dataset's file, so that editing it re-runs the fetch."""
    entry = config["data"].get("custom", {}).get(dataset)
    return [entry["path"]] if entry else []


def data_config_for(config: Mapping[str, Any], step: str, dataset: str) -> dict[str, Any]:
    """The part of ``config["data"]`` that ``step`` ("fetch" or "prepare") of ``dataset`` depends on.

    Rules pass only this as a param, so editing an unrelated key re-runs nothing.
    """
    if step not in ("fetch", "prepare"):
        raise ValueError(f"step must be 'fetch' or 'prepare', got {step!r}")
    section = config["data"]
    custom = section.get("custom", {})
    selected: dict[str, Any] = {"custom": {dataset: custom[dataset]}} if dataset in custom else {}
    if step == "fetch":
        selected.update({k: section[k] for k in _DOWNLOAD_KEYS if k in section})
    elif dataset == SYNTHETIC:
        selected["synthetic_ml"] = section.get("synthetic_ml", {})
    return selected


def seed_for(root_seed: int, dataset: str) -> int | None:
    """The root seed for the generated dataset (its seed is derived from it); ``None`` otherwise."""
    return root_seed if dataset == SYNTHETIC else None
