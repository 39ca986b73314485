"""Staging of the reading-group site (``cirlib.tools.site``); the built site is checked in tests/browser."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from cirlib.tools.notebooks import BROWSER_CHECK_TAG, WIDGET_VIEW_MIME
from cirlib.tools.site import stage

ROOT = Path(__file__).resolve().parents[1]


def _executed(path: Path, *, widget: bool = False, check_cell: bool = False, executed: bool = True) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=1 if executed else None)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")] if executed else []
    if widget:
        cell.outputs.append(nbformat.v4.new_output(
            "display_data", data={WIDGET_VIEW_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                                  "text/plain": "interactive(children=...)"}))
    injected = nbformat.v4.new_code_cell(f'OUTPUT_DIR = "{ROOT / "results" / "runs"}"',
                                         execution_count=1 if executed else None)
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook\n\n$x^2$"), injected, cell]
    if check_cell:
        check = nbformat.v4.new_code_cell("import cirlib", execution_count=2)
        check.metadata["tags"] = [BROWSER_CHECK_TAG]
        nb.cells.append(check)
    nbformat.write(nb, str(path))


def test_stage_lays_out_readme_notebooks_in_order_and_docs(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    for name in ("01_b.ipynb", "00_a.ipynb"):
        _executed(executed / name, widget=True, check_cell=True)
    src = stage(executed, tmp_path / "src", ROOT)

    index = (src / "index.md").read_text()
    assert index.startswith((ROOT / "README.md").read_text().splitlines()[0])
    toc = index[index.index("## On this site"):]
    assert toc.index("notebooks/00_a") < toc.index("notebooks/01_b") < toc.index("docs/architecture")
    staged = sorted(p.name for p in (src / "docs").iterdir() if p.is_file())
    assert staged == sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    teaching = sorted(p.name for p in (ROOT / "docs" / "teaching").glob("*.md"))
    assert teaching and sorted(p.name for p in (src / "docs" / "teaching").iterdir()) == teaching
    assert toc.index("notebooks/01_b") < toc.index("docs/teaching/session_plan") < toc.index("docs/architecture")
    for image in ("figures/07_qualitative.png",):  # the README's image travels with it
        if f"]({image})" in (ROOT / "README.md").read_text():
            assert (src / image).is_file()

    nb = nbformat.read(str(src / "notebooks" / "00_a.ipynb"), as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"], "the browser-check cell must go"
    assert nb.cells[1].source == 'OUTPUT_DIR = "results/runs"', "paths relative to the repository"
    outputs = nb.cells[2].outputs
    assert [o.output_type for o in outputs] == ["stream"], "widget views cannot work without a kernel"


def test_stage_refuses_notebooks_that_were_never_executed(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    _executed(executed / "00_a.ipynb", executed=False)
    with pytest.raises(ValueError, match=r"00_a\.ipynb: not an executed notebook.*make demo"):
        stage(executed, tmp_path / "src", ROOT)


def test_stage_names_the_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        stage(tmp_path / "nowhere", tmp_path / "src", ROOT)
