"""Cross-key rules of the workflow config, checked once before any job runs.

The JSON schemas in ``workflow/schemas/`` check every key on its own (type, range, allowed
values). The rules here relate two or more keys -- a rank larger than the dimension it lives in, a
dataset name that no section defines, a plotting epsilon that the grid does not run -- and would
otherwise surface only when the job that needs them runs, possibly after hours of other jobs.

The Snakefile calls :func:`check_config` right after the schema validation (so defaults are
filled in); every broken rule is reported at once, each message naming the keys involved::

    config: 2 cross-key problems:
      - lrs.problem.rank = 120 exceeds lrs.problem.dim = 100 (a rank-r subspace of R^d needs r <= d)
      - dp.fixed_epsilon = 3 is not one of dp.epsilons = [0.5, 1, 2, 4, 8, 16, 'inf'] ...

Each rule is a function ``rule(config) -> list[str]`` in :data:`RULES`, so tests can call one at a
time.
"""

from __future__ import annotations

import codecs
import math
from typing import Any, Callable, Iterable, Mapping

from bilinrec.data.registry import MOVIELENS, SYNTHETIC, get_spec
from bilinrec.experiments.unlearn import SYNTHETIC as UNLEARN_SYNTHETIC

Config = Mapping[str, Any]


class ConfigError(ValueError):
    """The config breaks one or more cross-key rules; ``problems`` lists them."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        n = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"config: {n} cross-key problem{'s' if n != 1 else ''} (nothing was run; fix config.yaml "
            f"or your --configfile/--config overrides):\n{lines}"
        )


def _section(config: Config, name: str) -> Mapping[str, Any]:
    value = config.get(name)
    return value if isinstance(value, Mapping) else {}


def _fmt(values: Iterable[Any]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


# ------------------------------------------------------------------------------------------
# Dataset names
# ------------------------------------------------------------------------------------------
def _known_datasets(config: Config) -> list[str]:
    custom = _section(_section(config, "data"), "custom")
    return [*MOVIELENS, SYNTHETIC, *custom]


def _unknown_names(config: Config, names: Iterable[str], key: str, extra: tuple[str, ...] = ()) -> list[str]:
    known = _known_datasets(config)
    problems = []
    for name in names:
        if name not in known and name not in extra:
            problems.append(
                f"{key}: unknown dataset {name!r}; known: {', '.join([*extra, *known])} "
                f"(define your own under data.custom)"
            )
    return problems


def check_dataset_names(config: Config) -> list[str]:
    """Every dataset named in any section is a registry name, synthetic-ml or a data.custom entry."""
    problems = _unknown_names(config, config.get("datasets") or [], "datasets")
    unlearn = _section(config, "unlearn")
    problems += _unknown_names(config, unlearn.get("datasets") or [], "unlearn.datasets", (UNLEARN_SYNTHETIC,))
    pers = _section(config, "personalization")
    problems += _unknown_names(config, pers.get("datasets") or [], "personalization.datasets")
    return problems


def check_unlearn_grid_datasets(config: Config) -> list[str]:
    """unlearn.grid[i].datasets names known datasets, and every dataset of unlearn.datasets is run by
    at least one grid entry (else it would silently get no runs)."""
    unlearn = _section(config, "unlearn")
    chosen = list(unlearn.get("datasets") or [])
    grid = [e for e in unlearn.get("grid") or [] if isinstance(e, Mapping)]
    problems = []
    for i, entry in enumerate(grid):
        problems += _unknown_names(config, entry.get("datasets") or [], f"unlearn.grid[{i}].datasets",
                                   (UNLEARN_SYNTHETIC,))
    for name in chosen:
        if grid and not any(e.get("datasets") is None or name in e["datasets"] for e in grid):
            problems.append(
                f"unlearn.datasets has {name!r}, but no unlearn.grid entry runs on it (each lists other "
                f"datasets); add {name!r} to an entry's datasets, or drop an entry's datasets line to run it everywhere"
            )
    return problems


def check_custom_datasets(config: Config) -> list[str]:
    """Each data.custom entry is usable: no clash with a built-in name, consistent columns/header/scale,
    and the file exists when a section uses the dataset."""
    data = _section(config, "data")
    custom = _section(data, "custom")
    used = set(config.get("datasets") or []) | set(_section(config, "unlearn").get("datasets") or [])
    used |= set(_section(config, "personalization").get("datasets") or [])
    problems = []
    for name, entry in custom.items():
        if name == UNLEARN_SYNTHETIC:
            problems.append(f"data.custom.{name}: the name clashes with the generated matrix of unlearn.datasets")
            continue
        try:
            spec = get_spec(name, custom)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        encoding = spec.fmt.encoding
        try:
            codecs.lookup(encoding)
        except LookupError:
            problems.append(f"data.custom.{name}.encoding: unknown text encoding {encoding!r} "
                            f"(e.g. utf-8, latin-1, cp1252, utf-16)")
        if not spec.fmt.sep:
            problems.append(f"data.custom.{name}.sep: the field separator must not be empty")
        if name in used and not _path_exists(spec.ratings_path):
            problems.append(
                f"data.custom.{name}.path: ratings file {spec.ratings_path!r} not found (relative paths are "
                f"relative to the workflow directory)"
            )
    return problems


def _path_exists(path: str) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def check_synthetic_ml(config: Config) -> list[str]:
    """data.synthetic_ml's counts are consistent (ratings per user vs items, sparse part vs ratings)."""
    from bilinrec.data.synthetic import SyntheticConfig

    try:
        SyntheticConfig.from_mapping(_section(_section(config, "data"), "synthetic_ml"))
    except (TypeError, ValueError) as exc:
        return [str(exc)]
    return []


