r"""The teaching handouts and the tables they share with the docs, generated from one source each.

Usage::

    python -m cirlib.tools.handouts write [--demo-timings build/demo/timings.json]
    python -m cirlib.tools.handouts check      # exit 1 naming every generated file that is stale

What is generated from what (nothing here is copied by hand, so nothing can drift):

* ``docs/reconstruction.yaml`` (the options the paper leaves open) gives the option tables of
  ``docs/reconstruction.md`` (between ``<!-- table KEY: ... -->`` markers; the prose around them is
  hand-written) and the handout ``docs/teaching/reconstruction_handout.md`` (what the paper's reading
  summary says about each option against what we built);
* ``results/results.json`` and ``results/heldout/results.json`` (``make results`` and the held-out
  run) give the results one-pager ``docs/teaching/results.md``: the table
  (:func:`cirlib.runs.results.format_table`) and every gap read by the project's one rule
  (:func:`cirlib.evidence.compare`: a gap counts when it exceeds the two seed spreads combined);
* ``benchmarks/results/demo_notebooks.json`` (each notebook's run time in a ``make demo``, recorded
  from ``build/demo/timings.json`` with ``--demo-timings``) and, once it exists,
  ``benchmarks/results/class_ready.json`` give the measured-times table of
  ``docs/teaching/session_plan.md``.

``tests/test_handouts.py`` runs :func:`stale_files` and fails while any generated file differs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cirlib.evidence import compare
from cirlib.paths import REPO_ROOT
from cirlib.utils.io import atomic_write_json, atomic_write_text

__all__ = [
    "COMPARISONS",
    "HELDOUT_COMPARISONS",
    "OPTION_COLUMNS",
    "generated_files",
    "load_reconstruction",
    "main",
    "option_table",
    "reconstruction_handout",
    "record_demo_timings",
    "replace_tables",
    "results_page",
    "stale_files",
    "timings_table",
]

RECONSTRUCTION_SOURCE = Path("docs/reconstruction.yaml")
RECONSTRUCTION_DOC = Path("docs/reconstruction.md")
HANDOUT = Path("docs/teaching/reconstruction_handout.md")
RESULTS_PAGE = Path("docs/teaching/results.md")
SESSION_PLAN = Path("docs/teaching/session_plan.md")
DEMO_TIMINGS = Path("benchmarks/results/demo_notebooks.json")
CLASS_READY = Path("benchmarks/results/class_ready.json")
GENERATE = "python -m cirlib.tools.handouts write"

#: The five cells of every option row: key in the YAML, header in reconstruction.md.
OPTION_COLUMNS = (("option", "option"), ("default", "default"), ("alternatives", "alternatives"),
                  ("why", "why the default"), ("evidence", "evidence"))
#: The handout's columns: what the summary says next to what we built.
HANDOUT_COLUMNS = (("option", "option"), ("summary", "the summary says"), ("default", "we built (default)"),
                   ("why", "why"), ("evidence", "evidence"))
#: The comparisons the chain of the method asks for, on seeds 0-2 (``results/results.json``):
#: (A, B, what A adds to B).
COMPARISONS = (
    ("has", "cam", "hiding patches"),
    ("complementary", "has", "using what HaS hides"),
    ("caam", "complementary", "CAAM alone"),
    ("ssam", "complementary", "SSAM alone"),
    ("ssam", "has", "SSAM's chain against HaS"),
    ("full", "ssam", "CAAM and the fusion loss on top of SSAM"),
    ("full", "has", "the whole method against HaS"),
    ("literal", "full", "the summary taken literally against our defaults"),
    ("fewshot", "full", "five boxed images per class against the whole method"),
)
#: The same question on the held-out seeds 3-5 (``results/heldout/results.json``), which chose nothing.
HELDOUT_COMPARISONS = (
    ("has", "cam", "hiding patches"),
    ("full", "has", "the whole method against HaS"),
)
_TABLE = re.compile(r"(<!-- table (\w+): [^\n]*-->\n)(.*?)(<!-- end table \2 -->)", re.S)


# -- the reconstruction table -------------------------------------------------------------------
def load_reconstruction(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{section key: {"heading", "rows"}}`` from ``docs/reconstruction.yaml``, every row checked.

    Raises:
        ValueError: a section without ``heading``/``rows`` or a row without one of the five cells,
            named by file, section and row.
    """
    import yaml

    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    sections = data.get("sections") if isinstance(data, dict) else None
    if not isinstance(sections, dict) or not sections:
        raise ValueError(f"{path}: no `sections:` mapping; every table is a section with `heading` and `rows`.")
    for key, section in sections.items():
        if not isinstance(section, dict) or not isinstance(section.get("heading"), str) or not section.get("rows"):
            raise ValueError(f"{path}: section {key!r} needs a `heading` (text) and a list of `rows`.")
        for i, row in enumerate(section["rows"]):
            missing = [k for k, _ in OPTION_COLUMNS if not isinstance(row.get(k), str) or not row[k].strip()]
            if missing:
                raise ValueError(f"{path}: section {key!r}, row {i + 1} ({row.get('option', '?')}): missing or empty "
                                 f"{', '.join(missing)} (write \"-\" for none).")
    return sections


