"""cirlib.tools.notebooks: student copies, stripping checks, declared parameters, and the notebooks' conventions."""

from __future__ import annotations

import copy
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from cirlib.tools import notebooks as nbtools
from cirlib.paths import NOTEBOOKS_DIR

PARAMS = 'FAST: bool = False  # tiny run\nSEED: int = 0  # seed\nDATA: str = "synthetic"  # dataset\n'


def _cell(source: str, tags=(), outputs=None):
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    if outputs is not None:
        cell.outputs = outputs
    return cell


def _toy_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        new_markdown_cell("# 99 toy"),
        _cell(PARAMS, tags=["parameters"]),
        _cell("# NBVAL_CHECK_OUTPUT\nprint(2 + 2)", tags=["keep_output"],
              outputs=[new_output("stream", name="stdout", text="4\n")]),
        new_markdown_cell("**Exercise 1.** What is 6 x 7?"),
        _cell("helper = 6  # a helper line\nanswer_1 = helper * 7\n    # indented comment", tags=["solution"]),
        _cell("from cirlib import exercises\nassert answer_1 == 42"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def _write(nb, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


@pytest.fixture()
def toy_dir(tmp_path):
    nb = nbtools._stripped_copy(_toy_notebook())
    _write(nb, tmp_path / "src" / "99_toy.ipynb")
    return tmp_path / "src"


# ----------------------------------------------------------------------------- student copies


def test_student_copy_replaces_solutions_and_keeps_checkers(toy_dir, tmp_path):
    (out,) = nbtools.make_student_copies(toy_dir, tmp_path / "student")
    source_cells = nbformat.read(str(toy_dir / "99_toy.ipynb"), 4).cells
    cells = nbformat.read(str(out), 4).cells
    assert len(cells) == len(source_cells)
    solution = cells[4]
    assert solution.source.startswith(nbtools.STUDENT_PLACEHOLDER)
    assert "answer_1 = None" in solution.source
    assert "helper * 7" not in solution.source and "answer_1 = helper" not in solution.source
    assert cells[5].source == source_cells[5].source  # the checker is untouched
    assert cells[1].source == source_cells[1].source  # so are the parameters
    assert all(c.get("outputs", []) == [] for c in cells if c.cell_type == "code")


def test_student_stub_keeps_only_top_level_assignments():
    stub = nbtools._solution_stub("x = 1\nif True:\n    y = 2\nanswer_2 = x  # note\nprint(x)\n")
    assert stub == "x = None\nanswer_2 = None\n"


def test_student_copies_of_the_repository_notebooks():
    """Every solution cell loses its code but keeps an ``answer_N = None`` per answer it defined."""
    written = nbtools.make_student_copies(NOTEBOOKS_DIR, NOTEBOOKS_DIR.parent / "build" / "test_student")
    assert written
    for path in written:
        original = nbformat.read(str(NOTEBOOKS_DIR / path.name), 4)
        student = nbformat.read(str(path), 4)
        for before, after in zip(original.cells, student.cells):
            if "solution" not in before.metadata.get("tags", []):  # checked cells lose their nbval marker only
                assert after.source == before.source.removeprefix("# NBVAL_CHECK_OUTPUT\n"), path.name
                assert "keep_output" not in after.metadata.get("tags", []), path.name
                continue
            answers = set(re.findall(r"^(answer_\d+)\s*=", before.source, flags=re.M))
            assert answers, f"{path.name}: a solution cell without answer_N = ...: {before.source!r}"
            for name in answers:
                assert f"{name} = None" in after.source, (path.name, name)
            assert after.source.startswith(nbtools.STUDENT_PLACEHOLDER)


# ----------------------------------------------------------------------------- stripping


def test_check_stripped_accepts_a_stripped_notebook_with_kept_outputs(toy_dir):
    assert nbtools.check_stripped(toy_dir) == []
    kept = nbformat.read(str(toy_dir / "99_toy.ipynb"), 4).cells[2]
    assert kept.outputs and kept.outputs[0]["text"] == "4\n"  # keep_output cells keep their outputs


def test_check_stripped_detects_outputs_metadata_and_missing_parameters(toy_dir):
    path = toy_dir / "99_toy.ipynb"
    clean = nbformat.read(str(path), 4)

    with_output = copy.deepcopy(clean)
    with_output.cells[5].outputs = [new_output("stream", name="stdout", text="leak\n")]
    _write(with_output, path)
    assert nbtools.check_stripped(toy_dir) == [str(path)]

    with_count = copy.deepcopy(clean)
    with_count.cells[5].execution_count = 7
    _write(with_count, path)
    assert nbtools.check_stripped(toy_dir) == [str(path)]

    with_papermill = copy.deepcopy(clean)
    with_papermill.metadata["papermill"] = {"parameters": {"FAST": True}}
    _write(with_papermill, path)
    assert nbtools.check_stripped(toy_dir) == [str(path)]

    no_parameters = copy.deepcopy(clean)
    no_parameters.cells[1].metadata["tags"] = []
    _write(no_parameters, path)
    assert any("no cell tagged 'parameters'" in p for p in nbtools.check_stripped(toy_dir))

    nbtools.strip_notebooks(toy_dir)  # strip repairs outputs and metadata, not a missing tag
    _write(clean, path)
    assert nbtools.check_stripped(toy_dir) == []


def test_strip_removes_outputs_but_those_of_keep_output_cells(toy_dir):
    path = toy_dir / "99_toy.ipynb"
    nb = nbformat.read(str(path), 4)
    nb.cells[5].outputs = [new_output("stream", name="stdout", text="leak\n")]
    nb.metadata["widgets"] = {"state": {}}
    _write(nb, path)
    nbtools.strip_notebooks(toy_dir)
    nb = nbformat.read(str(path), 4)
    assert nb.cells[5].outputs == [] and "widgets" not in nb.metadata
    assert nb.cells[2].outputs[0]["text"] == "4\n"


# ----------------------------------------------------------------------------- parameters


def test_declared_parameters(toy_dir):
    declared = nbtools.declared_parameters(toy_dir / "99_toy.ipynb")
    assert list(declared) == ["FAST", "SEED", "DATA"]
    assert declared["SEED"].startswith("SEED: int = 0")


def test_declared_parameters_without_a_parameters_cell(tmp_path):
    path = _write(new_notebook(cells=[_cell("x = 1")]), tmp_path / "00_x.ipynb")
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        nbtools.declared_parameters(path)


def test_unknown_parameter_is_refused_before_running(toy_dir, tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter 'FASTT'\. Did you mean 'FAST'\?"):
        nbtools.run_notebook(toy_dir / "99_toy.ipynb", tmp_path / "out.ipynb", {"FASTT": True})
    assert not (tmp_path / "out.ipynb").exists()


def test_yaml_parameters_must_be_a_mapping():
    assert nbtools._parse_yaml_parameters("{FAST: true, EPOCHS: 2}") == {"FAST": True, "EPOCHS": 2}
    with pytest.raises(ValueError, match="YAML mapping"):
        nbtools._parse_yaml_parameters("[1, 2]")


# ----------------------------------------------------------------------------- the repository's notebooks


def _repo_notebooks():
    return nbtools.list_notebooks(NOTEBOOKS_DIR)


@pytest.mark.parametrize("path", _repo_notebooks(), ids=lambda p: p.name)
def test_repository_notebook_conventions(path):
    nb = nbformat.read(str(path), 4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["language_info"]["name"] == "python"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be the parameters cell"
    declared = nbtools.declared_parameters(path)
    for name in (*nbtools.COMMON_PARAMETERS, "FIGURES_DIR"):
        assert name in declared, f"{path.name} lacks the parameter {name}"
    for line in code[0].source.splitlines():  # papermill parses one '=' per line; typed and commented
        if line.strip():
            assert line.count("=") == 1 and ":" in line.split("=")[0] and "#" in line, line
    assert "setup(globals()" in code[1].source, "the second code cell must call cirlib.notebook.setup (validates parameters)"
    for cell in code:
        tags = cell.metadata.get("tags", [])
        checked = cell.source.startswith("# NBVAL_CHECK_OUTPUT")
        assert checked == ("keep_output" in tags), f"{path.name}: NBVAL_CHECK_OUTPUT and keep_output go together"
        if checked:
            assert cell.outputs, f"{path.name}: a checked cell without stored outputs; run refresh-outputs"
        if "widgets.interact" in cell.source:  # widgets go through viz.interact_or_static: one figure, not two
            pytest.fail(f"{path.name}: use viz.interact_or_static(..., INTERACTIVE, ...) for widgets")
        if "interact_or_static(" in cell.source:
            assert cell.source.startswith("# NBVAL_IGNORE_OUTPUT") and "INTERACTIVE" in cell.source
        drawn_elsewhere = "plt.close(fig)" in cell.source  # built to be saved; the next cell shows it
        if ("plt.show()" not in cell.source and not drawn_elsewhere
                and ("plt.subplots" in cell.source or "image_grid" in cell.source)):
            pytest.fail(f"{path.name}: a plotting cell must end with plt.show():\n{cell.source[:200]}")
    assert sum("keep_output" in c.metadata.get("tags", []) for c in code) >= 1  # at least one compared cell (the conventions aim for 3-6)
    assert any("solution" in c.metadata.get("tags", []) for c in code)


def test_repository_notebooks_are_stripped():
    assert nbtools.check_stripped(NOTEBOOKS_DIR) == []


def test_bad_data_value_fails_in_papermill_with_a_suggestion(tmp_path, capsys):
    """A real headless run: the validation cell stops ``DATA="cubb"`` before any work is done, and
    ``cirlib notebook run`` reports it once, in one line (not papermill's traceback, twice)."""
    pytest.importorskip("papermill")
    from cirlib.cli import main

    source = NOTEBOOKS_DIR / "01_cam_baseline.ipynb"
    if not source.exists():
        pytest.skip("notebook 01 is not there")
    out = tmp_path / "out.ipynb"
    code = main(["notebook", "run", str(source), str(out), "-y",
                 f"{{DATA: cubb, INTERACTIVE: false, OUTPUT_DIR: {tmp_path / 'runs'}}}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "did you mean 'cub'" in err and "DATA='cubb'" in err and err.count("NotebookParameterError") == 1
    assert "Traceback" not in err and out.is_file()  # the executed copy keeps the traceback
    assert not (tmp_path / "runs").exists()  # nothing was trained or written


def test_prepared_ci_copies_mark_checked_cells_as_run(toy_dir, tmp_path):
    """nbval compares only cells with an execution count ('Unrun reference cell has outputs' otherwise)."""
    prepared, student = nbtools.prepare_ci(toy_dir, tmp_path / "nbval")
    assert student == tmp_path / "nbval" / "student" / prepared.name
    cell = nbformat.read(str(prepared), 4).cells
    checked = [c for c in cell if "keep_output" in c.metadata.get("tags", [])]
    assert checked and all(c.outputs and c.execution_count is not None for c in checked)