# ------------------------------------------------------------------------------------------
# Ranks, sparsities and dimensions
# ------------------------------------------------------------------------------------------
def _rank_sparsity_vs_dim(prefix: str, problem: Mapping[str, Any]) -> list[str]:
    problems = []
    dim, rank, sparsity = problem.get("dim"), problem.get("rank"), problem.get("sparsity")
    if dim is None:
        return problems
    if rank is not None and rank > dim:
        problems.append(f"{prefix}.rank = {rank} exceeds {prefix}.dim = {dim} (a rank-r subspace of R^d needs r <= d)")
    if sparsity is not None and sparsity > dim:
        problems.append(f"{prefix}.sparsity = {sparsity} exceeds {prefix}.dim = {dim} (k non-zeros of a "
                        f"d-vector need k <= d)")
    return problems


def check_lrs_problem(config: Config) -> list[str]:
    """lrs: rank and every sparsity <= dim; the adversarial pool holds k..d coordinates; lognormal
    sample counts have a mean of at least min_samples."""
    lrs = _section(config, "lrs")
    problem = _section(lrs, "problem")
    problems = _rank_sparsity_vs_dim("lrs.problem", problem)
    dim = problem.get("dim")
    sparsity = problem.get("sparsity", 0)
    for k in _section(lrs, "phase_m_k").get("sparsity") or []:
        if dim is not None and k > dim:
            problems.append(f"lrs.phase_m_k.sparsity has {k}, more than lrs.problem.dim = {dim}")
    adversarial = problem.get("support") == "adversarial" or "adversarial" in (_section(lrs, "noise").get("support") or [])
    if adversarial and dim is not None:
        pool = problem.get("adversarial_pool")
        size = pool if pool is not None else 2 * sparsity
        what = f"lrs.problem.adversarial_pool = {pool}" if pool is not None else \
            f"lrs.problem.adversarial_pool = null (2 x lrs.problem.sparsity = {size})"
        if not sparsity <= size <= dim:
            problems.append(f"{what} must lie in [lrs.problem.sparsity = {sparsity}, lrs.problem.dim = {dim}] "
                            f"for adversarial supports")
    if problem.get("sample_distribution") == "lognormal":
        minimum = problem.get("min_samples", 1)
        for key in ("error_vs_m.samples", "phase_m_t.samples", "phase_m_k.samples", "convergence.samples",
                    "noise.samples"):
            part, field = key.split(".")
            values = _section(lrs, part).get(field)
            for m in values if isinstance(values, list) else ([] if values is None else [values]):
                if m < minimum:
                    problems.append(f"lrs.{key} has {m}, below lrs.problem.min_samples = {minimum} (lognormal "
                                    f"sample counts need a mean of at least the minimum)")
    return problems


