"""Every notebook's imports resolve and its parameters cell is tagged, without running the workflow."""

import json

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_imports_resolve_and_parameters_are_tagged(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells), f"{path.name}: no parameters cell"
    imports = [line for c in cells for line in "".join(c["source"]).splitlines()
               if line.startswith(("import ", "from ")) and "IPython" not in line]
    assert imports, f"{path.name} imports nothing"
    exec("\n".join(imports), {})  # noqa: S102 - the notebook's own import lines
