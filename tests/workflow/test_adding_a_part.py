"""Adding a part takes one folder in src/bilinrec/experiments/, one rule file (with its thin scripts),
one schema and one notebook -- plus, for a part that decides a claim, its thresholds in the claims
section -- and nothing else: the Snakefile finds the rule file and the schema, the verdict finds the
claims module, the claims rule reads the tables the rule file registers (docs/development.md).

The test adds a toy part ``toy`` to copies of the workflow and the package (``PYTHONPATH`` puts the
copy first) and checks each of those derivations through Snakemake and the command line."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, copy_workflow, run_snakemake
from test_workflow_smoke import smoke_config

pytestmark = pytest.mark.workflow

STEPS = '''
"""The toy part: ``n`` values drawn from a seed, all at least 1."""

import numpy as np
import pandas as pd


def values_step(n: int, seed: int, out: str) -> None:
    pd.DataFrame({"value": 1.0 + np.random.default_rng(seed).random(n)}).to_csv(out, index=False)
'''

CLAIMS = '''
"""The toy part's claim T1, with a near miss that must fail it and a planted case that must pass it."""

from bilinrec.experiments.verdict import Claim, Control, decide, planted

TABLE_COLUMNS = {"toy_values": ("value",)}


def claim_t1(tables, min_value):
    values = tables["toy_values"]["value"]
    return decide(bool(values.min() >= min_value), float(values.min()), None, f"smallest of {len(values)} values")


def _shifted(by):
    return lambda tables: {**tables, "toy_values": tables["toy_values"].assign(value=tables["toy_values"]["value"] + by)}


CLAIMS = [Claim(id="T1", claim="Every value is at least the threshold", source="toy", measure="smallest value",
                threshold="t1_min_value", tables=("toy_values",), evaluate=claim_t1,
                controls=(Control("values shifted down by 1", _shifted(-1.0)), planted("shifted up by 1", _shifted(1.0))))]
'''

RULES = '''
# Rules of part 'toy' (the test of adding a part).

TOY = config["toy"]


rule toy_values:
    output:
        table_output(f"{RESULTS}/tables/toy_values.csv", "toy_values", "9. Toy"),
    log:
        f"{LOGS}/toy/values.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        cfg=config_keys("toy", "n_values"),
        seed=derive_seed(ROOT_SEED, "toy"),
    script:
        "../scripts/toy_values.py"


rule toy_notebook:
    input:
        notebook="notebooks/toy.ipynb",
        values=rules.toy_values.output[0],
    output:
        ipynb=f"{RESULTS}/notebooks/toy.ipynb",
        html=f"{RESULTS}/notebooks/toy.html",
    log:
        f"{LOGS}/toy/notebook.log",
    localrule: True
    conda:
        CONDA_ENV
    resources:
        mem_mb=doubling(1000),
        runtime=doubling(30),
    params:
        parameters=lambda wildcards, input: {"values_csv": absolute(input.values)},
    script:
        "../scripts/execute_notebook.py"


TOY_TARGETS = rules.toy_values.output + [rules.toy_notebook.output.html]
ALL_TARGETS.extend(TOY_TARGETS)
CLAIM_TABLES["toy_values"] = rules.toy_values.output[0]


rule toy:
    input:
        TOY_TARGETS,
'''

SCRIPT = '''
from bilinrec.experiments.jobs import job
from bilinrec.experiments.toy.steps import values_step

with job(snakemake):
    values_step(snakemake.params.cfg["n_values"], snakemake.params.seed, snakemake.output[0])