def check_dp_problem(config: Config) -> list[str]:
    """dp.problem: rank and sparsity <= dim; AMHT-LRS fits need samples >= rank + sparsity (unknowns per user)."""
    dp = _section(config, "dp")
    problem = _section(dp, "problem")
    problems = _rank_sparsity_vs_dim("dp.problem", problem)
    samples, rank, sparsity = problem.get("samples"), problem.get("rank"), problem.get("sparsity")
    needy = [m for m in dp.get("methods") or [] if m in ("amht_lrs", "dp_amht_lrs")]
    if needy and None not in (samples, rank, sparsity) and samples < rank + sparsity:
        problems.append(f"dp.problem.samples = {samples} is below dp.problem.rank + dp.problem.sparsity = "
                        f"{rank} + {sparsity}: {', '.join(needy)} (dp.methods) cannot identify a user's model")
    return problems


def _epsilon(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_dp_fixed_epsilon(config: Config) -> list[str]:
    """dp.fixed_epsilon (the epsilon of figure dp_users) is one of dp.epsilons."""
    dp = _section(config, "dp")
    if "fixed_epsilon" not in dp or "epsilons" not in dp:
        return []
    fixed = _epsilon(dp["fixed_epsilon"])
    grid = [_epsilon(e) for e in dp["epsilons"]]
    if fixed is None or not any(e is not None and (e == fixed or math.isclose(e, fixed)) for e in grid):
        return [f"dp.fixed_epsilon = {dp['fixed_epsilon']} is not one of dp.epsilons = {_fmt(dp['epsilons'])} "
                f"(figure dp_users plots the grid's results at that epsilon)"]
    return []


def check_dp_large_users(config: Config) -> list[str]:
    """dp.large_users runs a subset of the grid (methods, epsilons) at t not already in dp.n_users."""
    dp = _section(config, "dp")
    large = _section(dp, "large_users")
    if not large.get("n_users"):
        return []
    problems = []
    both = sorted(set(large["n_users"]) & set(dp.get("n_users") or []))
    if both:
        problems.append(f"dp.large_users.n_users and dp.n_users both hold t = {_fmt(both)}: each t runs one grid")
    extra = [m for m in large.get("methods") or [] if m not in (dp.get("methods") or [])]
    if extra:
        problems.append(f"dp.large_users.methods {_fmt(extra)} are not in dp.methods = {_fmt(dp.get('methods'))}")
    grid = [_epsilon(e) for e in dp.get("epsilons") or []]
    missing = [e for e in large.get("epsilons") or []
               if not any(g is not None and _epsilon(e) is not None and math.isclose(g, _epsilon(e)) for g in grid)]
    if missing:
        problems.append(f"dp.large_users.epsilons {_fmt(missing)} are not in dp.epsilons = {_fmt(dp.get('epsilons'))} "
                        "(their noise is calibrated with the grid's)")
    return problems


# ------------------------------------------------------------------------------------------
# Personalization and storage
# ------------------------------------------------------------------------------------------
def check_personalization(config: Config) -> list[str]:
    """Held-out fractions leave training ratings; dp_amht_lrs has amht_lrs; the grid's ranks fit the
    embedding dimension and its smallest setting fits the smallest training size; buckets increase."""
    pers = _section(config, "personalization")
    problems = []
    test, valid = pers.get("test_fraction"), pers.get("validation_fraction")
    if test is not None and valid is not None and test + valid >= 1:
        problems.append(f"personalization.test_fraction + personalization.validation_fraction = {test} + {valid} "
                        f"= {test + valid:g} leaves no training ratings; their sum must be below 1")
    methods = list(pers.get("methods") or [])
    if "dp_amht_lrs" in methods and "amht_lrs" not in methods:
        problems.append("personalization.methods has dp_amht_lrs but not amht_lrs, whose chosen rank and sparsity "
                        "it reuses; add amht_lrs")
    sizes = list(pers.get("train_sizes") or [])
    if len(sizes) != len(set(map(str, sizes))):
        problems.append(f"personalization.train_sizes = {_fmt(sizes)} has duplicates")
    grid = _section(pers, "grid")
    factors = pers.get("factors") or []
    if factors and grid.get("rank"):
        dim = min(factors) + (1 if pers.get("intercept", True) else 0)
        big = [r for r in grid["rank"] if r > dim]
        if big and any(m in methods for m in ("altmin", "fedrep", "amht_lrs", "dp_amht_lrs")):
            problems.append(f"personalization.grid.rank has {_fmt(big)}, more than the feature dimension {dim} "
                            f"(min personalization.factors = {min(factors)}"
                            f"{' + 1 for personalization.intercept' if pers.get('intercept', True) else ''})")
    numeric = [m for m in sizes if isinstance(m, int) and not isinstance(m, bool)]
    if numeric and grid:
        m = min(numeric)
        ranks, sparsities = grid.get("rank") or [0], grid.get("sparsity") or [0]
        needs = {"altmin": min(ranks), "fedrep": min(ranks), "sparse_only": min(sparsities),
                 "amht_lrs": min(ranks) + min(sparsities)}
        for method, need in needs.items():
            if method in methods and need > m:
                keys = {"altmin": "grid.rank", "fedrep": "grid.rank", "sparse_only": "grid.sparsity",
                        "amht_lrs": "grid.rank + grid.sparsity"}[method]
                problems.append(f"personalization.train_sizes has m = {m}, but {method}'s smallest setting needs "
                                f"personalization.{keys} = {need} <= m unknowns per user; lower the grid or drop m")
    buckets = list(pers.get("activity_buckets") or [])
    if any(b >= a for b, a in zip(buckets, buckets[1:])):
        problems.append(f"personalization.activity_buckets = {_fmt(buckets)} must be strictly increasing")
    return problems


def check_storage(config: Config) -> list[str]:
    """storage.figure_train_size is one of personalization.train_sizes; each LRS variant gives exactly
    one of sparsity and sparsity_fraction; each model's layers fit its parameters."""
    storage = _section(config, "storage")
    pers = _section(config, "personalization")
    problems = []
    size = storage.get("figure_train_size")
    sizes = pers.get("train_sizes")
    if size is not None and sizes is not None and str(size) not in {str(s) for s in sizes}:
        problems.append(f"storage.figure_train_size = {size} is not one of personalization.train_sizes = "
                        f"{_fmt(sizes)} (the accuracy-vs-bytes figure shows that training size)")
    for i, variant in enumerate(storage.get("lrs_variants") or []):
        given = [k for k in ("sparsity", "sparsity_fraction") if variant.get(k) is not None]
        if len(given) != 1:
            problems.append(f"storage.lrs_variants[{i}] ({variant.get('name')!r}): give exactly one of sparsity "
                            f"and sparsity_fraction (got {', '.join(given) or 'neither'})")
    for i, model in enumerate(storage.get("models") or []):
        params = model.get("parameters")
        if params is None:
            continue
        layers = model.get("layers", 1)
        if layers > params:
            problems.append(f"storage.models[{i}].layers = {layers} exceeds storage.models[{i}].parameters = {params}")
        last = model.get("last_layer_parameters")
        if last is not None and last > params:
            problems.append(f"storage.models[{i}].last_layer_parameters = {last} exceeds "
                            f"storage.models[{i}].parameters = {params}")
    return problems


# ------------------------------------------------------------------------------------------
# Unlearning
# ------------------------------------------------------------------------------------------
def check_unlearn(config: Config) -> list[str]:
    """The fixed budget is a snapshot of the converging run (budget <= max_iterations); every deletion
    fraction is written as 0.xxx (the run's file name; 1e-05 would not match)."""
    unlearn = _section(config, "unlearn")
    problems = []
    unlearning = _section(unlearn, "unlearning")
    budget, most = unlearning.get("budget"), unlearning.get("max_iterations")
    if budget is not None and most is not None and budget > most:
        problems.append(f"unlearn.unlearning.budget = {budget} exceeds unlearn.unlearning.max_iterations = {most} "
                        f"(the budget is a snapshot of the same run)")
    for i, entry in enumerate(unlearn.get("grid") or []):
        for f in entry.get("fractions") or []:
            if not str(f).startswith("0.") or "e" in str(f).lower():
                problems.append(f"unlearn.grid[{i}].fractions: {f} must be a decimal in (0, 1) written like 0.001 "
                                f"(values below 0.0001 print as {f!s} and cannot name a run)")
    return problems


def check_forget(config: Config) -> list[str]:
    """forget.als.datasets are known datasets (the forget part trains them as the unlearn part does);
    the synthetic problem has rank + sparsity within its dimension; every forget.n_forgotten
    leaves at least one user of the synthetic problem."""
    forget = _section(config, "forget")
    problems = []
    known = [*_known_datasets(config), UNLEARN_SYNTHETIC]
    for name in _section(forget, "als").get("datasets") or []:
        if name not in known:
            problems.append(f"forget.als.datasets: unknown dataset {name!r} (known: {_fmt(known)}; "
                            "add your own under data.custom)")
    problem = _section(_section(forget, "lrs"), "problem")
    dim, rank, sparsity = problem.get("dim"), problem.get("rank"), problem.get("sparsity")
    if all(isinstance(v, int) for v in (dim, rank, sparsity)) and rank + sparsity > dim:
        problems.append(f"forget.lrs.problem.rank + sparsity = {rank + sparsity} exceeds forget.lrs.problem.dim = {dim}")
    n_users = problem.get("n_users")
    counts = [n for n in forget.get("n_forgotten") or [] if isinstance(n, int)]
    if isinstance(n_users, int) and counts and max(counts) >= n_users:
        problems.append(f"forget.n_forgotten = {max(counts)} must be below forget.lrs.problem.n_users = {n_users} "
                        "(someone must remain to re-fit on)")
    return problems


#: Every cross-key rule, in the order they are reported.
RULES: tuple[Callable[[Config], list[str]], ...] = (
    check_dataset_names,
    check_custom_datasets,
    check_unlearn_grid_datasets,
    check_synthetic_ml,
    check_lrs_problem,
    check_dp_problem,
    check_dp_fixed_epsilon,
    check_dp_large_users,
    check_personalization,
    check_storage,
    check_unlearn,
    check_forget,
)


#: Keys renamed since an earlier version: (section, old key) -> new key. A config still using an
#: old name gets one message naming the new one, before the schema would reject it as unknown.
RENAMED_KEYS: dict[tuple[str, str], str] = {("personalization", "seeds"): "n_seeds"}
#: The top-level keys that are not sections (workflow/schemas/config.schema.yaml).
TOP_LEVEL_KEYS = ("seed", "datasets")


def check_sections(config: Config, sections: Iterable[str]) -> None:
    """Raise :class:`ConfigError` for every top-level key of ``config`` that is neither a top-level
    key nor one of ``sections`` (those with a schema file), and every renamed key still used, each
    naming what to write instead."""
    sections = sorted(sections)
    problems = [f"{key}: no such section (sections: {', '.join(sections)}; top-level keys: "
                f"{', '.join(TOP_LEVEL_KEYS)})" for key in config if key not in sections and key not in TOP_LEVEL_KEYS]
    problems += [f"{section}.{old} was renamed: use {section}.{new}" for (section, old), new in RENAMED_KEYS.items()
                 if isinstance(config.get(section), Mapping) and old in config[section]]
    if problems:
        raise ConfigError(problems)


def config_problems(config: Config) -> list[str]:
    """Every broken cross-key rule of ``config`` (schema defaults filled in), as messages."""
    problems: list[str] = []
    for rule in RULES:
        problems.extend(rule(config))
    return problems


def check_config(config: Config) -> None:
    """Raise :class:`ConfigError` listing every broken cross-key rule of ``config``."""
    problems = config_problems(config)
    if problems:
        raise ConfigError(problems)
