r"""``make results``: every variant of the ablation, several seeds, one shared budget.

Usage::

    python -m cirlib.runs.results --out results [--seeds 0 1 2] [--methods cam has ...] [--jobs 2] [--fast]
    python -m cirlib.runs.results --out results --render-only   # results.md and .csv from results.json

Every (method, seed) pair is trained through :func:`cirlib.runs.experiments.experiment_config` and
:func:`cirlib.runs.cache.train_or_load` with the budget of :data:`cirlib.runs.experiments.BUDGETS`
(``"demo"``, or ``"fast"`` with ``--fast``), so the runs are exactly those the notebooks train and
reuse. The methods are the registry's ``in_results`` rows (:mod:`cirlib.methods.registry`). Runs
live in ``<out>/runs/`` and a finished run is reused, never retrained. ``--jobs`` worker processes
of :func:`cirlib.runs.pool.run_many` run in parallel, one core each, so a 2-core machine runs two
trainings at a time.

Written atomically into ``<out>/`` after every finished run (``"complete": false`` and a
"Partial" note until the last one, so an interrupted run leaves what it has):

* ``results.json``: per run and aggregated over seeds (mean and sample standard deviation
  :math:`s = \sqrt{\tfrac{1}{n-1}\sum_i (x_i - \bar x)^2}`, 0 for one seed) of MaxBoxAcc at IoU
  30/50/70, MaxBoxAccV2, PxAP, top-1, GT-known Loc, Top-1 Loc and the training time per run, plus the
  wall time of the whole command and a description of the machine;
* ``results.csv``: one row per run, then one ``mean`` and one ``std`` row per method;
* ``results.md``: a Markdown table, mean :math:`\pm` std per method (:func:`format_table`).

The results layer is this module: one column table (:data:`COLUMNS`), one table formatter
(:func:`format_table`, also for the notebooks' tables of one run) and one reader of
``results.json`` (:func:`load_results`).

Seeds make it reproducible: the same seed gives the same numbers (single-threaded CPU training).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cirlib.methods.registry import METHODS, RESULTS_METHODS, get_spec
from cirlib.paths import RESULTS_DIR
from cirlib.runs.experiments import BUDGETS, experiment_config
from cirlib.runs.machine import machine_description
from cirlib.runs.pool import run_many
from cirlib.utils.choices import validate_choice
from cirlib.utils.io import atomic_write_json, atomic_write_text

__all__ = [
    "COLUMNS",
    "Column",
    "StoredResults",
    "aggregate",
    "flat_metrics",
    "format_table",
    "load_results",
    "main",
    "render_results",
    "run_results",
    "synthetic_config_yaml",
    "write_synthetic_configs",
]


@dataclass(frozen=True)
class Column:
    """One column of every results table.

    Attributes:
        key: its key in a run's row and in the summary of ``results.json`` (``"maxboxacc_v2"``).
        label: its header in the tables (``"MaxBoxAccV2"``).
        digits: decimals shown (1 for the metrics in %, 0 for seconds).
    """

    key: str
    label: str
    digits: int = 1


#: The one column table: what ``results.json`` stores per run and per method, and how tables show it.
COLUMNS: tuple[Column, ...] = (
    Column("maxboxacc_30", "MaxBoxAcc@30"),
    Column("maxboxacc_50", "MaxBoxAcc@50"),
    Column("maxboxacc_70", "MaxBoxAcc@70"),
    Column("maxboxacc_v2", "MaxBoxAccV2"),
    Column("pxap", "PxAP"),
    Column("top1", "top-1"),
    Column("gt_known_loc", "GT-known Loc"),
    Column("top1_loc", "Top-1 Loc"),
    Column("train_time_s", "train time (s)", digits=0),
)
_COLUMN = {c.key: c for c in COLUMNS}
#: The columns that are percentages (every one but the train time): a value outside [0, 100] is a broken run.
_PERCENT = tuple(c.key for c in COLUMNS if c.key != "train_time_s")


def flat_metrics(test: dict[str, Any]) -> dict[str, float | None]:
    """The evaluator's test metrics (``{"maxboxacc": {"30": ..}, "maxboxacc_v2": .., ...}``) by column key.

    Returns:
        ``{key: value}`` for every column but the train time; ``None`` where a metric is missing or NaN.
    """
    box = test.get("maxboxacc") or {}
    out: dict[str, float | None] = {f"maxboxacc_{k}": _num(box.get(k)) for k in ("30", "50", "70")}
    for key in ("maxboxacc_v2", "pxap", "top1", "gt_known_loc", "top1_loc"):
        out[key] = _num(test.get(key))
    return out


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _row(method: str, seed: int, record: dict[str, Any]) -> dict[str, Any]:
    """One run's row of ``results.json`` from :func:`cirlib.runs.pool.train_one`'s record."""
    row: dict[str, Any] = {
        "method": method,
        "seed": int(seed),
        "run_dir": record["output_dir"],
        "reused": record["reused"],
        "train_time_s": record["train_time_s"],
        "cpu_time_s": record["cpu_time_s"],
    }
    row.update(flat_metrics(record["metrics"]))
    return row


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def aggregate(runs: Sequence[dict[str, Any]], methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Mean and sample standard deviation over seeds of every column, per method.

    Returns:
        ``{method: {"seeds": [...], "n": int, "mean": {key: value}, "std": {key: value}}}``.
    """
    summary: dict[str, dict[str, Any]] = {}
    for method in methods:
        rows = [r for r in runs if r["method"] == method]
        if not rows:
            continue
        mean, std = {}, {}
        for column in COLUMNS:
            mean[column.key], std[column.key] = _mean_std([r.get(column.key) for r in rows])
        summary[method] = {"seeds": sorted(r["seed"] for r in rows), "n": len(rows), "mean": mean, "std": std}
    return summary