def _markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def option_table(section: dict[str, Any]) -> str:
    """One section's table as ``docs/reconstruction.md`` shows it (option, default, alternatives, why, evidence)."""
    return _markdown_table([h for _, h in OPTION_COLUMNS], [[row[k] for k, _ in OPTION_COLUMNS]
                                                            for row in section["rows"]])


def replace_tables(text: str, sections: dict[str, dict[str, Any]], name: str = str(RECONSTRUCTION_DOC)) -> str:
    """``text`` with the table under every ``<!-- table KEY: ... -->`` marker rebuilt from ``sections``.

    Raises:
        ValueError: a marker names a section the YAML lacks, or a section has no marker.
    """
    found: set[str] = set()

    def rebuild(match: re.Match) -> str:
        key = match.group(2)
        if key not in sections:
            raise ValueError(f"{name}: marker `<!-- table {key}: -->` names no section of {RECONSTRUCTION_SOURCE}.")
        found.add(key)
        return f"{match.group(1)}{option_table(sections[key])}\n{match.group(4)}"

    out = _TABLE.sub(rebuild, text)
    unplaced = sorted(set(sections) - found)
    if unplaced:
        raise ValueError(f"{name}: no `<!-- table KEY: ... -->` ... `<!-- end table KEY -->` marker for "
                         f"{', '.join(unplaced)}; add one where the table belongs.")
    return out


def reconstruction_handout(sections: dict[str, dict[str, Any]]) -> str:
    """The handout: for every option the summary speaks to (or is silent on), its words against ours."""
    parts = [
        "# Handout: what the summary says, what we reconstructed",
        "",
        "The paper's full text and code are not available to us; what is known comes from its abstract and "
        "a reading summary. Everything else in `cirlib` is **our reconstruction**: a named option with a "
        "default. This handout puts the summary's words next to each choice we made; \"silent\" means the "
        "summary says nothing about it. The reasons and evidence in full, with the commands that reproduce "
        "them, are in [the reconstruction notes](../reconstruction.md), generated from the same table "
        f"(`{RECONSTRUCTION_SOURCE}`). \"[results]\" marks evidence from `make results` (seeds 0-2) and the "
        "held-out seeds 3-5; \"pending\" means no run has decided it yet.",
    ]
    for section in sections.values():
        rows = [r for r in section["rows"] if "summary" in r]
        if rows:
            parts += ["", f"## {section['heading']}", "",
                      _markdown_table([h for _, h in HANDOUT_COLUMNS],
                                      [[_on_the_handout(r[k]) for k, _ in HANDOUT_COLUMNS] for r in rows])]
    return "\n".join(parts) + "\n"


#: reconstruction.md's pointers to its own commands and prose, as the handout (which has neither) says them.
_POINTERS = (("commands below", "commands in the reconstruction notes"),
             ("command below", "command in the reconstruction notes"),
             (" (above)", ""))


def _on_the_handout(cell: str) -> str:
    for pointer, replacement in _POINTERS:
        cell = cell.replace(pointer, replacement)
    return cell


# -- the results one-pager ----------------------------------------------------------------------
@dataclass(frozen=True)
class _Scores:
    """Mean and sample std of MaxBoxAccV2 per method, read from a ``results.json``."""

    path: Path
    summary: dict[str, dict[str, Any]]

    def v2(self, method: str) -> tuple[float, float]:
        if method not in self.summary:
            raise ValueError(f"{self.path}: no {method!r} row; rerun the command that writes it "
                             "(see docs/reconstruction.md).")
        agg = self.summary[method]
        return float(agg["mean"]["maxboxacc_v2"]), float(agg["std"]["maxboxacc_v2"] or 0.0)

    def cell(self, method: str) -> str:
        mean, std = self.v2(method)
        return f"{mean:.1f} ± {std:.1f}"


