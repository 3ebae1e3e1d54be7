"""The documentation's links resolve: every relative link in the README, the docs and the changelog
points at a file of the repository (and, with ``#anchor``, at one of its headings), every
``docs/<name>.md`` the code, notebooks or workflow name exists, and docs/README.md maps every file of docs/."""

import json
import re
from pathlib import Path

import pytest
from conftest import ROOT

MARKDOWN = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "config" / "README.md",
            *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
DOC_NAME = re.compile(r"docs/[A-Za-z0-9_.-]+\.md")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: dict[str, int] = {}
    result = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            base = slug(line.lstrip("#"))
            count = found.get(base, 0)
            found[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_slug_matches_github_for_code_and_punctuation():
    assert slug(" Forgetting one user at ML-20M scale: `python benchmarks/bench_forget_als.py`") == \
        "forgetting-one-user-at-ml-20m-scale-python-benchmarksbench_forget_alspy"


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc):
    broken = []
    for target in links(doc):
        file_part, _, anchor = target.partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        if not path.exists():
            broken.append(f"{target}: no file {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no heading with anchor #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_docs_named_in_code_notebooks_and_workflow_exist():
    sources = [p for folder in ("src", "tests", "workflow", "benchmarks", "notebooks", "config", ".ci")
               for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in
               {".py", ".smk", ".yaml", ".yml", ".ipynb", ".md", ""}
               and not any(part.endswith(".egg-info") or part == "__pycache__" for part in p.parts)]
    sources += [ROOT / "Snakefile", ROOT / "pyproject.toml"]
    missing = []
    for path in sources:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            text = "\n".join("".join(cell.get("source", "")) for cell in json.loads(text).get("cells", []))
        missing += [f"{path.relative_to(ROOT)}: {name}" for name in set(DOC_NAME.findall(text))
                    if not (ROOT / name).exists()]
    assert not missing, "named docs that do not exist: " + "; ".join(sorted(missing))


def test_docs_map_lists_every_file_of_docs():
    mapped = set(links(ROOT / "docs" / "README.md"))
    files = {p.name for p in (ROOT / "docs").iterdir() if p.is_file()} - {"README.md"}
    assert files - mapped == set(), f"docs/README.md does not map {sorted(files - mapped)}"


def test_readme_keeps_one_verdict_block_and_links_the_map():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.count("<!-- verdict:start -->") == 1 and text.count("<!-- verdict:end -->") == 1
    assert "(docs/README.md)" in text


def test_readme_test_command_is_the_one_ci_runs():
    """The README says CI runs exactly its test command: .ci/run must run that line."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line.strip() for line in readme.splitlines()
                   if line.strip().startswith(".venv/bin/python -m pytest"))
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert command in ci_lines, f"README's test command {command!r} is not a line of .ci/run"