@dataclass(frozen=True)
class StoredResults:
    """``results.json`` of ``make results``, read back (:func:`load_results`).

    Attributes:
        path: the file read.
        payload: everything it holds (``"budget"``, ``"seeds"``, ``"runs"``, ``"summary"``, ``"machine"``, ...).
    """

    path: Path
    payload: dict[str, Any]

    @property
    def summary(self) -> dict[str, dict[str, Any]]:
        """``{method: {"seeds", "n", "mean", "std"}}`` over the seeds (:func:`aggregate`)."""
        return self.payload.get("summary") or {}

    @property
    def budget(self) -> str | None:
        """The budget the runs were trained with (``"demo"`` or ``"fast"``)."""
        return self.payload.get("budget")


def load_results(path: str | os.PathLike = RESULTS_DIR) -> StoredResults | None:
    """Read ``make results``' ``results.json``; ``None`` when there is none yet.

    Args:
        path: the results folder (``results/``, the default) or the ``results.json`` file itself.

    Raises:
        ValueError: the file exists but is not a results file (one line naming it and the fix).
    """
    path = Path(path)
    file = path / "results.json" if path.is_dir() or not path.suffix else path
    if not file.is_file():
        return None
    try:
        payload = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{file}: cannot be read as JSON ({exc}); restore it with git or rerun `make results`."
                         ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("summary"), dict) or "runs" not in payload:
        raise ValueError(f"{file}: not a results file of `make results` (no \"summary\" and \"runs\"); "
                         "point RESULTS_FILE at results/results.json or rerun `make results`.")
    return StoredResults(file, payload)


