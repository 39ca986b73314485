"""Figures: counting them in executed notebooks (papermill copies and nbval runs), the named kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from cirlib.tools import figure_check, notebooks as nbtools
from cirlib.paths import NOTEBOOKS_DIR

PNG = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}


@pytest.mark.parametrize("source, expected", [
    ("x = 1", 0),
    ("%matplotlib inline\nimport matplotlib.pyplot as plt", 0),
    ("fig, ax = plt.subplots()\nplt.show()", 1),
    ("if SYNTH:\n    plt.show()\nelse:\n    print('skip')", 1),
    ("plt.plot([1])\nplt.show()\nplt.plot([2])\nplt.show()", 2),
    ("def draw(i=0):\n    plt.plot([i])\n    plt.show()\n\n\ndraw(0)", 1),
    ("# a comment that mentions plt.show()\nx = 1", 0),
    ("def helper(models):\n    plt.plot([1])\n    plt.show()", 0),  # defines, draws nothing yet
    ("viz.interact_or_static(draw, INTERACTIVE, static={})\ndef draw():\n    plt.show()", 1),
])
def test_expected_figures(source, expected):
    assert figure_check.expected_figures(source) == expected


def test_expected_figures_follows_drawing_functions_across_cells():
    known: set[str] = set()
    assert figure_check.expected_figures("def show_methods(m):\n    plt.show()", known) == 0
    assert known == {"show_methods"}
    assert figure_check.expected_figures("show_methods(a)\nshow_methods(b)", known) == 2
    assert figure_check.expected_figures("print(1)", known) == 0


def _executed(cells):
    nb = new_notebook(cells=[new_code_cell(src, outputs=outs) for src, outs in cells])
    return nb


def test_check_notebook_reports_a_figure_cell_without_image(tmp_path):
    good = ("plt.plot([1])\nplt.show()", [new_output("display_data", data=PNG)])
    silent = ("fig = plt.figure()\nplt.show()", [])
    path = tmp_path / "01_x.ipynb"
    nbformat.write(_executed([good, silent, ("print(1)", [new_output("stream", name="stdout", text="1\n")])]),
                   str(path))
    report = figure_check.check_notebook(path)
    assert (report.figure_cells, report.expected, report.images) == (2, 2, 1)
    assert not report.ok and "code cell 1" in report.missing[0]
    nbformat.write(_executed([good]), str(path))
    assert figure_check.check_notebook(path).ok


def test_check_figures_command_fails_on_missing_images(tmp_path, capsys):
    nbformat.write(_executed([("plt.plot([1])\nplt.show()", [])]), str(tmp_path / "00_x.ipynb"))
    assert nbtools.main(["check-figures", str(tmp_path)]) == 1
    assert "0 image(s) from 1 figure cell(s)" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="make demo"):
        figure_check.check_folder(tmp_path / "empty")
    assert nbtools.main(["check-figures", str(tmp_path / "empty")]) == 2  # one line, no traceback
    assert "No executed notebooks" in capsys.readouterr().err


NB_FIGURE = "import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()"


def _nbval(tmp_path, first_cell: str) -> subprocess.CompletedProcess:
    """nbval (with the figures plugin) on a two-cell notebook, the kernel started with MPLBACKEND=Agg."""
    nb = new_notebook(cells=[new_code_cell(first_cell), new_code_cell(NB_FIGURE)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(tmp_path / "00_toy.ipynb"))
    env = dict(os.environ, MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p",
                           "cirlib.tools.nbval_figures", "-p", "no:cacheprovider", "-q", str(tmp_path / "00_toy.ipynb")],
                          capture_output=True, text=True, env=env, timeout=240, cwd=tmp_path)


def test_nbval_plugin_fails_a_notebook_that_draws_nothing_and_passes_inline(tmp_path):
    """The failure the plugin exists for: MPLBACKEND=Agg and no %matplotlib inline shows no figure."""
    pytest.importorskip("nbval")
    silent = _nbval(tmp_path, "x = 1")
    assert silent.returncode == 1, silent.stdout
    assert "00_toy.ipynb: 0 image(s) from 1 figure cell(s), 1 expected" in silent.stdout
    inline = _nbval(tmp_path, "%matplotlib inline")
    assert inline.returncode == 0, inline.stdout
    assert "00_toy.ipynb: 1 image(s) from 1 figure cell(s), 1 expected" in inline.stdout
    assert "3 passed" in inline.stdout  # two cells and the figures item


@pytest.mark.parametrize("path", nbtools.list_notebooks(NOTEBOOKS_DIR), ids=lambda p: p.name)
def test_every_notebook_draws_inline_and_has_figure_cells(path):
    nb = nbformat.read(str(path), 4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # cirlib.notebook.setup runs %matplotlib inline (tests/test_notebook_style.py checks every notebook calls it)
    assert "setup(globals()" in code[1].source, f"{path.name}: the cell after the parameters must call setup(globals())"
    assert sum(figure_check.expected_figures(c.source) for c in code) >= 2, path.name


def test_kernel_is_registered_for_this_interpreter(tmp_path):
    pytest.importorskip("ipykernel")
    folder = nbtools.install_kernel(prefix=tmp_path)
    spec = json.loads((folder / "kernel.json").read_text())
    assert folder.name == nbtools.PROJECT_KERNEL_NAME == "cirlib"
    assert spec["display_name"] == "Python (cirlib)"
    assert spec["argv"][0] == sys.executable  # the project's environment, whichever JupyterLab starts it
    assert (tmp_path / "share" / "jupyter" / "kernels" / "cirlib" / "kernel.json").exists()


@pytest.mark.parametrize("path", nbtools.list_notebooks(NOTEBOOKS_DIR), ids=lambda p: p.name)
def test_notebooks_default_to_the_runs_make_demo_trains(path):
    """`make lab` after `make demo` trains nothing: one home for the runs, results/runs."""
    import ast
    import re

    from cirlib.paths import REPO_ROOT, RUNS_DIR

    line = nbtools.declared_parameters(path)["OUTPUT_DIR"]
    default = ast.literal_eval(line.split("=", 1)[1].split("#", 1)[0].strip())
    assert (path.parent / default).resolve() == RUNS_DIR.resolve(), line
    makefile = (REPO_ROOT / "Makefile").read_text()
    runs = re.search(r"cirlib\.tools\.notebooks demo .*--runs (\S+)", makefile).group(1)
    assert (REPO_ROOT / runs).resolve() == RUNS_DIR.resolve()
