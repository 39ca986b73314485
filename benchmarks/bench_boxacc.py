"""Benchmark: fast exact boxacc_curves vs the straightforward per-threshold OpenCV implementation.

Times both on the same maps (the reference fixture maps of tests/data plus random smooth 224x224 maps), interval
0.001, single and multi contour, checks the curves are identical, reports the speed ratio and the
peak Python memory (tracemalloc), and writes ``benchmarks/results/boxacc.json``. Each implementation
is timed ``--repeats`` times, alternating, and the fastest run of each counts: on a shared machine a
run of the fast path (tens of milliseconds) can lose a large share of its time to other processes,
which one run of the reference (seconds) averages out.

The fast path's one-off cost (numba compilation of ``cirlib.metrics._sweep``, or loading it from the
on-disk cache) is measured separately in fresh subprocesses and excluded from the timed runs, which
start after a warm-up call. ``uptime``'s load average is recorded: timings on a shared machine are
noisy, the ratio (both timed in the same run on the same maps) less so.

    python benchmarks/bench_boxacc.py [--smooth 40] [--interval 0.001] [--no-fixture]
                                      [--fixture-every 1] [--seed 0] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def smooth_maps(n: int, seed: int, size: int = 224) -> list[np.ndarray]:
    """Random CAM-like maps: low-resolution noise plus blobs, bilinearly upsampled, min-max normalised."""
    import cv2

    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(n):
        low = rng.random((14, 14)) * 0.3
        yy, xx = np.mgrid[0:14, 0:14]
        for _ in range(rng.integers(1, 4)):
            cy, cx, s = rng.uniform(0, 14), rng.uniform(0, 14), rng.uniform(1, 4)
            low += rng.uniform(0.5, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
        m = cv2.resize(low, (size, size), interpolation=cv2.INTER_LINEAR)
        m = (m - m.min()) / (m.max() - m.min())
        maps.append(m.astype(np.float32))
    return maps


def random_boxes(n: int, seed: int, size: int = 224) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    x0, y0 = rng.integers(0, size // 2, (2, n))
    w, h = rng.integers(20, size // 2, (2, n))
    return [np.array([[a, b, min(size - 1, a + c), min(size - 1, b + d)]]) for a, b, c, d in zip(x0, y0, w, h)]


_FIRST_CALL = (
    "import time; t = time.perf_counter(); import numpy as np; "
    "from cirlib.metrics import boxacc_curves; "
    "boxacc_curves(np.linspace(0, 1, 64).reshape(1, 8, 8), [np.array([[0, 0, 3, 3]])], np.arange(0, 1, 0.01)); "
    "print(time.perf_counter() - t)"
)


def first_call_seconds() -> dict[str, float]:
    """Import + first call in fresh interpreters: cold (empty numba cache: compiles) and cached."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for key in ("first_call_compile_s", "first_call_cached_s"):
            res = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True,
                                 check=True)
            out[key] = float(res.stdout.strip().splitlines()[-1])
    return out


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def timed(fn):
    """Wall time of ``fn()`` (no tracing active: tracemalloc would slow the Python-heavy reference)."""
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def peak_memory(fn) -> float:
    """Peak traced memory of ``fn()`` in MiB (Python/NumPy allocations). The sweep's per-shape node
    arrays (about 16 arrays of (H + 2)(W + 2) entries, ~3 MiB at 224 x 224) are allocated once by the
    warm-up call and reused, so they are not in this peak; arrays numba allocates inside compiled
    code are not traced."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str] | None = None) -> dict:
    from cirlib.metrics import boxacc_curves, reference_boxacc_curves

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smooth", type=int, default=40, help="number of random smooth 224x224 maps")
    ap.add_argument("--interval", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fixture", action="store_true", help="skip the reference fixture maps (tests/data)")
    ap.add_argument("--fixture-every", type=int, default=1,
                    help="use every k-th fixture map (the reference needs seconds per noisy map)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each implementation; the fastest counts")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "boxacc.json"))
    args = ap.parse_args(argv)

    sets: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    fx = Path(__file__).resolve().parents[1] / "tests" / "data" / "wsolevaluation_boxacc_public.npz"
    if not args.no_fixture and fx.is_file():
        z = np.load(fx)
        gts = np.split(z["gt_boxes"], np.cumsum(z["gt_box_counts"])[:-1])
        k = max(1, args.fixture_every)
        sets["fixture"] = (list(z["cams"])[::k], gts[::k])
    if args.smooth:
        sets["smooth"] = (smooth_maps(args.smooth, args.seed), random_boxes(args.smooth, args.seed))
    thr = np.arange(0, 1, args.interval)
    results = {"interval": args.interval, "python": platform.python_version(), "machine": platform.processor()
               or platform.machine(), "cpu_count": os.cpu_count(), "fixture_every": args.fixture_every,
               "repeats": max(1, args.repeats), "load_average_start": load_average(), "sets": {}}
    results.update(first_call_seconds())
    print(f"first call (import + compile, empty numba cache) {results['first_call_compile_s']:.2f} s; "
          f"with the cache {results['first_call_cached_s']:.2f} s", flush=True)
    boxacc_curves(np.linspace(0, 1, 64).reshape(1, 8, 8), [np.array([[0, 0, 3, 3]])], thr)  # warm-up
    for name, (maps, boxes) in sets.items():
        for multi in (False, True):
            mode = "multi" if multi else "single"
            t_ref = t_fast = float("inf")
            for _ in range(max(1, args.repeats)):  # alternating, so both see the same machine
                ref, t = timed(lambda: reference_boxacc_curves(maps, boxes, thr, multi_contour=multi))
                t_ref = min(t_ref, t)
                fast, t = timed(lambda: boxacc_curves(maps, boxes, thr, multi_contour=multi))
                t_fast = min(t_fast, t)
            few = min(3, len(maps))  # memory on a few maps: both hold O(1) maps
            m_ref = peak_memory(lambda: reference_boxacc_curves(maps[:few], boxes[:few], thr, multi_contour=multi))
            m_fast = peak_memory(lambda: boxacc_curves(maps[:few], boxes[:few], thr, multi_contour=multi))
            same = bool(np.array_equal(ref, fast))
            row = {"maps": len(maps), "reference_s": t_ref, "fast_s": t_fast, "speedup": t_ref / t_fast,
                   "reference_ms_per_map": 1e3 * t_ref / len(maps), "fast_ms_per_map": 1e3 * t_fast / len(maps),
                   "identical": same, "peak_mem_reference_mb": m_ref, "peak_mem_fast_mb": m_fast}
            results["sets"][f"{name}/{mode}"] = row
            print(f"{name:8s} {mode:6s} maps={len(maps):3d} reference {row['reference_ms_per_map']:8.1f} ms/map  "
                  f"fast {row['fast_ms_per_map']:7.1f} ms/map  speedup {row['speedup']:5.1f}x  identical={same}  "
                  f"peak mem ref/fast {row['peak_mem_reference_mb']:.1f}/{row['peak_mem_fast_mb']:.1f} MiB", flush=True)
            if not same:
                raise SystemExit(f"curves differ for {name}/{mode}: the fast path is not exact")
    results["load_average_end"] = load_average()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
