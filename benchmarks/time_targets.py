"""Wall time of ``make demo`` and ``make results`` on a fresh clone, and whether they reproduce.

    python benchmarks/time_targets.py [--targets demo results] [--keep] [--out benchmarks/results/targets.json]

Each target runs in its own fresh ``git clone`` of this repository's ``HEAD`` (so nothing is
reused: no trained run, no figure), after ``make install`` builds that clone's virtual environment
(timed separately; pip's cache makes it fast on a second run). Recorded per target:

* the wall time of ``make <target>`` (the budgets: ``make demo`` at most 20 min, ``make results`` at most
  60 min on the 2-core CPU machine);
* for the demo, the time of its training phase and of each notebook (``build/demo/timings.json``);
* whether the numbers reproduce the committed ones, which came from earlier, independent runs: the
  demo's ``figures/demo_results.md`` is compared byte for byte with this repository's, and every
  run's metrics in ``results/results.json`` with the committed file's (times left out);
* the machine (cores, load average at start and end, Python, PyTorch).

The JSON goes to ``--out`` (written atomically); a summary is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What each target leaves that must equal the committed file.
REPRODUCED_FILES = {"demo": "figures/demo_results.md", "results": "results/results.json"}
#: Per-run fields of results.json that are not numbers of the method (they change from run to run).
VOLATILE_FIELDS = ("train_time_s", "cpu_time_s", "run_dir", "reused")


def _run_metrics(path: Path) -> dict:
    runs = json.loads(path.read_text())["runs"]
    return {(r["method"], r["seed"]): {k: v for k, v in r.items() if k not in VOLATILE_FIELDS} for r in runs}


def _same_numbers(target: str, produced: Path, committed: Path) -> bool:
    if not (produced.exists() and committed.exists()):
        return False
    if target == "results":
        return _run_metrics(produced) == _run_metrics(committed)
    return produced.read_bytes() == committed.read_bytes()


def _run(command: list[str], cwd: Path, log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                              env=dict(os.environ, TQDM_DISABLE="1"))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"`{' '.join(command)}` failed in {cwd} (exit {done.returncode}); log {log}:\n{tail}")
    return seconds


def _machine() -> dict:
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_start": list(os.getloadavg()),
    }


def time_target(target: str, workdir: Path) -> dict:
    """Clone, install, run ``make <target>``; return the timings and the reproduction check."""
    clone = workdir / f"clone-{target}"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    print(f"[{target}] fresh clone of {commit[:10]} in {clone}", flush=True)
    install_s = _run(["make", "install"], clone, workdir / f"{target}-install.log")
    print(f"[{target}] make install: {install_s / 60:.1f} min", flush=True)
    target_s = _run(["make", target], clone, workdir / f"{target}.log")
    print(f"[{target}] make {target}: {target_s / 60:.1f} min", flush=True)
    record: dict = {"commit": commit, "install_s": round(install_s, 1), "target_s": round(target_s, 1)}
    if target == "demo":
        record["demo_timings"] = json.loads((clone / "build/demo/timings.json").read_text())
    if target == "results":
        record["results_wall_time_s"] = json.loads((clone / "results/results.json").read_text())["wall_time_s"]
    produced, committed = clone / REPRODUCED_FILES[target], REPO / REPRODUCED_FILES[target]
    record["reproduces"] = {
        "file": REPRODUCED_FILES[target],
        "identical_to_committed": _same_numbers(target, produced, committed),
    }
    if not record["reproduces"]["identical_to_committed"] and produced.exists() and target == "demo":
        record["reproduces"]["produced"] = produced.read_text()
    return record


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=["demo", "results"], choices=sorted(REPRODUCED_FILES))
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/targets.json"))
    parser.add_argument("--workdir", default=None, help="where the clones go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the clones (default: delete them)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from cirlib.utils.io import atomic_write_json

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="cirlib-targets-"))
    workdir.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    # Targets timed by an earlier call stay in the file; each record carries its own command and machine.
    report: dict = json.loads(out.read_text()) if out.exists() else {}
    report.setdefault("targets", {})
    command = " ".join(["python", "benchmarks/time_targets.py", *(argv if argv is not None else sys.argv[1:])])
    try:
        for target in args.targets:
            machine = _machine()
            record = time_target(target, workdir)
            machine["load_average_end"] = list(os.getloadavg())
            report["targets"][target] = {"command": command, "machine": machine, **record}
            atomic_write_json(out, report)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for target, record in report["targets"].items():
        same = record["reproduces"]["identical_to_committed"]
        print(f"make {target}: {record['target_s'] / 60:.1f} min (+ {record['install_s'] / 60:.1f} min make install); "
              f"{record['reproduces']['file']} {'identical to' if same else 'DIFFERS from'} the committed one")
    print(f"written {args.out}")
    return report


if __name__ == "__main__":
    main()
