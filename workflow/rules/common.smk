# Helpers shared by every rule file.

import os

from snakemake.io import report as report_flag

from bilinrec.seeds import derive_seed

ROOT_SEED = int(config["seed"])
RESULTS = "results"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
# Every rule runs in the project's conda environment under `--software-deployment-method conda`
# (the path is relative to the rule files in workflow/rules/).
CONDA_ENV = "../../environment.yml"

# Every part appends the final outputs of its named target here; `rule all` asks for them.
ALL_TARGETS = [f"{RESULTS}/provenance.json"]


def seeds_for(part, n):
    """The ``n`` per-run seeds of one part of the workflow, derived from the root seed."""
    return [derive_seed(ROOT_SEED, part, i) for i in range(int(n))]


wildcard_constraints:
    dataset=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
    seed=r"\d+",


def absolute(path):
    """Notebook parameters are absolute paths: papermill runs the notebook in its own directory."""
    return os.path.abspath(path)


def figure_stem(output):
    """The absolute ``results/figures/<name>`` of a figure's PDF output."""
    return absolute(os.path.splitext(output[0])[0])


def figure_outputs(name, category):
    """``results/figures/<name>.{pdf,png}``; the PNG is shown in the HTML report with its caption."""
    stem = f"{RESULTS}/figures/{name}"
    return [
        f"{stem}.pdf",
        report_flag(f"{stem}.png", caption=f"../report/{name}.rst", category=category),
    ]


def table_outputs(name, category, exts=(".csv", ".md", ".tex")):
    """``results/tables/<name>`` in each format; the CSV is shown in the HTML report with its caption."""
    stem = f"{RESULTS}/tables/{name}"
    return [table_output(f"{stem}{exts[0]}", name, category)] + [f"{stem}{ext}" for ext in exts[1:]]


def table_output(path, caption, category, subcategory=None):
    """A result table (CSV) flagged for the HTML report with its caption."""
    return report_flag(path, caption=f"../report/{caption}.rst", category=category, subcategory=subcategory)
