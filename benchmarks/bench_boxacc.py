"""Benchmark: fast exact boxacc_curves vs the straightforward per-threshold OpenCV implementation.

Times both on the same maps (the shared fixture maps plus random smooth 224x224 maps), interval
0.001, single and multi contour, checks the curves are identical, reports the speed ratio and the
peak Python memory (tracemalloc), and writes ``benchmarks/results/bench_boxacc.json``.

    python benchmarks/bench_boxacc.py [--smooth 40] [--interval 0.001] [--no-fixture] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def timed(fn):
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak


def main(argv: list[str] | None = None) -> dict:
    from cirlib.metrics import boxacc_curves, reference_boxacc_curves

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smooth", type=int, default=40, help="number of random smooth 224x224 maps")
    ap.add_argument("--interval", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-fixture", action="store_true", help="skip the shared fixture maps")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "bench_boxacc.json"))
    args = ap.parse_args(argv)

    sets: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    shared = os.environ.get("CIRLIB_SHARED")
    fx = (Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared") / "fixtures" / \
        "wsolevaluation_boxacc_public.npz"
    if not args.no_fixture and fx.is_file():
        z = np.load(fx)
        sets["fixture"] = (list(z["cams"]), np.split(z["gt_boxes"], np.cumsum(z["gt_box_counts"])[:-1]))
    if args.smooth:
        sets["smooth"] = (smooth_maps(args.smooth, args.seed), random_boxes(args.smooth, args.seed))
    thr = np.arange(0, 1, args.interval)
    results = {"interval": args.interval, "python": platform.python_version(), "machine": platform.processor()
               or platform.machine(), "cpu_count": os.cpu_count(), "sets": {}}
    for name, (maps, boxes) in sets.items():
        for multi in (False, True):
            mode = "multi" if multi else "single"
            ref, t_ref, m_ref = timed(lambda: reference_boxacc_curves(maps, boxes, thr, multi_contour=multi))
            fast, t_fast, m_fast = timed(lambda: boxacc_curves(maps, boxes, thr, multi_contour=multi))
            same = bool(np.array_equal(ref, fast))
            row = {"maps": len(maps), "reference_s": t_ref, "fast_s": t_fast, "speedup": t_ref / t_fast,
                   "reference_ms_per_map": 1e3 * t_ref / len(maps), "fast_ms_per_map": 1e3 * t_fast / len(maps),
                   "identical": same, "peak_mem_reference_mb": m_ref / 2**20, "peak_mem_fast_mb": m_fast / 2**20}
            results["sets"][f"{name}/{mode}"] = row
            print(f"{name:8s} {mode:6s} maps={len(maps):3d} reference {row['reference_ms_per_map']:8.1f} ms/map  "
                  f"fast {row['fast_ms_per_map']:7.1f} ms/map  speedup {row['speedup']:5.1f}x  identical={same}  "
                  f"peak mem ref/fast {row['peak_mem_reference_mb']:.1f}/{row['peak_mem_fast_mb']:.1f} MiB", flush=True)
            if not same:
                raise SystemExit(f"curves differ for {name}/{mode}: the fast path is not exact")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
