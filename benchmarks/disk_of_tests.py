"""Peak disk of a pytest run under its temporary folder, sampled while it runs.

    python benchmarks/disk_of_tests.py                                     # tests/test_paper_scale.py, the project's settings
    python benchmarks/disk_of_tests.py --keep-all                          # pytest's default retention, for comparison
    python benchmarks/disk_of_tests.py tests/test_engine.py tests/test_cli_errors.py

Runs pytest in a subprocess with a fresh ``--basetemp`` and measures the size of that folder every
``--every`` seconds. It prints the peak and what is left at the end. ``--keep-all`` passes
``-o tmp_path_retention_policy=all``. That is pytest's default, which keeps every test's
``tmp_path`` until the session ends. The project's ``pyproject.toml`` removes a passing test's
folder when the test ends. A sample can miss a short-lived peak, so the figure is a lower bound
to within one interval's writes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def folder_size(path: Path) -> int:
    """Bytes of the regular files under ``path``; files that vanish while it walks count as 0."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["tests/test_paper_scale.py"], help="test files or node ids")
    parser.add_argument("--keep-all", action="store_true", help="pytest's default retention (keep every tmp_path)")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between samples (default: 1)")
    args = parser.parse_args(argv)

    basetemp = Path(tempfile.mkdtemp(prefix="cirlib-test-disk-"))
    command = [sys.executable, "-m", "pytest", *args.paths, "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}"]
    if args.keep_all:
        command += ["-o", "tmp_path_retention_policy=all"]
    env = dict(os.environ, TQDM_DISABLE="1")
    start, peak = time.perf_counter(), 0
    try:
        with subprocess.Popen(command, cwd=ROOT, env=env) as process:
            while process.poll() is None:
                peak = max(peak, folder_size(basetemp))
                time.sleep(args.every)
        end = folder_size(basetemp)
        peak = max(peak, end)
    finally:
        shutil.rmtree(basetemp, ignore_errors=True)
    retention = "all (pytest's default)" if args.keep_all else "the project's (pyproject.toml)"
    print(f"pytest {' '.join(args.paths)}: exit code {process.returncode} in {time.perf_counter() - start:.0f} s; "
          f"retention {retention}; peak {peak / 2**20:,.0f} MiB under the basetemp, {end / 2**20:,.0f} MiB at the end "
          f"(sampled every {args.every:g} s)")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
