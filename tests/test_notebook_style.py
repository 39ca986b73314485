"""The notebooks read like a textbook: short cells, one setup line, findings in prose checked by claim().

These are the conventions every notebook in ``notebooks/`` follows (see README, "Notebook conventions"):

* no code cell over 15 lines; the library holds the code, the notebook the explanation;
* right after the parameters cell, one setup cell: ``from cirlib.notebook import *`` and ``setup(globals(), ...)``;
* parameters cell lines short enough to read on the site (no comment running off the page);
* no verdict printed from an ``if``: findings are sentences in markdown, and a ``claim(...)`` cell right
  after the sentence checks the number (in a full run a failed claim stops the notebook);
* exercises that make a student think: at least one asks for a prediction before running a changed
  setting, one asks to explain a finding; solutions collapsed in JupyterLab.
"""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from cirlib import notebook as lesson
from cirlib.paths import REPO_ROOT
from cirlib.tools import notebooks as nbtools

NOTEBOOKS = nbtools.list_notebooks(REPO_ROOT / "notebooks")
MAX_CODE_LINES = 15
MAX_PARAMETER_LINE = 88
#: Phrases that send the reader to printed numbers instead of stating the finding.
VAGUE = ("numbers above say", "numbers say whether", "conditional on the numbers", "printed above")


def _cells(path):
    return nbformat.read(str(path), 4).cells


