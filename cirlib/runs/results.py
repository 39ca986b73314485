r"""``make results``: every variant of the ablation, several seeds, one shared budget.

Usage::

    python -m cirlib.runs.results --out results [--seeds 0 1 2] [--methods cam has ...] [--jobs 2] [--fast]

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
* ``results.md``: a Markdown table, mean :math:`\pm` std per method.

Seeds make it reproducible: the same seed gives the same numbers (single-threaded CPU training).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cirlib.methods.registry import METHODS, RESULTS_METHODS, get_spec
from cirlib.runs.experiments import BUDGETS, experiment_config
from cirlib.runs.machine import machine_description
from cirlib.runs.pool import run_many
from cirlib.utils.choices import validate_choice
from cirlib.utils.io import atomic_write_json, atomic_write_text

__all__ = [
    "METRICS",
    "aggregate",
    "format_markdown",
    "main",
    "run_results",
    "synthetic_config_yaml",
    "write_synthetic_configs",
]

#: ``(key in results.json, label)`` of every metric the table shows.
METRICS: tuple[tuple[str, str], ...] = (
    ("maxboxacc_30", "MaxBoxAcc@30"),
    ("maxboxacc_50", "MaxBoxAcc@50"),
    ("maxboxacc_70", "MaxBoxAcc@70"),
    ("maxboxacc_v2", "MaxBoxAccV2"),
    ("pxap", "PxAP"),
    ("top1", "top-1"),
    ("gt_known_loc", "GT-known Loc"),
    ("top1_loc", "Top-1 Loc"),
    ("train_time_s", "train time (s)"),
)



def _flatten_metrics(test: dict[str, Any]) -> dict[str, float | None]:
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
    row.update(_flatten_metrics(record["metrics"]))
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
    """Mean and sample standard deviation over seeds of every metric, per method.

    Returns:
        ``{method: {"seeds": [...], "n": int, "mean": {metric: value}, "std": {metric: value}}}``.
    """
    summary: dict[str, dict[str, Any]] = {}
    for method in methods:
        rows = [r for r in runs if r["method"] == method]
        if not rows:
            continue
        mean, std = {}, {}
        for key, _ in METRICS:
            mean[key], std[key] = _mean_std([r.get(key) for r in rows])
        summary[method] = {"seeds": sorted(r["seed"] for r in rows), "n": len(rows), "mean": mean, "std": std}
    return summary


def _fmt(mean: float | None, std: float | None, digits: int = 1) -> str:
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_markdown(summary: dict[str, dict[str, Any]], header: str = "") -> str:
    """The aggregated table as Markdown (mean ± std over seeds; times in seconds)."""
    cols = [m for m in METRICS]
    lines = [header.rstrip()] if header else []
    lines.append("| method | seeds | " + " | ".join(label for _, label in cols) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in cols) + " |")
    for method, agg in summary.items():
        cells = [
            _fmt(agg["mean"][key], agg["std"][key], 0 if key == "train_time_s" else 1) for key, _ in cols
        ]
        lines.append(f"| {method} | {agg['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _format_csv(runs: Sequence[dict[str, Any]], summary: dict[str, dict[str, Any]]) -> str:
    keys = [k for k, _ in METRICS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["method", "seed", *keys])
    for r in runs:
        writer.writerow([r["method"], r["seed"], *[_csv(r.get(k)) for k in keys]])
    for method, agg in summary.items():
        writer.writerow([method, "mean", *[_csv(agg["mean"][k]) for k in keys]])
        writer.writerow([method, "std", *[_csv(agg["std"][k]) for k in keys]])
    return buffer.getvalue()


def _csv(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


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
    status = "" if complete else f" **Partial: {len(runs)} runs finished so far.**"
    header = (
        f"MaxBoxAcc, PxAP, accuracies in %, mean ± std over seeds {list(seeds)}; budget `{payload['budget']}`; "
        f"wall time {wall / 60:.1f} min with {jobs} jobs on {machine_start['cpu_count']} cores "
        f"({machine_start['cpu']}); load average at start {machine_start['load_average']}.{status}\n\n"
    )
    atomic_write_json(out / "results.json", payload)
    atomic_write_text(out / "results.csv", _format_csv(runs, summary))
    atomic_write_text(out / "results.md", format_markdown(summary, header=header))
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
    args = parser.parse_args(argv)
    if args.write_configs:
        paths = write_synthetic_configs(args.write_configs, args.methods)
        print("wrote " + ", ".join(str(p) for p in paths))
        return {"configs": [str(p) for p in paths]}
    os.environ.setdefault("TQDM_DISABLE", "1")
    return run_results(args.out, args.seeds, args.methods, args.jobs, args.fast)


if __name__ == "__main__":
    main()
