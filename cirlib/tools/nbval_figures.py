"""pytest plugin: nbval also fails a notebook whose figure cells showed no figure.

Load it with ``pytest -p cirlib.tools.nbval_figures --nbval-lax ...`` (``make nbval`` does). After the last
cell of every notebook nbval collects, it adds one test item, ``<notebook>::figures``, that compares
the ``image/png`` outputs nbval received from each cell with what the cell's source draws
(:func:`cirlib.tools.figure_check.expected_figures`). A kernel that silently draws nothing
(``MPLBACKEND=Agg`` without ``%matplotlib inline``) then fails CI instead of passing it.
"""

from __future__ import annotations

import pytest

from cirlib.tools.figure_check import check_cells


class FigureCountItem(pytest.Item):
    """Runs after a notebook's cells: every figure cell must have shown its figures."""

    def __init__(self, *, cells, **kwargs):
        super().__init__(**kwargs)
        self.cells = cells

    def runtest(self) -> None:
        ran = [cell for cell in self.cells if getattr(cell, "test_outputs", None) is not None]
        if len(ran) < len(self.cells):
            pytest.skip(f"{len(self.cells) - len(ran)} cell(s) of this notebook did not run; figures not counted")
        report = check_cells(self.parent.name, ((c.cell_num, c.cell.source, c.test_outputs) for c in ran))
        self.user_properties.append(("figures", report.line()))
        if not report.ok:
            raise AssertionError(report.line() + ". Does the kernel draw inline (`%matplotlib inline` in the "
                                 "import cell)?")

    def repr_failure(self, excinfo, style=None):
        return str(excinfo.value)

    def reportinfo(self):
        return self.path, None, f"{self.parent.name}::figures"


def pytest_collection_modifyitems(session, config, items) -> None:
    """Append a :class:`FigureCountItem` after the last cell of each notebook."""
    from nbval.plugin import IPyNbCell

    out, group = [], []

    def flush() -> None:
        if group:
            out.append(FigureCountItem.from_parent(group[0].parent, name="figures", cells=list(group)))
            group.clear()

    for item in items:
        if isinstance(item, IPyNbCell):
            if group and item.parent is not group[0].parent:
                flush()
            out.append(item)
            group.append(item)
        else:
            flush()
            out.append(item)
    flush()
    items[:] = out


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Print the figure count of every notebook, so the CI log shows them."""
    lines = [value for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
             for key, value in getattr(report, "user_properties", []) if key == "figures"]
    if lines:
        terminalreporter.section("figures shown per notebook")
        for line in lines:
            terminalreporter.write_line(line)