def _cell(value: float | None, spread: float | None = None, digits: int = 1) -> str:
    """``-`` for a missing value, else ``62.1`` or, with a spread, ``62.1 ± 1.5``."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if spread is None else f"{value:.{digits}f} ± {spread:.{digits}f}"


def format_table(
    methods: Sequence[str],
    *,
    seeds: dict[str, dict[str, Any]] | None = None,
    this_run: dict[str, dict[str, Any]] | None = None,
    seed_columns: Sequence[str] = (),
    run_columns: Sequence[str] = (),
    labels: dict[str, str] | None = None,
    extra: dict[str, dict[str, str]] | None = None,
) -> str:
    """The one results table, in Markdown: seeds of ``make results`` and / or one run, one row per method.

    Columns, left to right: ``method``; with ``seed_columns``, ``seeds`` (how many) and each column as
    "mean ± sample std" over the seeds; with ``run_columns``, each column of this run; then ``extra``.
    When a table has both kinds, headers say "(seeds)" or "(this run)". ``results/results.md`` is
    ``format_table(methods, seeds=summary, seed_columns=[c.key for c in COLUMNS])``.

    Args:
        methods: rows, in order.
        seeds: ``{method: {"n", "mean", "std"}}`` (:attr:`StoredResults.summary`); a method without
            an entry gets ``0`` seeds and ``-``.
        this_run: ``{method: the evaluator's test metrics}`` (``train_or_load(...).metrics``).
        seed_columns, run_columns: keys of :data:`COLUMNS`.
        labels: row names, ``{method: label}`` (default: the method names).
        extra: more columns, ``{header: {method: text}}`` (``-`` where a method has none).

    Returns:
        The table, one line per row, no trailing newline.

    Raises:
        ValueError: an unknown column, or a percentage of this run outside [0, 100] (a broken run).
    """
    unknown = [k for k in (*seed_columns, *run_columns) if k not in _COLUMN]
    if unknown:
        raise ValueError(f"format_table: unknown columns {unknown}; valid: {', '.join(_COLUMN)}.")
    seeds, this_run, labels, extra = seeds or {}, this_run or {}, labels or {}, extra or {}
    both = bool(seed_columns) and bool(run_columns)
    header = ["method"] + (["seeds"] if seed_columns else [])
    header += [_COLUMN[k].label + (" (seeds)" if both else "") for k in seed_columns]
    header += [_COLUMN[k].label + (" (this run)" if both else "") for k in run_columns]
    header += list(extra)
    rows = []
    for method in methods:
        agg = seeds.get(method) or {}
        mean, std = agg.get("mean") or {}, agg.get("std") or {}
        row = [labels.get(method, method)] + ([str(agg.get("n", 0))] if seed_columns else [])
        for key in seed_columns:
            value = mean.get(key)
            row.append(_cell(value, std.get(key) or 0.0, _COLUMN[key].digits) if value is not None else "-")
        values = flat_metrics(this_run[method]) if run_columns else {}
        for key in run_columns:
            value = values.get(key)
            if value is not None and key in _PERCENT and not 0.0 <= value <= 100.0:
                raise ValueError(f"format_table: {method} has {_COLUMN[key].label} = {value}, outside [0, 100] %.")
            row.append(_cell(value, None, _COLUMN[key].digits))
        row += [extra[name].get(method) or "-" for name in extra]
        rows.append(row)
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def _format_csv(runs: Sequence[dict[str, Any]], summary: dict[str, dict[str, Any]]) -> str:
    keys = [c.key for c in COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "seed", *keys])
    for r in runs:
        writer.writerow([r["method"], r["seed"], *[_csv(r.get(k)) for k in keys]])
    for method, agg in summary.items():
        writer.writerow([method, "mean", *[_csv(agg["mean"].get(k)) for k in keys]])
        writer.writerow([method, "std", *[_csv(agg["std"].get(k)) for k in keys]])
    return buffer.getvalue()


def _csv(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _format_markdown(payload: dict[str, Any]) -> str:
    """``results.md``: what was run and where, then :func:`format_table` of every column over the seeds."""
    machine = payload.get("machine") or {}
    status = "" if payload.get("complete", True) else f" **Partial: {len(payload['runs'])} runs finished so far.**"
    header = (
        f"MaxBoxAcc, PxAP, accuracies in %, mean ± std over seeds {payload['seeds']}; budget `{payload['budget']}`; "
        f"wall time {payload['wall_time_s'] / 60:.1f} min with {payload['jobs']} jobs on {machine.get('cpu_count')} "
        f"cores ({machine.get('cpu')}).{status}"
    )
    table = format_table(list(payload["summary"]), seeds=payload["summary"], seed_columns=[c.key for c in COLUMNS])
    return f"{header}\n\n{table}\n"


def render_results(out: str | os.PathLike = RESULTS_DIR) -> list[Path]:
    """Write ``<out>/results.md`` and ``<out>/results.csv`` again from ``<out>/results.json``, without training.

    Raises:
        FileNotFoundError: ``<out>`` has no ``results.json``.
    """
    stored = load_results(out)
    if stored is None:
        raise FileNotFoundError(f"{Path(out) / 'results.json'} does not exist: run `make results` first.")
    return _render_files(stored.path.parent, stored.payload)


def _render_files(out: Path, payload: dict[str, Any]) -> list[Path]:
    return [atomic_write_text(out / "results.csv", _format_csv(payload["runs"], payload["summary"])),
            atomic_write_text(out / "results.md", _format_markdown(payload))]


def run_results(
    out: str | os.PathLike = "results",
    seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] = RESULTS_METHODS,
    jobs: int = 2,
    fast: bool = False,
    log=print,
) -> dict[str, Any]:
    """Train every ``(method, seed)``, ``jobs`` at a time, and write the results files.

    Returns:
        The ``results.json`` payload.
    """
    for method in methods:
        validate_choice("--methods", method, METHODS)
    if int(jobs) < 1:
        raise ValueError(f"cirlib.runs.results: --jobs must be >= 1, got {jobs}.")
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    configs = [experiment_config(m, seed=int(s), fast=fast, output_dir=out / "runs", device="cpu")
               for m in methods for s in seeds]
    machine_start = machine_description()
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    for config, record in run_many(configs, jobs):
        runs.append(_row(config.model.method, config.seed, record))
        log(_progress(runs[-1], len(runs), len(configs), start))
        _write_files(out, runs, methods, seeds, jobs, fast, machine_start, time.perf_counter() - start,
                     complete=len(runs) == len(configs))
    payload = _write_files(out, runs, methods, seeds, jobs, fast, machine_start, time.perf_counter() - start,
                           complete=True)
    log(f"wrote {out / 'results.json'}, results.csv, results.md in {payload['wall_time_s'] / 60:.1f} min")
    return payload


def _write_files(
    out: Path,
    runs: list[dict[str, Any]],
    methods: Sequence[str],
    seeds: Sequence[int],
    jobs: int,
    fast: bool,
    machine_start: dict[str, Any],
    wall: float,
    complete: bool,
) -> dict[str, Any]:
    """Write results.json / .csv / .md (atomically); called after every finished run (``complete=False``)."""
    order = {m: i for i, m in enumerate(methods)}
    runs = sorted(runs, key=lambda r: (order[r["method"]], r["seed"]))
    summary = aggregate(runs, methods)
    payload = {
        "command": "python -m cirlib.runs.results " + " ".join(sys.argv[1:]) if sys.argv else "",
        "complete": bool(complete),
        "budget": "fast" if fast else "demo",
        "budget_settings": BUDGETS["fast" if fast else "demo"],
        "seeds": [int(s) for s in seeds],
        "methods": list(methods),
        "jobs": int(jobs),
        "wall_time_s": round(wall, 1),
        "all_reused": all(r["reused"] for r in runs),
        "machine": {**machine_start, "load_average_end": machine_description()["load_average"]},
        "runs": runs,
        "summary": summary,
    }
    atomic_write_json(out / "results.json", payload)
    _render_files(out, payload)
    return payload


def _progress(row: dict[str, Any], done: int, total: int, start: float) -> str:
    v2 = row.get("maxboxacc_v2")
    return (
        f"[{done}/{total}] {row['method']} seed {row['seed']}: MaxBoxAccV2 {v2 if v2 is None else round(v2, 2)}, "
        f"top-1 {row.get('top1')}, {'reused' if row['reused'] else 'trained'} "
        f"({time.perf_counter() - start:.0f} s elapsed)"
    )


def synthetic_config_yaml(method: str) -> str:
    """``configs/synthetic/<method>.yaml``: the demo budget of seed 0, as ``make results`` trains it.

    ``cirlib train --config configs/synthetic/<method>.yaml`` then reproduces the seed-0 numbers of
    ``results/results.json`` (only ``name``, ``output_dir`` and ``device`` differ).
    """
    import yaml

    from cirlib.config import config_to_dict

    values = config_to_dict(experiment_config(method, seed=0))
    values["name"] = f"synthetic_{method}"
    values["output_dir"] = f"runs/synthetic_{method}"
    values["device"] = "auto"
    header = (
        f"# {method}: {get_spec(method).description}.\n"
        "# The demo budget of cirlib/runs/experiments.py (BUDGETS['demo'], the method's preset in\n"
        "# cirlib/methods/registry.py), seed 0: the same run as `make results` and the notebooks train;\n"
        "# written by `python -m cirlib.runs.results --write-configs configs/synthetic`.\n"
        f"#   cirlib train --config configs/synthetic/{method}.yaml [--set train.epochs=3 ...]\n"
    )
    return header + yaml.safe_dump(values, sort_keys=False)


def write_synthetic_configs(folder: str | os.PathLike, methods: Sequence[str] = RESULTS_METHODS) -> list[Path]:
    """Write :func:`synthetic_config_yaml` for every method into ``folder``."""
    return [atomic_write_text(Path(folder) / f"{m}.yaml", synthetic_config_yaml(m)) for m in methods]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command-line entry point (``python -m cirlib.runs.results``)."""
    parser = argparse.ArgumentParser(prog="python -m cirlib.runs.results", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results", help="results folder (runs go to <out>/runs/)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(RESULTS_METHODS))
    parser.add_argument("--jobs", type=int, default=2, help="parallel trainings, one thread each")
    parser.add_argument("--fast", action="store_true", help="the tiny CI budget (numbers mean nothing)")
    parser.add_argument("--write-configs", metavar="DIR", default=None,
                        help="only write the per-method demo configs (configs/synthetic) and exit")
    parser.add_argument("--render-only", action="store_true",
                        help="train nothing: write <out>/results.md and results.csv again from <out>/results.json")
    args = parser.parse_args(argv)
    if args.write_configs:
        paths = write_synthetic_configs(args.write_configs, args.methods)
        print("wrote " + ", ".join(str(p) for p in paths))
        return {"configs": [str(p) for p in paths]}
    if args.render_only:
        paths = render_results(args.out)
        print("wrote " + ", ".join(str(p) for p in paths))
        return {"rendered": [str(p) for p in paths]}
    os.environ.setdefault("TQDM_DISABLE", "1")
    return run_results(args.out, args.seeds, args.methods, args.jobs, args.fast)


if __name__ == "__main__":
    main()
