"""Execute a thin papermill notebook and export it to HTML (used by workflow rules)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from bilinrec.io import atomic_path, write_text


def execute_notebook(
    template: str | os.PathLike,
    out_ipynb: str | os.PathLike,
    out_html: str | os.PathLike,
    parameters: Mapping[str, Any],
    cwd: str | os.PathLike | None = None,
    kernel_name: str = "python3",
) -> None:
    """Run ``template`` with ``parameters`` into ``out_ipynb``, then write ``out_html``.

    On failure nothing is left at either output path.
    """
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    out_ipynb, out_html = Path(out_ipynb), Path(out_html)
    with atomic_path(out_ipynb) as tmp_nb:
        pm.execute_notebook(
            str(template),
            str(tmp_nb),
            parameters=dict(parameters),
            cwd=str(cwd) if cwd else None,
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=True,
            # the kernel may take minutes to start on a loaded machine (papermill's default is 60 s)
            start_timeout=600,
        )
        nb = nbformat.read(str(tmp_nb), as_version=4)
        body, _ = HTMLExporter().from_notebook_node(nb)
        write_text(out_html, body)
    if not out_ipynb.exists() and out_html.exists():  # pragma: no cover - defensive
        out_html.unlink()
