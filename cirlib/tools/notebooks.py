"""Run, check and hand out the teaching notebooks.

The notebooks in ``notebooks/`` are committed with their outputs stripped, except the cells tagged
``keep_output``: those print stable values (shapes, counts, a seeded tiny computation) in FAST mode and
are marked ``# NBVAL_CHECK_OUTPUT``, so ``nbval --nbval-lax`` compares exactly them.

Command line (``python -m cirlib.tools.notebooks ...`` or ``cirlib notebook ...``):

* ``run NOTEBOOK OUT [-y YAML]``   run one notebook headless with papermill and other parameters
* ``demo SRC OUT --figures DIR``   train the notebooks' runs in parallel (``--jobs``), then run every
  notebook in order (the ``make demo`` target)
* ``prepare-ci SRC OUT``           inject the FAST parameters for nbval (the ``make test`` target)
* ``check-stripped SRC``           fail if a notebook carries outputs other than its ``keep_output`` cells
* ``refresh-outputs SRC [--only NAME ...]`` re-run in FAST mode and store the ``keep_output`` cells' outputs
* ``student SRC OUT``              copies with the exercise solutions removed (cells tagged ``solution``)
* ``check-figures DIR``            fail if an executed notebook in DIR shows fewer figures than its cells draw
* ``kernel [--prefix P]``          register this environment as the Jupyter kernel "cirlib" (``make kernel``)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import yaml

from cirlib.utils.io import atomic_write_json

#: The kernel the committed notebooks name and papermill / nbval run: the interpreter running this code
#: (Jupyter's "python3" is always the current environment's), so a clean clone needs no registration.
KERNEL_NAME = "python3"
#: The named kernel ``make kernel`` registers, for a JupyterLab that is not this project's.
PROJECT_KERNEL_NAME = "cirlib"
PROJECT_KERNEL_DISPLAY_NAME = "Python (cirlib)"
#: Parameters every notebook declares in its ``parameters`` cell (docs/design.md#notebook-conventions).
COMMON_PARAMETERS = ("FAST", "SEED", "DEVICE", "DATA", "DATA_ROOT", "EPOCHS", "INTERACTIVE", "OUTPUT_DIR",
                     "PRETRAINED", "VAL_SPLIT")
#: The tiny CI run that nbval executes.
FAST_PARAMETERS: dict[str, Any] = {"FAST": True, "INTERACTIVE": False, "DEVICE": "cpu", "SEED": 0}
#: The ``make demo`` run: meaningful budgets, one seed, no widgets.
DEMO_PARAMETERS: dict[str, Any] = {"FAST": False, "INTERACTIVE": False, "SEED": 0}
#: Keys papermill and Jupyter add that never belong in a committed notebook.
EXTRA_STRIP_KEYS = (
    "metadata.papermill",
    "cell.metadata.papermill",
    "metadata.language_info.version",
    "metadata.widgets",
    "cell.metadata.execution",
)
SOLUTION_TAG = "solution"
#: Cells the browser tests append to a notebook (the kernel check); never part of the site or a deck.
BROWSER_CHECK_TAG = "browser-check"
#: Mime type of a live widget: a static page has no kernel to drive it, so the site and the slide decks
#: drop these outputs; every widget cell draws its static figure with the default values first.
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
KEEP_OUTPUT_TAG = "keep_output"
STUDENT_PLACEHOLDER = "# YOUR CODE HERE: replace this line with your answer, then run the checker below.\n"


def list_notebooks(folder: str | os.PathLike) -> list[Path]:
    """The numbered teaching notebooks (``NN_name.ipynb``) in ``folder``, in reading order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"Notebook folder {folder} does not exist (expected the repository's notebooks/).")
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"No numbered notebooks (NN_name.ipynb) in {folder}.")
    return notebooks