'''

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "description": "Section 'toy' of config.yaml: the test's toy part.",
    "type": "object",
    "additionalProperties": False,
    "properties": {"n_values": {"description": "How many values.", "type": "integer", "minimum": 1, "default": 7}},
}


def _notebook():
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "language": "python",
                                                                             "display_name": "Python 3"}},
            "cells": [{**cell, "metadata": {"tags": ["parameters"]}, "source": 'values_csv = "toy_values.csv"'},
                      {**cell, "source": "import pandas as pd\nprint(len(pd.read_csv(values_csv)), 'values')"}]}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A workflow copy and a package copy with the toy part added: (workflow dir, environment)."""
    base = tmp_path_factory.mktemp("toy")
    wf = copy_workflow(base / "wf")
    src = base / "src"
    shutil.copytree(ROOT / "src" / "bilinrec", src / "bilinrec", ignore=shutil.ignore_patterns("__pycache__"))
    part = src / "bilinrec" / "experiments" / "toy"
    part.mkdir()
    (part / "__init__.py").write_text('"""The toy part."""\n')
    (part / "steps.py").write_text(STEPS.lstrip())
    (part / "claims.py").write_text(CLAIMS.lstrip())
    (wf / "workflow/rules/toy.smk").write_text(RULES.lstrip())
    (wf / "workflow/scripts/toy_values.py").write_text(SCRIPT.lstrip())
    (wf / "workflow/schemas/toy.schema.yaml").write_text(yaml.safe_dump(SCHEMA, sort_keys=False))
    (wf / "workflow/report/toy_values.rst").write_text("The toy values.\n")
    (wf / "notebooks/toy.ipynb").write_text(json.dumps(_notebook()))
    # the one edit outside the part: its claim's threshold joins the claims section
    claims_schema = wf / "workflow/schemas/claims.schema.yaml"
    schema = yaml.safe_load(claims_schema.read_text())
    schema["properties"]["t1_min_value"] = {"description": "T1: smallest value allowed.", "type": "number",
                                            "default": 1.0}
    claims_schema.write_text(yaml.safe_dump(schema, sort_keys=False))
    (wf / "smoke.yaml").write_text(yaml.safe_dump(smoke_config(base)))
    env = {"BILINREC_DATA_DIR": "", "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    return wf, env


def test_the_workflow_finds_the_part_its_schema_defaults_and_its_claim_table(toy):
    wf, env = toy
    proc = run_snakemake(wf, "-n", "--forceall", "--cores", "1", "--configfile", "smoke.yaml", "--quiet", "rules",
                         env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out[out.index("Job stats:"):], re.M))
    assert jobs["toy_values"] == "1" and jobs["toy_notebook"] == "1", jobs  # in the default target
    # the claims rule reads the table the rule file registered
    proc = run_snakemake(wf, "-n", "--forceall", "claims", "--cores", "1", "--configfile", "smoke.yaml",
                         "--quiet", "rules", env=env)
    assert proc.returncode == 0 and re.search(r"^toy_values\s+1$", proc.stdout + proc.stderr, re.M), proc.stdout[-2000:]
    # the schema validates the section: a bad value is rejected before any job
    proc = run_snakemake(wf, "-n", "toy", "--cores", "1", "--configfile", "smoke.yaml", "--config",
                         "toy={'n_values': 0}", env=env)
    assert proc.returncode != 0 and "n_values" in proc.stdout + proc.stderr


def test_the_part_runs_and_its_claim_is_decided_with_its_controls(toy):
    wf, env = toy
    proc = run_snakemake(wf, "toy", "--cores", "1", "--configfile", "smoke.yaml", env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    values = (wf / "results/tables/toy_values.csv").read_text().split()
    assert values[0] == "value" and len(values) == 1 + 7  # the schema's default n_values
    assert "7 values" in (wf / "results/notebooks/toy.html").read_text()
    cli = subprocess.run([sys.executable, "-c", "import sys; from bilinrec.cli import main; sys.exit(main())", "claims",
                          "toy_values=results/tables/toy_values.csv"],
                         capture_output=True, text=True, cwd=wf, env={**os.environ, **env}, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    t1 = next(line for line in cli.stdout.splitlines() if line.startswith("T1:"))
    assert t1.startswith("T1: holds"), t1
    assert re.search(r"^A1: not measured", cli.stdout, re.M)  # the papers' claims are still there
