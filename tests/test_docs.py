"""The docs stand on their own and say what the code does.

* every relative link in ``README.md``, ``docs/*.md`` and the notebooks' markdown resolves to a file of
  the repository (and, with ``#anchor``, to a heading of that file); every ``docs/design.md#...``
  citation in the tree names a section that exists, and nothing cites a design file outside the repo;
* every option default written in ``docs/reconstruction.md`` equals the code's, and every option of
  ``ComplementaryModel`` and every knob of ``SyntheticSpec`` is listed there;
* every ``benchmarks/screen.py`` command written in ``docs/reconstruction.md`` parses and builds a model;
* the README's results table is ``results/results.md``'s, line for line.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
RECONSTRUCTION = ROOT / "docs" / "reconstruction.md"

_LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)|\!\[[^\]]*\]\(([^)\s]+)\)")
_CODE_FENCE = re.compile(r"```.*?```", re.S)


def _slug(heading: str) -> str:
    """GitHub's (and MyST's) anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _CODE_FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", text, re.M)}


def _markdown_sources() -> list[tuple[Path, str]]:
    sources = [(ROOT / "README.md", (ROOT / "README.md").read_text(encoding="utf-8"))]
    sources += [(p, p.read_text(encoding="utf-8")) for p in DOCS]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        sources.append((notebook, text))
    return sources


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / line for line in out.splitlines() if line]


def test_relative_links_resolve_to_repository_files_and_headings():
    broken = []
    for source, text in _markdown_sources():
        for match in _LINK.finditer(_CODE_FENCE.sub("", text)):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            path = (source.parent / path_part).resolve() if path_part else source
            if not path.exists():
                broken.append(f"{source.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{source.relative_to(ROOT)}: {target} (no heading with that anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_design_citations_name_existing_sections_of_docs_design_md():
    anchors = _anchors(ROOT / "docs" / "design.md")
    upper = "DESIGN"  # spelled apart so that this file does not match its own search
    missing, stale = [], []
    for path in _tracked_files():
        if path.suffix not in {".py", ".md", ".ipynb", ".yaml", ".yml", ".txt", ".toml", ""} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in re.finditer(upper + r"(\.md| section)", text):
            stale.append(f"{path.relative_to(ROOT)}: ...{text[max(0, match.start() - 30):match.end() + 10]!r}")
        for match in re.finditer(r"design\.md#([\w-]+)", text):
            if match.group(1) not in anchors:
                missing.append(f"{path.relative_to(ROOT)}: design.md#{match.group(1)}")
    assert not stale, "citations of a design file that is not in the repository:\n" + "\n".join(stale)
    assert not missing, "citations of sections docs/design.md does not have:\n" + "\n".join(missing)


def _option_rows() -> dict[str, list[str]]:
    """``{option: [default cell, ...]}`` for every table row whose first cell is one backticked name."""
    rows: dict[str, list[str]] = {}
    for line in RECONSTRUCTION.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) >= 2 and re.fullmatch(r"`\w+`", cells[0]):
            rows.setdefault(cells[0].strip("`"), []).append(cells[1])
    return rows


def _literal(cell: str):
    """The first backticked literal of a cell (``"late"``, ``0.5``, ``(0, 16)``), or ``None`` when there is none."""
    for span in re.findall(r"`([^`]+)`", cell):
        try:
            return ast.literal_eval(span)
        except (ValueError, SyntaxError):
            continue
    return None


