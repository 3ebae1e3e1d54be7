"""The package's import structure: no import circle, and experiment parts meet only in shared modules.

The import graph is read from the source with ``ast`` (nothing is imported): every ``import`` and
``from ... import`` of a ``bilinrec`` module, at module level or inside a function (a deferred
import that closes a circle is still a circle), except those under ``if TYPE_CHECKING:``, which
never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

SRC = ROOT / "src"
PACKAGE = "bilinrec"
EXPERIMENTS = f"{PACKAGE}.experiments"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST):
    """Every import node of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from a import b`` names module ``a.b`` when that
    is a module, else ``a``)."""
    files = {_module_name(p, root): p for p in (root / package).rglob("*.py")}
    packages = {_module_name(p, root) for p in (root / package).rglob("__init__.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        here = name if name in packages else name.rpartition(".")[0]
        edges = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = here
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                           for alias in node.names]
            edges.update(t for t in targets if t in files and t != name)
        graph[name] = edges
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def _part(module: str) -> str | None:
    """The experiment part (``bilinrec.experiments.<part>`` subpackage) a module belongs to."""
    rest = module.removeprefix(f"{EXPERIMENTS}.")
    if rest == module or "." not in rest:
        return None
    return rest.split(".")[0]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(SRC, PACKAGE)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\n")
    (pkg / "sub" / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import g\n"
                                      "def f():\n    from pkg.c import h\n")
    (pkg / "sub" / "b.py").write_text("from . import a\nimport pkg.c\n")
    (pkg / "c.py").write_text("from .sub import b\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph == {"pkg": set(), "pkg.sub": {"pkg.sub.a"}, "pkg.sub.a": {"pkg.c"},
                     "pkg.sub.b": {"pkg.sub.a", "pkg.c"}, "pkg.c": {"pkg.sub.b"}}
    # the deferred import in a.f closes a -> c -> b -> a; the TYPE_CHECKING import adds nothing
    assert import_circles(graph) == [["pkg.c", "pkg.sub.a", "pkg.sub.b"]]


def test_no_import_circle_in_the_package(graph):
    assert len(graph) > 100  # the whole package was read
    circles = import_circles(graph)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def test_experiment_parts_meet_only_in_shared_modules(graph):
    # a part (a subpackage of bilinrec.experiments) imports no other part; what parts share lives
    # in shared modules (bilinrec.experiments.methods, bilinrec.plotting, bilinrec.data, ...)
    crossings = sorted((module, target) for module, targets in graph.items() for target in targets
                       if _part(module) and _part(target) and _part(target) != _part(module))
    assert not crossings, "parts importing other parts: " + ", ".join(f"{m} -> {t}" for m, t in crossings)


def test_the_library_imports_no_experiment_or_workflow_code(graph):
    reached = sorted((module, target) for module, targets in graph.items() if module.startswith(f"{PACKAGE}.models")
                     for target in targets if target.startswith((EXPERIMENTS, f"{PACKAGE}.cli", f"{PACKAGE}.data")))
    assert not reached, reached
