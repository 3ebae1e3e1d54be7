"""Cross-key rules of the config (bilinrec.experiments.config_checks): one test per rule, each message
naming every key involved; a few also through `snakemake -n`, which must reject them before any job."""

import copy

import pytest
import yaml
from conftest import ROOT, dry_run_with, run_snakemake
from snakemake.utils import validate

from bilinrec.experiments.config_checks import (
    ConfigError,
    check_config,
    check_sections,
    config_problems,
)

#: Every section with a schema file, as the Snakefile finds them.
SECTIONS = sorted(p.name.removesuffix(".schema.yaml") for p in (ROOT / "workflow/schemas").glob("*.schema.yaml")
                  if p.name != "config.schema.yaml")


def _merge(base, override):
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def full_config(override=None, base="config.yaml"):
    """config.yaml with ``override`` laid over it and the schema defaults filled in, as the Snakefile does."""
    config = yaml.safe_load((ROOT / base).read_text())
    if base != "config.yaml":
        config = _merge(yaml.safe_load((ROOT / "config.yaml").read_text()), config)
    _merge(config, copy.deepcopy(override or {}))
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    for section in SECTIONS:
        validate(config.setdefault(section, {}), str(ROOT / f"workflow/schemas/{section}.schema.yaml"))
    return config


@pytest.mark.parametrize("base", ["config.yaml", "config/paper.yaml"])
def test_shipped_configs_break_no_rule(base):
    assert config_problems(full_config(base=base)) == []


CUSTOM = {"path": "ratings.csv", "columns": {"user": "u", "item": "i", "rating": "r"}}

