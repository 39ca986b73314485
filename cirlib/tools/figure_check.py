"""Count the figures an executed notebook shows against the figures its cells draw.

A notebook whose kernel draws with a non-inline backend (``MPLBACKEND=Agg`` inherited from a
Makefile, say) runs without error and shows nothing: ``plt.show()`` is silently a no-op. nbval and
papermill both pass such a notebook. This module turns "figures are missing" into a failure:

* :func:`expected_figures` reads a code cell's source and says how many ``image/png`` outputs it must
  have: one per ``plt.show()`` call outside a function body, and one per call of a function (of this
  or an earlier cell) whose body calls ``plt.show()``.
* :func:`check_notebook` compares that with the image outputs of an executed notebook (papermill's
  copy, ``make demo``'s ``build/demo/``).
* :mod:`cirlib.tools.nbval_figures` does the same inside the nbval run of ``make test``, on the outputs
  nbval collects (nbval never writes an executed notebook).

Widget cells are counted in their static form: with ``INTERACTIVE=False`` the static figure must be
there; with ``INTERACTIVE=True`` the figure lives in the widget's output area, which headless
runners do not record.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = ["FigureReport", "check_folder", "check_notebook", "count_images", "expected_figures"]

#: The output MIME type a drawn matplotlib figure leaves with the inline backend.
IMAGE_MIME = "image/png"


def _python_source(source: str) -> str:
    """The cell's source with IPython syntax (``%matplotlib inline``, ``!cmd``) turned into Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # IPython is always there with Jupyter; without it, drop magic lines
        return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return TransformerManager().transform_cell(source)


def _is_plt_show(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "show"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == "plt")


def _drawing_functions(tree: ast.AST) -> set[str]:
    """Names of the functions defined in ``tree`` whose body calls ``plt.show()``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(_is_plt_show(n) for n in ast.walk(node)):
            names.add(node.name)
    return names


def expected_figures(source: str, drawing_functions: set[str] | None = None) -> int:
    """How many figures a code cell draws when it runs (0: not a figure cell).

    Counted outside function and class bodies: each ``plt.show()`` call, and each call of a function
    that calls ``plt.show()`` (defined in this cell or, through ``drawing_functions``, in an earlier
    one). A drawing function handed to another call (``viz.interact_or_static(show_item, ...)``)
    counts as one figure. A cell that only defines drawing functions draws nothing.

    Args:
        source: the cell's source (IPython magics allowed).
        drawing_functions: names of drawing functions defined by earlier cells; updated in place
            with the ones this cell defines.

    Returns:
        The number of ``image/png`` outputs the cell must produce.
    """
    known = drawing_functions if drawing_functions is not None else set()
    if "plt.show" not in source and not any(name in source for name in known):
        return 0
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return 1 if "plt.show()" in source else 0
    known |= _drawing_functions(tree)
    shows, calls, references = 0, 0, 0

    def visit(node: ast.AST) -> None:
        nonlocal shows, calls, references
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue  # a body runs only when called
            if _is_plt_show(child):
                shows += 1
            elif isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id in known:
                calls += 1
            elif isinstance(child, ast.Name) and child.id in known and isinstance(child.ctx, ast.Load):
                references += 1
            visit(child)

    visit(tree)
    return shows + calls if shows + calls else (1 if references else 0)


def count_images(outputs: Iterable[Any]) -> int:
    """The number of ``image/png`` outputs in a cell's output list (nbformat nodes or dicts)."""
    count = 0
    for output in outputs or ():
        data = output.get("data") if hasattr(output, "get") else None
        if data and IMAGE_MIME in data:
            count += 1
    return count


@dataclass
class FigureReport:
    """Figures one executed notebook should show and does show."""

    notebook: str
    figure_cells: int = 0
    expected: int = 0
    images: int = 0
    missing: list[str] = field(default_factory=list)  # "cell 12: 0 of 1 figure(s)"

    @property
    def ok(self) -> bool:
        return not self.missing

    def line(self) -> str:
        """One line for a report: ``00_x.ipynb: 5 images in 5 figure cells (5 expected)``."""
        text = (f"{self.notebook}: {self.images} image(s) from {self.figure_cells} figure cell(s), "
                f"{self.expected} expected")
        return text if self.ok else text + "; missing: " + "; ".join(self.missing)


def check_cells(name: str, cells: Iterable[tuple[int, str, Iterable[Any]]]) -> FigureReport:
    """Compare each code cell's expected figures with its outputs.

    Args:
        name: the notebook's name, for the report.
        cells: ``(code cell number, source, outputs)`` triples.
    """
    report = FigureReport(name)
    drawing: set[str] = set()
    for number, source, outputs in cells:
        want = expected_figures(source, drawing)
        have = count_images(outputs)
        report.images += have
        if want:
            report.figure_cells += 1
            report.expected += want
            if have < want:
                first = next((line for line in source.splitlines() if line.strip() and not line.startswith("#")), "")
                report.missing.append(f"code cell {number} ({first.strip()[:50]!r}): {have} of {want} figure(s)")
    return report


def check_notebook(path: str | os.PathLike) -> FigureReport:
    """Check an executed notebook file (papermill's output)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    return check_cells(Path(path).name, ((i, c.source, c.get("outputs", [])) for i, c in enumerate(code)))


def check_folder(folder: str | os.PathLike) -> list[FigureReport]:
    """Check every numbered executed notebook (``NN_*.ipynb``) in ``folder``."""
    folder = Path(folder)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"No executed notebooks (NN_name.ipynb) in {folder}; run `make demo` first.")
    return [check_notebook(p) for p in paths]