def _load_scores(path: Path) -> _Scores:
    from cirlib.runs.results import load_results

    stored = load_results(path)
    if stored is None:
        raise FileNotFoundError(f"{path} does not exist: run `make results` (and the held-out run) first.")
    return _Scores(stored.path, stored.summary)


def _verdict_rows(scores: _Scores, comparisons: tuple[tuple[str, str, str], ...], numbers: bool) -> list[list[str]]:
    """One row per comparison; ``numbers`` writes each side's mean ± std (when no table above shows them)."""
    rows = []
    for a, b, question in comparisons:
        (mean_a, std_a), (mean_b, std_b) = scores.v2(a), scores.v2(b)
        result = compare(mean_a, mean_b, std_a, std_b)
        pair = (f"`{a}` ({scores.cell(a)}) against `{b}` ({scores.cell(b)})" if numbers
                else f"`{a}` against `{b}`")
        rows.append([pair, question, f"{result.gap:+.1f}", f"{result.spread:.1f}", result.verdict])
    return rows


def results_page(results: str | Path, heldout: str | Path,
                 figure: str = "../../figures/07_maxboxacc_vs_iou.png") -> str:
    """The results one-pager: the table, the curves, every gap of the chain read by the evidence rule."""
    from cirlib.runs.results import format_table

    main, held = _load_scores(Path(results)), _load_scores(Path(heldout))
    columns = ["maxboxacc_v2", "maxboxacc_50", "maxboxacc_70", "pxap", "top1", "train_time_s"]
    headers = ["MaxBoxAccV2", "what it asks", "gap", "spreads combined", "by the rule"]
    wsol = [m for m in main.summary if m != "fewshot"]
    best_wsol = max(wsol, key=lambda m: main.v2(m)[0])
    return "\n".join([
        "# Results on one page",
        "",
        "Ours, on the built-in synthetic dataset, never the paper's: percent on the test split, mean ± "
        "sample std over seeds 0, 1, 2 of `make results` (`results/results.json`; every column in "
        "`results/results.md`), one budget for all. MaxBoxAccV2: the mean of MaxBoxAcc at IoU 30, 50, 70 "
        "([metrics](../metrics.md)).",
        "",
        format_table(list(main.summary), seeds=main.summary, seed_columns=columns),
        "",
        "![MaxBoxAcc against the IoU threshold, seed 0](" + figure + ")",
        "",
        "*Seed 0 of the method's chain (notebook 07): the methods part where boxes must fit tightly.*",
        "",
        "## How to read it: one rule",
        "",
        "A gap between two rows counts only when it is larger than their two spreads combined "
        "(`cirlib.evidence`, stated in notebook 07); a smaller gap is \"not different\", whatever its sign. "
        "With three seeds the rule is deliberately conservative.",
        "",
        _markdown_table(headers, _verdict_rows(main, COMPARISONS, numbers=False)),
        "",
        "**The defaults were chosen on these seeds** and on the test split (the demo budget has no "
        "validation split), so the table above is optimistic for the chosen variants. Seeds 3-5 chose "
        "nothing (`results/heldout/results.json`):",
        "",
        _markdown_table(headers, _verdict_rows(held, HELDOUT_COMPARISONS, numbers=True)),
        "",
        f"**Beyond WSOL.** The best WSOL row is `{best_wsol}` ({main.cell(best_wsol)}); the few-shot "
        f"baseline, trained with five boxed images per class, gives {main.cell('fewshot')} "
        "(notebook 08, [other methods](../other_methods.md)). None of this says anything about CUB or "
        "ImageNet, where the paper's numbers live.",
    ]) + "\n"


# -- measured times for the session plan ---------------------------------------------------------
def record_demo_timings(timings: str | Path, out: str | Path) -> Path:
    """Keep a ``make demo``'s ``build/demo/timings.json`` (not committed: ``build/``) as ``out``.

    Raises:
        ValueError: the file has no ``notebook_seconds`` (not a ``make demo`` record).
    """
    timings = Path(timings)
    record = json.loads(timings.read_text(encoding="utf-8"))
    if not isinstance(record, dict) or not isinstance(record.get("notebook_seconds"), dict):
        raise ValueError(f"{timings}: no \"notebook_seconds\"; pass the timings.json that `make demo` writes "
                         "(build/demo/timings.json).")
    record = {"command": "make demo", "recorded_from": str(timings), **record}
    return atomic_write_json(out, record)