CASES = {
    # name: (override, substrings the message must contain)
    "lrs_rank_vs_dim": ({"lrs": {"problem": {"rank": 120}}}, ["lrs.problem.rank = 120", "lrs.problem.dim = 100"]),
    "lrs_sparsity_vs_dim": ({"lrs": {"problem": {"sparsity": 101}}},
                            ["lrs.problem.sparsity = 101", "lrs.problem.dim = 100"]),
    "lrs_phase_sparsity_vs_dim": ({"lrs": {"phase_m_k": {"sparsity": [1, 200]}}},
                                  ["lrs.phase_m_k.sparsity", "lrs.problem.dim"]),
    "lrs_adversarial_pool": ({"lrs": {"problem": {"adversarial_pool": 500}}},
                             ["lrs.problem.adversarial_pool = 500", "lrs.problem.sparsity", "lrs.problem.dim"]),
    "lrs_lognormal_min_samples": ({"lrs": {"problem": {"sample_distribution": "lognormal", "min_samples": 12}}},
                                  ["lrs.error_vs_m.samples", "lrs.problem.min_samples = 12"]),
    "dp_rank_vs_dim": ({"dp": {"problem": {"rank": 101}}}, ["dp.problem.rank = 101", "dp.problem.dim = 100"]),
    "dp_sparsity_vs_dim": ({"dp": {"problem": {"dim": 4}}}, ["dp.problem.sparsity = 5", "dp.problem.dim = 4"]),
    "dp_samples_vs_unknowns": ({"dp": {"problem": {"samples": 8}}},
                               ["dp.problem.samples = 8", "dp.problem.rank + dp.problem.sparsity", "dp.methods"]),
    "dp_fixed_epsilon": ({"dp": {"fixed_epsilon": 3}}, ["dp.fixed_epsilon = 3", "dp.epsilons", "figure dp_users"]),
    "dp_large_users_twice": ({"dp": {"n_users": [1000, 100000]}},
                             ["dp.large_users.n_users and dp.n_users both hold t = [100000]"]),
    "dp_large_users_method": ({"dp": {"methods": ["dp_amht_lrs", "local"]}},
                              ["dp.large_users.methods [amht_lrs, dp_global, dp_altmin]", "dp.methods"]),
    "dp_large_users_epsilon": ({"dp": {"epsilons": [1, 4, "inf"], "fixed_epsilon": 4}},
                               ["dp.large_users.epsilons [8]", "dp.epsilons"]),
    "top_level_dataset": ({"datasets": ["ml-100k", "ml-7m"]}, ["datasets: unknown dataset 'ml-7m'"]),
    "unlearn_dataset": ({"unlearn": {"datasets": ["synthetic-lowrank", "ml-7m"]}},
                        ["unlearn.datasets: unknown dataset 'ml-7m'", "data.custom"]),
    "personalization_dataset": ({"personalization": {"datasets": ["ml-100k", "ml-10M"]}},
                                ["personalization.datasets: unknown dataset 'ml-10M'"]),
    "unlearn_grid_dataset": ({"unlearn": {"grid": [{"strategy": "uniform", "fractions": [0.1],
                                                    "datasets": ["synthetic-lowrank", "ml100k"]}]}},
                             ["unlearn.grid[0].datasets: unknown dataset 'ml100k'"]),
    "unlearn_dataset_without_grid_entry": ({"unlearn": {"datasets": ["synthetic-lowrank", "ml-100k", "ml-1m"]}},
                                           ["unlearn.datasets has 'ml-1m'", "unlearn.grid"]),
    "unlearn_budget": ({"unlearn": {"unlearning": {"budget": 60, "max_iterations": 50}}},
                       ["unlearn.unlearning.budget = 60", "unlearn.unlearning.max_iterations = 50"]),
    "unlearn_tiny_fraction": ({"unlearn": {"grid": [{"strategy": "uniform", "fractions": [0.00001]}]}},
                              ["unlearn.grid[0].fractions", "1e-05"]),
    "personalization_fractions": ({"personalization": {"test_fraction": 0.6, "validation_fraction": 0.4}},
                                  ["personalization.test_fraction", "personalization.validation_fraction"]),
    "personalization_dp_needs_amht": ({"personalization": {"methods": ["global", "dp_amht_lrs"]}},
                                      ["personalization.methods", "dp_amht_lrs", "amht_lrs"]),
    "personalization_rank_vs_factors": ({"personalization": {"factors": [4], "grid": {"rank": [1, 8]}}},
                                        ["personalization.grid.rank", "personalization.factors = 4"]),
    "personalization_smallest_m": ({"personalization": {"train_sizes": [1, 10], "grid": {"rank": [2]}}},
                                   ["personalization.train_sizes has m = 1", "personalization.grid.rank"]),
    "personalization_duplicate_sizes": ({"personalization": {"train_sizes": [5, 5, "all"]}},
                                        ["personalization.train_sizes", "duplicates"]),
    "personalization_buckets": ({"personalization": {"activity_buckets": [1, 50, 50]}},
                                ["personalization.activity_buckets"]),
    "storage_figure_train_size": ({"storage": {"figure_train_size": 7}},
                                  ["storage.figure_train_size = 7", "personalization.train_sizes"]),
    "storage_variant_sparsity": ({"storage": {"lrs_variants": [{"name": "x", "rank": 2, "sparsity": 1,
                                                                "sparsity_fraction": 0.1}]}},
                                 ["storage.lrs_variants[0]", "sparsity_fraction"]),
    "storage_model_layers": ({"storage": {"models": [{"name": "m", "parameters": 10, "layers": 20}]}},
                             ["storage.models[0].layers = 20", "storage.models[0].parameters = 10"]),
    "custom_name_clash": ({"data": {"custom": {"ml-100k": CUSTOM}}}, ["data.custom.ml-100k", "clashes"]),
    "custom_unlearn_name_clash": ({"data": {"custom": {"synthetic-lowrank": CUSTOM}}},
                                  ["data.custom.synthetic-lowrank", "unlearn.datasets"]),
    "custom_names_need_header": ({"data": {"custom": {"mine": {**CUSTOM, "header": False}}}},
                                 ["data.custom.mine.columns.user", "header"]),
    "custom_rating_scale": ({"data": {"custom": {"mine": {**CUSTOM, "rating_scale": [5, 1]}}}},
                            ["data.custom.mine.rating_scale"]),
    "custom_encoding": ({"data": {"custom": {"mine": {**CUSTOM, "encoding": "utf-9"}}}},
                        ["data.custom.mine.encoding", "utf-9"]),
    "custom_missing_file": ({"datasets": ["mine"], "data": {"custom": {"mine": {**CUSTOM, "path": "nope.csv"}}}},
                            ["data.custom.mine.path", "nope.csv"]),
    "forget_als_dataset": ({"forget": {"als": {"datasets": ["ml-7m"]}}},
                           ["forget.als.datasets: unknown dataset 'ml-7m'", "data.custom"]),
    "forget_rank_vs_dim": ({"forget": {"lrs": {"problem": {"dim": 4}}}},
                           ["forget.lrs.problem.rank + sparsity = 5", "forget.lrs.problem.dim = 4"]),
    "forget_too_many_users": ({"forget": {"n_forgotten": [1, 400]}},
                              ["forget.n_forgotten = 400", "forget.lrs.problem.n_users = 400"]),
    "synthetic_ml_counts": ({"data": {"synthetic_ml": {"min_ratings_per_user": 2000}}},
                            ["data.synthetic_ml.min_ratings_per_user"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_cross_key_rule(name):
    override, expected = CASES[name]
    problems = config_problems(full_config(override))
    assert problems, f"{name}: no problem reported"
    text = "\n".join(problems)
    for part in expected:
        assert part in text, f"{name}: {part!r} not in {text!r}"


def test_every_problem_is_reported_at_once():
    config = full_config({"lrs": {"problem": {"rank": 120}}, "dp": {"fixed_epsilon": 3},
                          "storage": {"figure_train_size": 7}})
    with pytest.raises(ConfigError) as info:
        check_config(config)
    assert len(info.value.problems) == 3
    assert "3 cross-key problems" in str(info.value) and "nothing was run" in str(info.value)


def test_fixed_epsilon_inf_and_float_spellings_match():
    assert config_problems(full_config({"dp": {"fixed_epsilon": "inf"}})) == []
    assert config_problems(full_config({"dp": {"epsilons": [0.5, 4.0], "fixed_epsilon": 4,
                                               "large_users": {"epsilons": [4]}}})) == []


def test_a_dataset_dropped_from_unlearn_is_fine():
    # The ml-100k grid entry then simply has nothing to run: not an error.
    assert config_problems(full_config({"unlearn": {"datasets": ["synthetic-lowrank"]}})) == []


@pytest.mark.parametrize(
    "override,keys",
    [
        ({"lrs": {"problem": {"rank": 120}}}, ["lrs.problem.rank", "lrs.problem.dim"]),
        ({"dp": {"fixed_epsilon": 3}}, ["dp.fixed_epsilon", "dp.epsilons"]),
        ({"unlearn": {"datasets": ["synthetic-lowrank", "ml-7m"]}}, ["unlearn.datasets", "ml-7m"]),
        ({"personalization": {"test_fraction": 0.6, "validation_fraction": 0.4}},
         ["personalization.test_fraction", "personalization.validation_fraction"]),
    ],
)
def test_snakemake_dry_run_rejects_cross_key_mistakes(workflow_copy, override, keys):
    proc, out = dry_run_with(workflow_copy, override)
    assert proc.returncode != 0, out
    for key in keys:
        assert key in out, out
    assert "cross-key problem" in out, out
    assert not (workflow_copy / "results").exists()


def test_fixing_a_plotting_key_reruns_no_dp_job(workflow_copy):
    """dp_run and dp_accounting take only the dp keys they use: dp.fixed_epsilon (figure only) reruns neither."""
    small = workflow_copy / "small.yaml"
    dp = {"n_users": [50], "n_seeds": 1, "methods": ["local", "dp_global"], "epsilons": [1, "inf"],
          "fixed_epsilon": 1, "test_users": 10, "large_users": {"n_users": []}}
    small.write_text(yaml.safe_dump({"dp": dp}))
    target = "results/dp/records.csv"
    proc = run_snakemake(workflow_copy, target, "--cores", "2", "--configfile", str(small))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    small.write_text(yaml.safe_dump({"dp": {**dp, "fixed_epsilon": "inf"}}))
    proc = run_snakemake(workflow_copy, target, "-n", "--cores", "2", "--configfile", str(small))
    assert proc.returncode == 0 and "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    small.write_text(yaml.safe_dump({"dp": {**dp, "test_users": 11}}))  # a key dp_run uses: reruns
    proc = run_snakemake(workflow_copy, target, "-n", "--cores", "2", "--configfile", str(small))
    assert "dp_run" in proc.stdout + proc.stderr


def test_every_job_rule_declares_its_cluster_resources():
    """Every rule that runs a script declares mem_mb and runtime in its own `resources:`; exactly the
    bookkeeping rules (tables, notebooks, fetching, provenance, claims, report: named so in every
    part) are local (`localrule: True`), which the cluster test requires never to become SLURM jobs."""
    import re

    bookkeeping = re.compile(r"_(table|tables|notebook)$|^(datasets_fetch|provenance|claims|report)$")

    jobs, local, without = set(), set(), set()
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n((?:    .*\n|\n)*)", path.read_text(), re.M):
            if "script:" not in body:
                continue
            jobs.add(name)
            resources = re.search(r"^    resources:\n((?:        .*\n)*)", body, re.M)
            if not (resources and "mem_mb=" in resources.group(1) and "runtime=" in resources.group(1)):
                without.add(name)
            if re.search(r"^    localrule: True$", body, re.M):
                local.add(name)
    assert len(jobs) > 30 and not without, without
    expected = {name for name in jobs if bookkeeping.search(name)}
    assert local == expected, {"local, not bookkeeping": local - expected, "bookkeeping, not local": expected - local}


def test_the_workflow_imports_no_heavy_library_of_the_package():
    """Every SLURM job parses the workflow again: what the Snakefile and its rules import from
    bilinrec must not pull in Numba, SciPy or pandas (they cost ~1 s per parse)."""
    import re
    import subprocess
    import sys

    sources = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    # whole statements: snakefmt wraps a long import in parentheses over several lines
    statement = re.compile(r"^[ \t]*(?:from|import) bilinrec\b(?:[^\n(]*\([^)]*\)|[^\n]*)", re.M)
    imports = sorted({" ".join(m.group(0).split()) for path in sources for m in statement.finditer(path.read_text())})
    assert imports, "the workflow imports nothing from bilinrec: the test reads the wrong files"
    probe = "\n".join([*imports, "import sys",
                       "print(sorted(m for m in ('numba', 'scipy', 'pandas', 'sklearn') if m in sys.modules))"])
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", f"parsing the workflow imports {loaded.strip()} via: {imports}"


def test_an_unknown_section_or_a_renamed_key_is_named_with_what_to_write():
    """A typo'd section or an old key name: one message each, naming the fix; the shipped config passes."""
    check_sections(yaml.safe_load((ROOT / "config.yaml").read_text()), SECTIONS)
    with pytest.raises(ConfigError) as info:
        check_sections({"seed": 1, "unlearnn": {}, "personalization": {"seeds": 3}}, SECTIONS)
    assert info.value.problems == [
        f"unlearnn: no such section (sections: {', '.join(SECTIONS)}; top-level keys: seed, datasets)",
        "personalization.seeds was renamed: use personalization.n_seeds",
    ]