def _python(source: str) -> str:
    """IPython lines (``%magic``, ``!cmd``) blanked, so ``ast`` can parse the cell."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _prints_inside_if(source: str) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(_python(source))):
        if isinstance(node, ast.If):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and getattr(inner.func, "id", None) == "print":
                    lines.append(inner.lineno)
    return lines


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_cells_are_short_and_print_no_verdict_from_an_if(path):
    for i, cell in enumerate(_cells(path)):
        if cell.cell_type != "code":
            continue
        n = len(cell.source.rstrip("\n").splitlines())
        assert n <= MAX_CODE_LINES, f"{path.name} cell {i}: {n} lines (at most {MAX_CODE_LINES}); move code to cirlib"
        assert not _prints_inside_if(cell.source), (
            f"{path.name} cell {i}: print inside an if (a verdict from a branch); state the finding in prose "
            f"and check it with claim(...)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_one_setup_line_after_a_readable_parameters_cell(path):
    code = [c for c in _cells(path) if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for line in code[0].source.splitlines():
        assert len(line) <= MAX_PARAMETER_LINE, f"{path.name}: parameter line over {MAX_PARAMETER_LINE}: {line!r}"
    setup = [line for line in code[1].source.splitlines() if line.strip()]
    assert setup[0].startswith("from cirlib.notebook import *"), f"{path.name}: {setup[0]!r}"
    assert len(setup) == 2 and re.match(r"nb = setup\(globals\(\)", setup[1]), f"{path.name}: {code[1].source!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_findings_are_prose_checked_by_claims(path):
    cells = _cells(path)
    summary = [c for c in cells if c.cell_type == "markdown" and c.source.startswith("## Summary")]
    assert len(summary) == 1, f"{path.name}: one '## Summary' cell"
    for phrase in VAGUE:
        assert phrase not in summary[0].source, f"{path.name}: the summary says {phrase!r}; state the finding"
    claims = [i for i, c in enumerate(cells) if c.cell_type == "code" and "claim(" in c.source]
    assert claims, f"{path.name}: no claim(...) cell checks a finding"
    for i in claims:  # right after the sentence it checks (or after another claim cell)
        before = cells[i - 1]
        assert before.cell_type == "markdown" or "claim(" in before.source, f"{path.name} cell {i}: claim after code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_ask_to_predict_and_to_explain_and_solutions_are_collapsed(path):
    cells = _cells(path)
    exercises = [c.source for c in cells if c.cell_type == "markdown" and c.source.startswith("**Exercise")]
    heads = [e.split("**")[1] for e in exercises]
    assert any("(predict)" in h for h in heads), f"{path.name}: no '**Exercise N (predict).**' exercise: {heads}"
    assert any("(explain)" in h for h in heads), f"{path.name}: no '**Exercise N (explain).**' exercise: {heads}"
    for i, cell in enumerate(cells):
        if "solution" in cell.metadata.get("tags", []):
            assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, (
                f"{path.name} cell {i}: a solution must be collapsed in JupyterLab (metadata.jupyter.source_hidden)")


# ----------------------------------------------------------------------------- claim() itself


def test_a_claim_that_holds_prints_its_numbers(capsys, monkeypatch):
    monkeypatch.setattr(lesson, "_strict", True)
    assert lesson.claim("SSAM beats HaS", True, ssam=80.12, has=74.2) is True
    assert capsys.readouterr().out == "holds: SSAM beats HaS (ssam 80.1, has 74.2)\n"


def test_a_broken_claim_stops_a_full_run_and_is_reported_in_a_fast_one(capsys, monkeypatch):
    monkeypatch.setattr(lesson, "_strict", True)
    with pytest.raises(lesson.ClaimError, match="DOES NOT HOLD: the map covers the body .head 0.9"):
        lesson.claim("the map covers the body", False, head=0.9)
    monkeypatch.setattr(lesson, "_strict", False)
    assert lesson.claim("the map covers the body", False, head=0.9) is False
    assert "DOES NOT HOLD" in capsys.readouterr().out


def test_claims_stop_only_the_documented_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lesson, "_strict", True)
    nb = lesson.setup({"FAST": True, "SEED": 0, "OUTPUT_DIR": str(tmp_path)}, "has")
    assert lesson._strict is False and nb.config().model.method == "has" and nb.synthetic
    lesson.setup({"FAST": False, "SEED": 0, "OUTPUT_DIR": str(tmp_path)})
    assert lesson._strict is True
    lesson.setup({"FAST": False, "SEED": 1, "OUTPUT_DIR": str(tmp_path)})  # a student exploring another seed
    assert lesson._strict is False and "this one sets SEED=1" in capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_documented_run_is_the_notebooks_defaults(path):
    parameters = next(c for c in _cells(path) if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(parameters.source, namespace)  # the defaults, as the notebook runs them without papermill
    for name, value in lesson.DOCUMENTED_RUN.items():
        if name in namespace:
            assert namespace[name] == value, f"{path.name}: {name} defaults to {namespace[name]!r}"


def test_a_notebook_with_a_broken_claim_fails_its_full_run(tmp_path):
    """What makes `make demo` fail on a broken claim: papermill stops at the claim cell."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("FAST: bool = False  # tiny run")
    params.metadata["tags"] = ["parameters"]
    check = "from cirlib.notebook import claim, setup\nnb = setup(globals())\nclaim('two is less than one', 2 < 1)"
    nb.cells = [params, nbformat.v4.new_code_cell(check)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    source = tmp_path / "99_claim.ipynb"
    nbformat.write(nb, str(source))
    out = tmp_path / "out.ipynb"
    nbtools.run_notebook(source, out, {"FAST": True})  # FAST: reported only
    with pytest.raises(nbtools.NotebookExecutionError, match="ClaimError: DOES NOT HOLD: two is less than one"):
        nbtools.run_notebook(source, out, {"FAST": False})


def test_slide_metadata_and_speaker_notes_are_current(tmp_path):
    """Every cell's slide type follows cirlib.tools.slides.slide_type; the notes are the session plan's questions."""
    import shutil

    from cirlib.tools.slides import SPEAKER_NOTES, annotate_notebooks

    for path in NOTEBOOKS:
        shutil.copy2(path, tmp_path / path.name)
        assert any(c.source.startswith(SPEAKER_NOTES) for c in _cells(path)), f"{path.name}: no speaker notes"
    changed = annotate_notebooks(tmp_path)
    assert not changed, f"run `python -m cirlib.tools.slides annotate notebooks`: {[p.name for p in changed]}"
