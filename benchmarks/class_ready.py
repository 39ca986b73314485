"""Class-ready: each notebook, run top to bottom as a student's first notebook on a fresh clone.

    python benchmarks/class_ready.py [--notebooks 05 07] [--limit 120] [--out benchmarks/results/class_ready.json]

A fresh clone has no trained run (``results/runs/`` is not committed) but carries the shipped seed-0
checkpoints (``checkpoints/``, :mod:`cirlib.runs.shipped`). Each notebook runs headless (papermill)
with its default parameters (``FAST=False``, ``SEED=0``, the full budget), ``INTERACTIVE=False``
(no widgets without a browser) and its own new, empty ``OUTPUT_DIR``, as if it were the first
notebook opened. Recorded per notebook:

* the wall time, kernel start included (the target: under ``--limit`` seconds, 2 minutes, on the
  2-core CPU machine), and the kernel's CPU time, which the other processes of a busy machine do not
  inflate as they do the wall time (a notebook computes on one or two threads, so on an idle machine
  its wall time is at most about its CPU time plus the kernel's start);
* whether anything trained: a ``last.pt`` under its ``OUTPUT_DIR`` (training writes one, a shipped
  copy has none) or a ``[cirlib] no finished run`` line in its outputs;
* the runs it copied from ``checkpoints/``.

The JSON goes to ``--out`` (atomically) with the machine (its load average says how busy it was);
the exit status is 1 when a notebook failed, trained or took longer than ``--limit``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: What train_or_load prints before it trains or resumes (cirlib.runs.cache._announce_training).
TRAINING_LINE = "[cirlib] no finished run of"


def _outputs_text(notebook: Path) -> str:
    """Every stream and text output of an executed notebook, joined."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    parts = []
    for cell in cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or (output.get("data") or {}).get("text/plain") or ""
            parts.append("".join(text) if isinstance(text, list) else str(text))
    return "\n".join(parts)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_notebook(notebook: Path, workdir: Path) -> dict[str, Any]:
    """Run ``notebook`` with its defaults and a fresh ``OUTPUT_DIR`` under ``workdir``; return its record."""
    from cirlib.runs.shipped import SHIPPED_FROM_KEY
    from cirlib.tools.notebooks import declared_parameters, run_notebook

    runs = workdir / notebook.stem / "runs"
    runs.mkdir(parents=True)
    declared = declared_parameters(notebook)
    parameters = {k: v for k, v in {"OUTPUT_DIR": str(runs), "INTERACTIVE": False}.items() if k in declared}
    executed = workdir / notebook.stem / notebook.name
    cpu_before = _children_cpu_seconds()
    seconds = run_notebook(notebook, executed, parameters)
    cpu_seconds = _children_cpu_seconds() - cpu_before  # the kernel, a child process reaped when it shut down
    trained = sorted(str(p.parent.relative_to(runs)) for p in runs.rglob("last.pt"))
    copied = []
    for metrics in sorted(runs.rglob("metrics.json")):
        if json.loads(metrics.read_text()).get(SHIPPED_FROM_KEY):
            copied.append(str(metrics.parent.relative_to(runs)))
    return {
        "seconds": round(seconds, 1),
        "kernel_cpu_seconds": round(cpu_seconds, 1),
        "trained": trained,
        "training_announced": TRAINING_LINE in _outputs_text(executed),
        "copied_from_checkpoints": copied,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="*", default=None,
                        help="notebook name prefixes, e.g. 05 07 (default: every notebook)")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds a notebook may take (default 120)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "class_ready.json")
    args = parser.parse_args(argv)

    from cirlib.runs.machine import machine_description
    from cirlib.tools.notebooks import list_notebooks
    from cirlib.utils.io import atomic_write_json

    notebooks = [nb for nb in list_notebooks(REPO / "notebooks")
                 if not args.notebooks or any(nb.name.startswith(p) for p in args.notebooks)]
    if not notebooks:
        parser.error(f"--notebooks {' '.join(args.notebooks)}: no notebook in notebooks/ starts with these")
    machine_start = machine_description()
    records: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="class_ready-") as tmp:
        for notebook in notebooks:
            try:
                record = time_notebook(notebook, Path(tmp))
            except Exception as exc:  # noqa: BLE001 - a failing notebook is recorded, the others still run
                records[notebook.name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                print(f"[class_ready] {notebook.name}: FAILED {records[notebook.name]['error']}", flush=True)
                continue
            record["ok"] = (record["seconds"] <= args.limit and not record["trained"]
                            and not record["training_announced"])
            records[notebook.name] = record
            print(f"[class_ready] {notebook.name}: {record['seconds']:.1f} s ({record['kernel_cpu_seconds']:.1f} s "
                  "kernel CPU), "
                  + (f"TRAINED {record['trained']}" if record["trained"] or record["training_announced"]
                     else f"nothing trained ({len(record['copied_from_checkpoints'])} shipped runs copied)")
                  + ("" if record["ok"] else f"  -- over {args.limit:.0f} s or trained"), flush=True)
    payload = {
        "command": "python benchmarks/class_ready.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "parameters": "each notebook's defaults (FAST=False, SEED=0), INTERACTIVE=False, a new empty OUTPUT_DIR",
        "limit_s": args.limit,
        "notebooks": records,
        "machine": machine_start,
        "load_average_end": machine_description()["load_average"],
    }
    atomic_write_json(args.out, payload)
    print(f"[class_ready] wrote {args.out}")
    return 0 if all(r["ok"] for r in records.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
