"""Slides from the notebooks: the slide metadata of each cell, and offline reveal.js decks.

Every notebook carries RISE / nbconvert slide metadata (``cell.metadata.slideshow.slide_type``), so

* in JupyterLab (``jupyterlab-rise``, installed with the project) a notebook presents as live slides
  whose cells run during the talk: ``Alt+R``, or "Render as slides" in the command palette;
* ``make slides`` writes a static reveal.js deck per executed notebook (the ``make demo`` copies, so
  the slides show this run's figures and numbers) to ``build/slides``, which the site also links.

The decks work with the network off: reveal.js comes from npm into the build folder (pinned in
``slides/package.json`` and its lock file), MathJax 3 from the Python environment
(``sphinx-mathjax-offline``), figures are embedded in the page. nbconvert's default template asks CDNs
for reveal.js, MathJax, jQuery, require.js and mermaid; ``slides_template/cirlib_reveal`` replaces those.

Which cell is what kind of slide follows the notebooks' structure, by one rule (:func:`slide_type`),
applied by ``python -m cirlib.tools.slides annotate notebooks`` (which also writes each notebook's
speaker notes: its discussion questions from ``docs/teaching/session_plan.md``) and checked by the tests:

==========================================  =========================================
cell                                        slide type
==========================================  =========================================
the title cell, a ``## Section`` heading     ``slide`` (a new horizontal slide)
a ``### Subsection`` or ``**Exercise``       ``subslide`` (a vertical slide below)
a cell starting ``**Speaker notes.**``       ``notes`` (the speaker view, ``s`` in a deck)
parameters, setup, solutions, checkers       ``skip`` (in the notebook, not on a slide)
a code cell that draws a figure              ``subslide``
anything else                                ``-`` (continues the current slide)
==========================================  =========================================
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from cirlib.paths import REPO_ROOT
from cirlib.tools.notebooks import BROWSER_CHECK_TAG, SOLUTION_TAG, WIDGET_VIEW_MIME, check_executed, list_notebooks

SPEAKER_NOTES = "**Speaker notes.**"
TEMPLATE_DIR = Path(__file__).with_name("slides_template")
VENDOR_PACKAGE = REPO_ROOT / "slides"
SESSION_PLAN = REPO_ROOT / "docs" / "teaching" / "session_plan.md"


def slide_type(cell: dict, index: int) -> str:
    """The slide type of ``cell`` (the ``index``-th cell) by the rule of the module docstring."""
    source = "".join(cell.get("source", ""))
    tags = cell.get("metadata", {}).get("tags", [])
    if cell["cell_type"] == "markdown":
        if index == 0 or source.startswith("## "):
            return "slide"
        if source.startswith(SPEAKER_NOTES):
            return "notes"
        if source.startswith("**Parameters.**"):
            return "skip"
        if source.startswith(("### ", "**Exercise")):
            return "subslide"
        return "-"
    if "parameters" in tags or SOLUTION_TAG in tags or "from cirlib.notebook import *" in source:
        return "skip"
    if "exercises.check_" in source:
        return "skip"
    if "plt.show()" in source or "interact_or_static(" in source:
        return "subslide"
    return "-"


def discussion_questions(plan: Path = SESSION_PLAN) -> dict[str, str]:
    """The session plan's discussion questions, by notebook number: ``{"05": "The position attention ..."}``.

    The plan writes one paragraph per notebook, ``**NN · Title.** questions...``; a notebook's speaker
    notes are that paragraph, so the plan and the slides cannot disagree.
    """
    found = {}
    for paragraph in plan.read_text(encoding="utf-8").split("\n\n"):
        match = re.match(r"\*\*(\d\d) · [^*]+\*\*\s+(.*)", paragraph.strip(), flags=re.S)
        if match:
            found[match.group(1)] = " ".join(match.group(2).split())
    return found


def speaker_notes(questions: str) -> str:
    """The source of a notebook's speaker-notes cell (shown in the speaker view, ``s`` in a deck)."""
    return f"{SPEAKER_NOTES} Questions for the room (from the session plan, docs/teaching/session_plan.md): {questions}"