def timings_table(demo: dict[str, Any] | None, class_ready: dict[str, Any] | None = None) -> str:
    """The session plan's table of each notebook's measured run time (seconds), with where it came from.

    Args:
        demo: a ``make demo`` record (``{"notebook_seconds": {name: s}, "machine": ...}``), or ``None``.
        class_ready: ``benchmarks/class_ready.py``'s record (``{"notebooks": {name: {"seconds", "trained"}}}``),
            each notebook run on a fresh clone with the shipped checkpoints; ``None`` when not measured.
    """
    if demo is None:
        return (f"No `make demo` timings recorded yet: run `make demo`, then `{GENERATE} --demo-timings "
                "build/demo/timings.json`.")
    ready = (class_ready or {}).get("notebooks") or {}
    headers = ["notebook", "run time in `make demo` (s)"] + (["fresh clone, shipped checkpoints (s)"] if ready else [])
    rows = [[name.removesuffix(".ipynb"), f"{seconds:.0f}"] + ([_class_ready_cell(ready.get(name))] if ready else [])
            for name, seconds in demo["notebook_seconds"].items()]
    machine = demo.get("machine") or {}
    note = (f"Measured by `make demo` (each notebook run top to bottom with the demo parameters, its trained "
            f"runs already in `results/runs/`) on {machine.get('cpu_count', '?')} CPU cores "
            f"({machine.get('cpu', '?')}), recorded in `{DEMO_TIMINGS}`; other jobs on the machine make them longer.")
    if ready:
        note += (f" Fresh clone: `python benchmarks/class_ready.py` (`{CLASS_READY}`) runs each notebook as a "
                 "student's first, with its default parameters and the checkpoints the repository ships.")
    return _markdown_table(headers, rows) + "\n\n" + note


def _class_ready_cell(record: dict[str, Any] | None) -> str:
    if record is None:
        return "-"
    trained = record.get("trained") or record.get("training_announced")
    return f"{float(record['seconds']):.0f}" + (" (trained)" if trained else "")


def _replace_region(text: str, name: str, content: str, where: Path) -> str:
    pattern = re.compile(rf"(<!-- generated {name}: [^\n]*-->\n)(.*?)(<!-- end generated {name} -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"{where}: no `<!-- generated {name}: ... -->` ... `<!-- end generated {name} -->` markers.")
    return pattern.sub(lambda m: f"{m.group(1)}{content}\n{m.group(3)}", text)


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


# -- all of it ----------------------------------------------------------------------------------
def generated_files(root: str | Path = REPO_ROOT) -> dict[Path, str]:
    """``{path: the text it must have}`` for every generated file (paths relative to ``root``)."""
    root = Path(root)
    sections = load_reconstruction(root / RECONSTRUCTION_SOURCE)
    doc = (root / RECONSTRUCTION_DOC).read_text(encoding="utf-8")
    plan = (root / SESSION_PLAN).read_text(encoding="utf-8")
    timings = timings_table(_read_json(root / DEMO_TIMINGS), _read_json(root / CLASS_READY))
    return {
        RECONSTRUCTION_DOC: replace_tables(doc, sections),
        HANDOUT: reconstruction_handout(sections),
        RESULTS_PAGE: results_page(root / "results" / "results.json", root / "results" / "heldout" / "results.json"),
        SESSION_PLAN: _replace_region(plan, "timings", timings, SESSION_PLAN),
    }


def stale_files(root: str | Path = REPO_ROOT) -> list[Path]:
    """The generated files whose text differs from what their sources give now."""
    root = Path(root)
    return [path for path, text in generated_files(root).items()
            if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cirlib.tools.handouts", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="rewrite every generated file from its source")
    w.add_argument("--demo-timings", metavar="PATH",
                   help=f"first record a make demo's timings.json (build/demo/timings.json) as {DEMO_TIMINGS}")
    sub.add_parser("check", help="exit 1 naming each generated file that is stale")
    args = parser.parse_args(argv)
    try:
        if args.command == "write" and args.demo_timings:
            record_demo_timings(args.demo_timings, REPO_ROOT / DEMO_TIMINGS)
        stale = stale_files()
        if args.command == "check":
            for path in stale:
                print(f"{path}: stale; run `{GENERATE}`", file=sys.stderr)
            return 1 if stale else 0
        for path, text in generated_files().items():
            if path in stale:
                atomic_write_text(REPO_ROOT / path, text)
                print(f"wrote {path}")
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