def check_executed(notebooks: list[Path]) -> None:
    """Refuse notebooks that were not executed (the committed copies carry almost no outputs)."""
    import nbformat

    for path in notebooks:
        nb = nbformat.read(str(path), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not any(c.get("execution_count") for c in code):
            raise ValueError(
                f"{path}: not an executed notebook (no cell has an execution count); build the site from "
                f"the copies `make demo` writes to build/demo, or run the notebook with papermill first."
            )


def _read(path: Path):
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _write(nb, path: Path) -> None:
    import nbformat

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    nbformat.write(nb, str(tmp))
    os.replace(tmp, path)


def declared_parameters(path: str | os.PathLike) -> dict[str, str]:
    """Names declared in a notebook's ``parameters`` cell, mapped to their source line."""
    nb = _read(Path(path))
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if not cells:
        raise ValueError(f"{path}: no cell tagged 'parameters'; papermill cannot parameterise it.")
    names: dict[str, str] = {}
    for line in cells[0].source.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if not stripped or "=" not in stripped:
            continue
        target = stripped.split("=", 1)[0].split(":", 1)[0].strip()
        if target.isidentifier():
            names[target] = line
    return names


def check_parameters(path: str | os.PathLike, parameters: dict[str, Any]) -> None:
    """Refuse parameters a notebook does not declare (papermill would silently add them)."""
    import difflib

    declared = declared_parameters(path)
    for name in parameters:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{path}: unknown parameter {name!r}.{hint} Declared parameters: {', '.join(declared)}."
            )


class NotebookExecutionError(RuntimeError):
    """A cell raised while papermill ran a notebook; the message is one line with the cell's error."""


