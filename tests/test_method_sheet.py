r"""The method sheet (``docs/teaching/method_sheet.md``) and the notebooks number the equations alike.

The sheet numbers every equation of the method (1)...(N) with ``\tag{k}``; each notebook tags the
same formula with the same ``\tag{k}`` in its markdown. Checked here:

* the sheet's numbers run 1..N in order, one display formula each;
* every number of the sheet is tagged exactly once across the notebooks, and the notebooks tag
  nothing else;
* each tag sits in a notebook that the sheet's section heading names ("## CAAM · notebook 04");
* a tag only ever stands in display math (``$$...$$`` starting a paragraph of its own, where MathJax
  honours it) whose formula has no ``\\`` line break (Sphinx wraps those in ``split``, where a tag is an
  error).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHEET = ROOT / "docs" / "teaching" / "method_sheet.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_TAG = re.compile(r"\\tag\{([^}]*)\}")
_SECTION = re.compile(r"^## .*· notebooks? ([0-9, ]+)$", re.M)


def _sheet_equations() -> list[tuple[str, set[str]]]:
    """``[(tag, {notebook numbers of its section})]`` in the sheet's order."""
    text = SHEET.read_text(encoding="utf-8")
    sections = [(m.start(), {n.strip() for n in m.group(1).split(",")}) for m in _SECTION.finditer(text)]
    found = []
    for block in _DISPLAY.finditer(text):
        named = [names for start, names in sections if start < block.start()]
        for tag in _TAG.findall(block.group(1)):
            found.append((tag, named[-1] if named else set()))
    return found


def _markdown(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]


def _notebook_tags() -> list[tuple[str, str, str]]:
    """``[(tag, notebook number, the display formula)]`` over every notebook's markdown."""
    tags = []
    for notebook in NOTEBOOKS:
        for text in _markdown(notebook):
            for block in _DISPLAY.finditer(text):
                tags += [(tag, notebook.name[:2], block.group(1)) for tag in _TAG.findall(block.group(1))]
    return tags


def test_the_sheet_numbers_its_equations_one_to_n_in_order():
    tags = [tag for tag, _ in _sheet_equations()]
    assert tags, f"{SHEET.name} tags no equation"
    assert tags == [str(k) for k in range(1, len(tags) + 1)], f"{SHEET.name} numbers its equations {tags}"
    assert all(names for _, names in _sheet_equations()), "an equation sits under no '· notebook NN' heading"


def test_every_sheet_number_is_tagged_once_in_the_notebooks_and_nothing_else_is():
    sheet = [tag for tag, _ in _sheet_equations()]
    tagged = [tag for tag, _, _ in _notebook_tags()]
    twice = sorted({t for t in tagged if tagged.count(t) > 1}, key=int)
    assert not twice, f"tagged more than once in the notebooks: {twice}"
    assert sorted(tagged, key=int) == sheet, (
        f"the notebooks tag {sorted(tagged, key=int)}, the method sheet numbers {sheet}: "
        f"missing {sorted(set(sheet) - set(tagged), key=int)}, extra {sorted(set(tagged) - set(sheet))}")


def test_each_tag_sits_in_a_notebook_its_sheet_section_names():
    named = dict(_sheet_equations())
    wrong = [f"\\tag{{{tag}}} is in notebook {nb}, the sheet's section names {sorted(named[tag])}"
             for tag, nb, _ in _notebook_tags() if tag in named and nb not in named[tag]]
    assert not wrong, "\n".join(wrong)


def test_tags_stand_only_in_display_math_without_line_breaks():
    problems = []
    for notebook in NOTEBOOKS:
        for text in _markdown(notebook):
            outside = _DISPLAY.sub("", text)
            problems += [f"{notebook.name}: \\tag{{{t}}} outside $$...$$" for t in _TAG.findall(outside)]
            for block in _DISPLAY.finditer(text):
                before = text[:block.start()].split("\n")
                # A $$ block is display math only as a block of its own: after a blank line (or the cell's
                # start) and first on its line; inside a paragraph MyST typesets it inline, without the tag.
                if _TAG.search(block.group(1)) and (before[-1].strip() or (len(before) > 1 and before[-2].strip())):
                    problems.append(f"{notebook.name}: \\tag in a $$ block that does not start a paragraph: "
                                    f"{block.group(0)[:60]!r}")
    problems += [f"notebook {nb}: \\tag{{{tag}}} in a formula with a \\\\ line break"
                 for tag, nb, formula in _notebook_tags() if "\\\\" in formula]
    sheet = SHEET.read_text(encoding="utf-8")
    problems += [f"{SHEET.name}: \\tag{{{t}}} outside $$...$$" for t in _TAG.findall(_DISPLAY.sub("", sheet))]
    assert not problems, "\n".join(problems)