def _code_defaults() -> dict[str, object]:
    from cirlib.data.synthetic import SyntheticSpec
    from cirlib.methods import build_model
    from cirlib.methods.complementary import HIDE_PROB, ComplementaryModel
    from cirlib.methods.has import HaSModel
    from cirlib.methods.masks import HAS_PATCH_SIZES

    params = inspect.signature(ComplementaryModel.__init__).parameters
    defaults = {name: p.default for name, p in params.items()
                if p.default is not inspect.Parameter.empty and name not in ("use_caam", "use_ssam")}
    # patch_sizes=None means HaS's set, which HaS uses too; the fusion loss is the one the full method builds.
    assert defaults["patch_sizes"] is None and inspect.signature(HaSModel.__init__).parameters["patch_sizes"].default is None
    defaults["patch_sizes"] = tuple(HAS_PATCH_SIZES)
    defaults["fusion_loss"] = build_model("full", image_size=32, width=4).fusion_loss
    # The masks' options are HaS's; the complementary model hides with the same probability.
    for name in ("hide_prob", "fill"):
        defaults[name] = inspect.signature(HaSModel.__init__).parameters[name].default
    assert defaults["hide_prob"] == HIDE_PROB
    for field in dataclasses.fields(SyntheticSpec):
        defaults[field.name] = field.default
    return defaults


def test_reconstruction_lists_every_option_with_the_code_default():
    rows = _option_rows()
    defaults = _code_defaults()
    unlisted = sorted(set(defaults) - set(rows))
    assert not unlisted, f"options missing from docs/reconstruction.md: {unlisted}"
    checked, wrong = set(), []
    for name, cells in rows.items():
        if name not in defaults:
            continue
        for cell in cells:
            value = _literal(cell)
            if value is None:
                continue  # "as CAAM": the row that states the value is checked
            checked.add(name)
            expected = defaults[name]
            if (tuple(value) if isinstance(value, list) else value) != expected:
                wrong.append(f"{name}: docs say {value!r}, code has {expected!r}")
    assert not wrong, "docs/reconstruction.md disagrees with the code:\n" + "\n".join(wrong)
    assert checked == set(defaults), f"no default stated for {sorted(set(defaults) - checked)}"


def test_scaled_has_patch_sizes_in_the_docs_match_the_code():
    from cirlib.methods.masks import scale_patch_sizes

    cell = _option_rows()["patch_sizes"][0]
    spans = [ast.literal_eval(s) for s in re.findall(r"`(\([^`]+\))`", cell)]
    assert len(spans) == 2, cell
    assert tuple(spans[1]) == scale_patch_sizes(spans[0], 64)


def _screen_commands() -> list[list[str]]:
    """Every ``benchmarks/screen.py`` call in the doc's code blocks, shell abbreviations expanded."""
    text = RECONSTRUCTION.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    variables = dict(re.findall(r'^(\w+)="([^"]*)"$', "\n".join(blocks), re.M))
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0]
            for var, value in variables.items():
                line = line.replace(f"${var}", value)
            line = line.replace("$s", "0")
            for call in re.findall(r"python benchmarks/screen\.py ([^;]*)", line):
                commands.append(shlex.split(call))
    return commands


def test_screen_commands_in_the_docs_parse_and_build_their_models():
    from cirlib.methods.registry import METHODS
    from cirlib.methods import build_model

    spec = importlib.util.spec_from_file_location("screen", ROOT / "benchmarks" / "screen.py")
    screen = importlib.util.module_from_spec(spec)
    sys.modules["screen"] = screen
    spec.loader.exec_module(screen)
    commands = _screen_commands()
    assert len(commands) >= 8, commands
    for argv in commands:
        args = screen.build_parser().parse_args(argv)
        assert args.method in METHODS, argv
        options = screen.key_values(args.opt, "--opt")
        build_model(args.method, image_size=32, width=4, **options)  # an unknown option raises


def test_readme_results_table_is_results_md():
    table = [line for line in (ROOT / "results" / "results.md").read_text(encoding="utf-8").splitlines()
             if line.startswith("|")]
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    fix = ("copy the table lines of results/results.md into README.md's 'Results on the synthetic dataset' "
           "(and reread the sentences under it)")
    assert len(table) > 2 and table[0] in readme, f"README.md has no results table: {fix}"
    start = readme.index(table[0])
    assert readme[start:start + len(table)] == table, f"README.md's results table differs from results/results.md: {fix}"