def run_notebook(
    source: str | os.PathLike,
    output: str | os.PathLike,
    parameters: dict[str, Any] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: int | None = 1800,
    prepare_only: bool = False,
) -> float:
    """Run ``source`` headless with papermill, writing the executed copy to ``output``.

    Args:
        source: notebook to run.
        output: where the executed (or, with ``prepare_only``, parameterised) copy goes.
        parameters: values for the ``parameters`` cell; unknown names are an error.
        cwd: working directory of the kernel (default: the source notebook's folder).
        timeout: per-cell timeout in seconds.
        prepare_only: only inject the parameters (what ``nbval`` then executes).

    Returns:
        The wall time in seconds.
    """
    import papermill

    source, output = Path(source), Path(output)
    parameters = dict(parameters or {})
    check_parameters(source, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            language="python",
            cwd=str(cwd or source.parent),
            prepare_only=prepare_only,
            execution_timeout=timeout,
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as exc:
        # papermill's message repeats the cell's whole traceback; the error itself is its last line.
        message = next((line for line in str(exc.evalue).splitlines() if line.strip()), "")
        raise NotebookExecutionError(
            f"{source.name}, cell {exc.exec_count}: {exc.ename}: {message} (traceback in the executed copy {output})"
        ) from None
    return time.perf_counter() - start


def prepare_ci(source_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Inject the FAST parameters into copies of every notebook, for ``nbval`` to execute once.

    The student copies (solutions removed, see :func:`make_student_copies`) go to ``out_dir/student``
    with the same parameters and run folder: nbval runs them after the notebooks, so a student copy
    that stops on an unanswered exercise fails CI.
    """
    out_dir = Path(out_dir).resolve()
    artifacts = out_dir / "artifacts"
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        students = {p.name: p for p in make_student_copies(source_dir, tmp)}
        for notebook in list_notebooks(source_dir):
            params = dict(FAST_PARAMETERS, OUTPUT_DIR=str(artifacts))
            params = {k: v for k, v in params.items() if k in declared_parameters(notebook)}
            target = out_dir / notebook.name
            run_notebook(notebook, target, params, prepare_only=True)
            _mark_reference_outputs(target)
            student = out_dir / "student" / notebook.name
            run_notebook(students[notebook.name], student, params, prepare_only=True)
            written += [target, student]
    return written


def _mark_reference_outputs(path: Path) -> None:
    """Give the committed (checked) outputs an execution count.

    Committed notebooks carry no execution counts, and nbval refuses a cell that has outputs but no
    count ("Unrun reference cell has outputs"), so the prepared copy numbers those cells.
    """
    nb = _read(path)
    for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        if cell.get("outputs"):
            cell.execution_count = count
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = count
    _write(nb, path)


def pretrain_demo_runs(runs_dir: str | os.PathLike, parameters: dict[str, Any] | None = None,
                       jobs: int = 2) -> float:
    """Train every run the demo notebooks need, ``jobs`` at a time; return the wall time.

    The runs are those of :func:`cirlib.runs.experiments.demo_configs` for the notebooks' ``SEED``,
    ``FAST``, ``EPOCHS``, ``DEVICE`` and ``ABLATION_EPOCHS`` in ``parameters``, trained by
    :func:`cirlib.runs.pool.run_many` (the pool of ``make results`` too); finished runs are reused.
    A worker trains on one thread, as a notebook does when it trains itself, so the numbers are the
    same either way. Only for ``DATA="synthetic"``.
    """
    from cirlib.runs.experiments import demo_configs
    from cirlib.runs.pool import run_many

    params = dict(parameters or {})
    start = time.perf_counter()
    if params.get("DATA", "synthetic") != "synthetic" or jobs < 1:
        return 0.0
    configs = demo_configs(
        seed=int(params.get("SEED", 0)), output_dir=runs_dir, fast=bool(params.get("FAST", False)),
        epochs=int(params.get("EPOCHS") or 0) or None, device=str(params.get("DEVICE", "auto")),
        ablation_epochs=int(params.get("ABLATION_EPOCHS") or 0),
    )
    print(f"[demo] training {len(configs)} runs first ({jobs} at a time; finished runs are reused) ...",
          flush=True)
    for _, record in run_many(configs, jobs):
        done = "reused" if record["reused"] else f"trained in {record['seconds']:.0f} s"
        print(f"[demo]   {done}: {record['output_dir']}", flush=True)
    return time.perf_counter() - start


def run_demo(
    source_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    figures_dir: str | os.PathLike = "figures",
    extra_parameters: dict[str, Any] | None = None,
    only: Iterable[str] | None = None,
    runs_dir: str | os.PathLike | None = None,
    pretrain_jobs: int = 2,
) -> dict[str, Any]:
    """Run every notebook in order with the demo parameters; return and write the wall times.

    First the runs every notebook needs are trained in ``pretrain_jobs`` parallel processes
    (:func:`pretrain_demo_runs`; 0 leaves the training to the notebooks); the notebooks then reuse
    the checkpoints in ``OUTPUT_DIR`` (``runs_dir``, default ``out_dir/artifacts``), so a model is
    trained once. ``make demo`` and ``make results`` share ``results/runs``: the seed-0 models of one
    are reused by the other. Each notebook may write ``OUTPUT_DIR/summary/<notebook>.json``; the
    summaries are printed at the end.
    """
    from cirlib.runs.machine import machine_description

    out_dir = Path(out_dir).resolve()
    artifacts = Path(runs_dir).resolve() if runs_dir else out_dir / "artifacts"
    figures = Path(figures_dir).resolve()
    timings: dict[str, float] = {}
    total = time.perf_counter()
    demo_params = dict(DEMO_PARAMETERS, **(extra_parameters or {}))
    pretrain_seconds = pretrain_demo_runs(artifacts, demo_params, jobs=pretrain_jobs) if not only else 0.0
    for notebook in list_notebooks(source_dir):
        if only and not any(notebook.name.startswith(prefix) for prefix in only):
            continue
        declared = declared_parameters(notebook)
        params = dict(DEMO_PARAMETERS, OUTPUT_DIR=str(artifacts), FIGURES_DIR=str(figures))
        params.update(extra_parameters or {})
        params = {k: v for k, v in params.items() if k in declared}
        print(f"[demo] running {notebook.name} ...", flush=True)
        seconds = run_notebook(notebook, out_dir / notebook.name, params)
        timings[notebook.name] = round(seconds, 1)
        print(f"[demo] {notebook.name} finished in {seconds / 60:.1f} min", flush=True)
    record = {
        "pretrain_seconds": round(pretrain_seconds, 1),
        "pretrain_jobs": pretrain_jobs,
        "notebook_seconds": timings,
        "total_seconds": round(time.perf_counter() - total, 1),
        "machine": machine_description(),
    }
    atomic_write_json(out_dir / "timings.json", record)
    _print_summaries(artifacts / "summary")
    _report_figures(out_dir, [out_dir / n for n in timings])
    print(f"[demo] all notebooks in {record['total_seconds'] / 60:.1f} min; executed copies in {out_dir}, "
          f"figures in {figures}")
    return record


def _report_figures(out_dir: Path, paths: list[Path]) -> None:
    """Print the figures each executed notebook shows; fail when a figure cell showed none."""
    from cirlib.tools.figure_check import check_notebook

    reports = [check_notebook(p) for p in paths if p.exists()]
    for report in reports:
        print(f"[demo] figures: {report.line()}")
    missing = [r for r in reports if not r.ok]
    if missing:
        raise RuntimeError(f"{len(missing)} executed notebook(s) in {out_dir} show fewer figures than their cells "
                           "draw (see the lines above); does every notebook call cirlib.notebook.setup(globals()) (it draws inline)?")


def install_kernel(prefix: str | os.PathLike | None = None, user: bool = True) -> Path:
    """Register this interpreter as the Jupyter kernel ``cirlib`` ("Python (cirlib)").

    Any JupyterLab (not only ``make lab``'s) then offers the project's environment as a kernel.
    The notebooks' own metadata keeps ``python3`` (see :data:`KERNEL_NAME`).

    Args:
        prefix: install under ``PREFIX/share/jupyter/kernels`` (a virtual environment, a test folder).
        user: without ``prefix``, install for the current user (``~/.local/share/jupyter``).

    Returns:
        The kernel's folder (holding ``kernel.json``).
    """
    from ipykernel.kernelspec import install

    path = install(kernel_name=PROJECT_KERNEL_NAME, display_name=PROJECT_KERNEL_DISPLAY_NAME,
                   prefix=str(prefix) if prefix else None, user=bool(user and not prefix))
    return Path(path)


def _print_summaries(folder: Path) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        with open(path) as handle:
            summary = json.load(handle)
        print(f"[demo] {path.stem}: {json.dumps(summary)}")


def _stripped_copy(nb):
    from nbstripout import strip_output

    return strip_output(
        copy.deepcopy(nb),
        keep_output=False,
        keep_count=False,
        keep_id=False,
        extra_keys=list(EXTRA_STRIP_KEYS),
    )


def check_stripped(source_dir: str | os.PathLike) -> list[str]:
    """Names of notebooks whose committed form is not what the stripper would write."""
    import nbformat

    problems = []
    for notebook in list_notebooks(source_dir):
        nb = _read(notebook)
        if nbformat.writes(_stripped_copy(nb)) != nbformat.writes(nb):
            problems.append(str(notebook))
        if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
            problems.append(f"{notebook} (no cell tagged 'parameters')")
    return problems


def strip_notebooks(source_dir: str | os.PathLike) -> None:
    """Strip outputs (but those of ``keep_output`` cells) and volatile metadata, in place."""
    for notebook in list_notebooks(source_dir):
        _write(_stripped_copy(_read(notebook)), notebook)


def refresh_outputs(source_dir: str | os.PathLike, work_dir: str | os.PathLike = "build/refresh",
                    only: Iterable[str] | None = None) -> None:
    """Execute every notebook (or those named in ``only``) in FAST mode; store its ``keep_output`` outputs.

    Run this after editing a checked cell; nbval then compares the CI run against these outputs.
    """
    work_dir = Path(work_dir).resolve()
    wanted = {Path(name).stem for name in only} if only else None
    notebooks = [p for p in list_notebooks(source_dir) if wanted is None or p.stem in wanted]
    if wanted and len(notebooks) != len(wanted):
        raise FileNotFoundError(f"--only {sorted(wanted)}: not all are notebooks of {source_dir}")
    for notebook in notebooks:
        params = dict(FAST_PARAMETERS, OUTPUT_DIR=str(work_dir / "artifacts"))
        params = {k: v for k, v in params.items() if k in declared_parameters(notebook)}
        executed_path = work_dir / notebook.name
        run_notebook(notebook, executed_path, params)
        executed = _read(executed_path)
        executed_cells = [c for c in executed.cells if "injected-parameters" not in c.metadata.get("tags", [])]
        source = _read(notebook)
        if len(executed_cells) != len(source.cells):
            raise RuntimeError(f"{notebook}: cell count changed while executing; cannot map outputs back.")
        for cell, done in zip(source.cells, executed_cells):
            if cell.cell_type == "code":
                cell.outputs = done.outputs if KEEP_OUTPUT_TAG in cell.metadata.get("tags", []) else []
        _write(_stripped_copy(source), notebook)
        print(f"refreshed {notebook}")


def make_student_copies(source_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Copies of the notebooks with every ``solution``-tagged cell's code replaced by a placeholder.

    The checker cells stay, so a student runs them to verify an answer. Outputs are stripped.
    """
    out_dir = Path(out_dir)
    written = []
    for notebook in list_notebooks(source_dir):
        nb = _stripped_copy(_read(notebook))
        for cell in nb.cells:
            tags = cell.metadata.get("tags", [])
            if SOLUTION_TAG in tags:
                cell.source = STUDENT_PLACEHOLDER + _solution_stub(cell.source)
                cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs", [])
            if KEEP_OUTPUT_TAG in tags:  # a student runs it: no stored output, no nbval marker
                cell.outputs = []
                cell.source = cell.source.removeprefix("# NBVAL_CHECK_OUTPUT\n")
                tags.remove(KEEP_OUTPUT_TAG)
        target = out_dir / notebook.name
        _write(nb, target)
        written.append(target)
    return written


def _solution_stub(source: str) -> str:
    """Keep the assignment targets of a solution cell (``answer_1 = ...``) so checkers fail cleanly."""
    lines = []
    for line in source.splitlines():
        head = line.split("#", 1)[0]
        if "=" in head and not line.startswith((" ", "\t")) and head.split("=", 1)[0].strip().isidentifier():
            lines.append(f"{head.split('=', 1)[0].strip()} = None")
    return "\n".join(lines) + ("\n" if lines else "")


def _parse_yaml_parameters(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    from cirlib.config import load_yaml

    try:
        value = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"-y {text!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise ValueError(f"-y expects a YAML mapping such as '{{FAST: true, EPOCHS: 2}}', got {text!r}")
    return value


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``notebook`` command line (also used by ``cirlib notebook``)."""
    parser = parser or argparse.ArgumentParser(prog="python -m cirlib.tools.notebooks", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="notebook_command", required=True)
    run = sub.add_parser("run", help="run one notebook headless with other parameters")
    run.add_argument("notebook")
    run.add_argument("output")
    run.add_argument("-y", "--parameters", help="YAML mapping, e.g. \"{FAST: false, EPOCHS: 5, SEED: 1}\"")
    demo = sub.add_parser("demo", help="run every notebook in order with the demo parameters")
    demo.add_argument("source", nargs="?", default="notebooks")
    demo.add_argument("output", nargs="?", default="build/demo")
    demo.add_argument("--figures", default="figures")
    demo.add_argument("-y", "--parameters", help="YAML mapping applied to every notebook")
    demo.add_argument("--only", nargs="*", help="notebook name prefixes to run, e.g. 00 01")
    demo.add_argument("--runs", default=None,
                      help="OUTPUT_DIR of the notebooks: trained runs and summaries (default OUTPUT/artifacts)")
    demo.add_argument("--jobs", type=int, default=2,
                      help="train the notebooks' runs first in this many processes, one core each "
                           "(0: the notebooks train them one after the other)")
    ci = sub.add_parser("prepare-ci", help="inject FAST parameters for nbval")
    ci.add_argument("source", nargs="?", default="notebooks")
    ci.add_argument("output", nargs="?", default="build/nbval")
    check = sub.add_parser("check-stripped", help="fail if outputs other than keep_output cells are committed")
    check.add_argument("source", nargs="?", default="notebooks")
    strip = sub.add_parser("strip", help="strip outputs and volatile metadata in place")
    strip.add_argument("source", nargs="?", default="notebooks")
    refresh = sub.add_parser("refresh-outputs", help="re-run FAST and store keep_output cells' outputs")
    refresh.add_argument("source", nargs="?", default="notebooks")
    refresh.add_argument("--only", nargs="+", metavar="NAME", default=None,
                         help="refresh only these notebooks of SOURCE (file names or stems, e.g. 01_cam_baseline)")
    refresh.add_argument("--work-dir", default="build/refresh", help="where the FAST runs go (default build/refresh)")
    student = sub.add_parser("student", help="copies with exercise solutions removed")
    student.add_argument("source", nargs="?", default="notebooks")
    student.add_argument("output", nargs="?", default="build/student")
    figures = sub.add_parser("check-figures", help="fail if executed notebooks show fewer figures than they draw")
    figures.add_argument("folder", nargs="?", default="build/demo")
    kernel = sub.add_parser("kernel", help='register this environment as the Jupyter kernel "cirlib"')
    kernel.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels instead of the user folder")
    return parser


def main_from_args(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``notebook`` command."""
    command = args.notebook_command
    if command == "run":
        seconds = run_notebook(args.notebook, args.output, _parse_yaml_parameters(args.parameters))
        print(f"{args.notebook} -> {args.output} in {seconds:.1f} s")
    elif command == "demo":
        run_demo(args.source, args.output, args.figures, _parse_yaml_parameters(args.parameters), args.only,
                 args.runs, pretrain_jobs=args.jobs)
    elif command == "prepare-ci":
        for path in prepare_ci(args.source, args.output):
            print(f"prepared {path}")
    elif command == "check-stripped":
        problems = check_stripped(args.source)
        if problems:
            print("These notebooks carry outputs or metadata that must not be committed:\n  "
                  + "\n  ".join(problems)
                  + "\nFix: python -m cirlib.tools.notebooks strip (or refresh-outputs after editing a checked cell).",
                  file=sys.stderr)
            return 1
        print(f"{len(list_notebooks(args.source))} notebooks are stripped")
    elif command == "strip":
        strip_notebooks(args.source)
    elif command == "refresh-outputs":
        refresh_outputs(args.source, args.work_dir, only=args.only)
    elif command == "student":
        for path in make_student_copies(args.source, args.output):
            print(f"student copy {path}")
    elif command == "check-figures":
        from cirlib.tools.figure_check import check_folder

        try:
            reports = check_folder(args.folder)
        except FileNotFoundError as error:
            print(error, file=sys.stderr)
            return 2
        for report in reports:
            print(report.line())
        if not all(r.ok for r in reports):
            print(f"Some notebooks in {args.folder} show fewer figures than their cells draw. Fix: call "
                  "cirlib.notebook.setup(globals()) after the parameters cell: it sets `%matplotlib inline` "
                  "(a kernel with MPLBACKEND=Agg draws nothing otherwise).",
                  file=sys.stderr)
            return 1
    elif command == "kernel":
        path = install_kernel(prefix=args.prefix)
        print(f'kernel "{PROJECT_KERNEL_NAME}" ({PROJECT_KERNEL_DISPLAY_NAME}) -> {sys.executable}, spec in {path}')
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m cirlib.tools.notebooks``."""
    return main_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