def annotate(notebook: dict, questions: str | None = None) -> dict:
    """``notebook`` (JSON) with its speaker notes and every cell's slide type (:func:`slide_type`).

    With ``questions``, the speaker-notes cell (before ``## Exercises``, or last) holds them.
    """
    cells = notebook["cells"]
    if questions is not None:
        notes = {"cell_type": "markdown", "id": "speaker-notes", "metadata": {},
                 "source": _lines(speaker_notes(questions))}
        at = [i for i, c in enumerate(cells) if "".join(c["source"]).startswith(SPEAKER_NOTES)]
        if at:
            cells[at[0]]["source"] = notes["source"]
        else:
            exercises = [i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Exercises")]
            cells.insert(exercises[0] if exercises else len(cells), notes)
    for i, cell in enumerate(cells):
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": slide_type(cell, i)}
    return notebook


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [line + "\n" for line in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def annotate_notebooks(folder: str | Path, plan: Path = SESSION_PLAN) -> list[Path]:
    """Speaker notes and slide metadata for every notebook in ``folder``, in place; return those changed."""
    import nbformat

    from cirlib.tools.notebooks import _stripped_copy

    questions = discussion_questions(plan)
    changed = []
    for path in list_notebooks(folder):
        text = path.read_text(encoding="utf-8")
        nb = annotate(json.loads(text), questions.get(path.name[:2]))
        new = nbformat.writes(_stripped_copy(nbformat.reads(json.dumps(nb), as_version=4)))  # committed form
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def _mathjax_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline") or importlib.util.find_spec("sphinx_mathjax_offline")
    candidates = [Path(p) / "static" / "mathjax" for p in (spec.submodule_search_locations or [])] if spec else []
    for folder in candidates:
        if (folder / "tex-chtml.js").is_file():
            return folder
    raise FileNotFoundError("MathJax not found: install the site extra (pip install -e '.[site]', or make install), "
                            "which brings sphinx-mathjax-offline and its MathJax 3 files.")


def install_vendor(out_dir: Path) -> Path:
    """reveal.js (npm, pinned by ``slides/package-lock.json``) and MathJax into ``out_dir/vendor``."""
    vendor = out_dir / "vendor"
    npm_root = REPO_ROOT / "build" / "slides-npm"  # outside any output folder: never copied into a site
    reveal = npm_root / "node_modules" / "reveal.js"
    lock = VENDOR_PACKAGE / "package-lock.json"
    stamp = npm_root / ".installed-lock"
    if not (reveal.is_dir() and stamp.is_file() and stamp.read_text() == lock.read_text()):
        if shutil.which("npm") is None:
            raise FileNotFoundError("npm not found: the decks need reveal.js from npm; install Node.js "
                                    "(sudo apt-get install -y npm) and run make slides again.")
        npm_root.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(VENDOR_PACKAGE / name, npm_root / name)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=npm_root, check=True)
        stamp.write_text(lock.read_text())
    if vendor.exists():
        shutil.rmtree(vendor)
    shutil.copytree(reveal / "dist", vendor / "reveal.js" / "dist")
    shutil.copytree(reveal / "plugin" / "notes", vendor / "reveal.js" / "plugin" / "notes")
    shutil.copytree(_mathjax_dir(), vendor / "mathjax")
    return vendor


def _deck_notebook(path: Path):
    """An executed notebook as a deck shows it: no widget views, no test-only cells."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if BROWSER_CHECK_TAG not in c.metadata.get("tags", [])
                and "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if WIDGET_VIEW_MIME not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    return nb


def build_decks(notebooks_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """One offline reveal.js deck per notebook of ``notebooks_dir`` (executed copies) in ``out_dir``."""
    from nbconvert import SlidesExporter

    notebooks = list_notebooks(notebooks_dir)
    check_executed(notebooks)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    install_vendor(out_dir)
    exporter = SlidesExporter(template_name="cirlib_reveal", extra_template_basedirs=[str(TEMPLATE_DIR)],
                              reveal_url_prefix="vendor/reveal.js", mathjax_url="vendor/mathjax/tex-chtml.js",
                              reveal_theme="white", reveal_scroll=True, exclude_input_prompt=True,
                              exclude_output_prompt=True)
    written = []
    for path in notebooks:
        resources = {"cirlib_mathjax_fonts": "vendor/mathjax/output/chtml/fonts/woff-v2"}
        body, _ = exporter.from_notebook_node(_deck_notebook(path), resources=resources)
        target = out_dir / f"{path.stem}.slides.html"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.replace(target)
        written.append(target)
    links = "\n".join(f'<li><a href="{p.name}">{p.stem.removesuffix(".slides")}</a></li>' for p in written)
    (out_dir / "index.html").write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>cirlib slides</title></head>"
        f"<body><h1>cirlib: one deck per notebook</h1><p>Keys: arrows to move, <kbd>s</kbd> opens the speaker "
        f"view (notes and timer), <kbd>Esc</kbd> the overview.</p><ul>\n{links}\n</ul></body></html>\n",
        encoding="utf-8")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cirlib.tools.slides", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ann = sub.add_parser("annotate", help="speaker notes (from the session plan) and every cell's slide type, in place")
    ann.add_argument("folder", nargs="?", default="notebooks")
    build = sub.add_parser("build", help="write one offline reveal.js deck per executed notebook")
    build.add_argument("--notebooks", default="build/demo", help="executed notebooks (default build/demo)")
    build.add_argument("--out", default="build/slides", help="output folder (default build/slides)")
    args = parser.parse_args(argv)
    try:
        if args.command == "annotate":
            for path in annotate_notebooks(args.folder):
                print(f"slide metadata updated: {path}")
        else:
            for path in build_decks(args.notebooks, args.out):
                print(f"deck: {path}")
    except (FileNotFoundError, ValueError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
