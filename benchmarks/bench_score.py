"""Benchmark: ``cirlib score`` end to end (files read included) on a CUB-sized folder of maps.

Writes ``--maps`` smooth multi-peak 224 x 224 float64 maps (5,794 by default: CUB's test split) as
``<image_id>.npy`` with wsolevaluation metadata (original sizes and boxes of CUB-like images), then
times :func:`cirlib.scoring.score_scoremaps` at interval 0.001 in each contour mode and for each
``--workers`` value, and reports milliseconds per map. Writes ``benchmarks/results/score.json``.

    python benchmarks/bench_score.py [--maps 5794] [--workers 1 2] [--interval 0.001] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_boxacc import smooth_maps  # noqa: E402


def write_folder(root: Path, n: int, seed: int) -> None:
    """``n`` maps under ``root/scoremaps`` and CUB-like metadata under ``root/metadata/CUB/test``."""
    rng = np.random.default_rng(seed)
    ids = [f"{k % 200 + 1:03d}.Bird_{k % 200:03d}/Bird_{k:05d}.jpg" for k in range(n)]
    maps = root / "scoremaps"
    for start in range(0, n, 200):
        for image_id, m in zip(ids[start:start + 200], smooth_maps(min(200, n - start), seed + start)):
            path = maps / f"{image_id}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, m.astype(np.float64))  # what the reference's inference.py saves
    meta = root / "metadata" / "CUB" / "test"
    meta.mkdir(parents=True, exist_ok=True)
    sizes = np.stack([rng.integers(300, 501, n), rng.integers(250, 501, n)], axis=1)
    x0 = (rng.random(n) * sizes[:, 0] * 0.5).astype(int)
    y0 = (rng.random(n) * sizes[:, 1] * 0.5).astype(int)
    x1 = np.minimum(sizes[:, 0] - 1, x0 + (rng.uniform(0.2, 0.5, n) * sizes[:, 0]).astype(int))
    y1 = np.minimum(sizes[:, 1] - 1, y0 + (rng.uniform(0.2, 0.5, n) * sizes[:, 1]).astype(int))
    (meta / "image_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    (meta / "class_labels.txt").write_text("".join(f"{i},{k % 200}\n" for k, i in enumerate(ids)))
    (meta / "image_sizes.txt").write_text("".join(f"{i},{w},{h}\n" for i, (w, h) in zip(ids, sizes)))
    (meta / "localization.txt").write_text(
        "".join(f"{i},{a},{b},{c},{d}\n" for i, a, b, c, d in zip(ids, x0, y0, x1, y1)))


def main(argv: list[str] | None = None) -> dict:
    from cirlib.scoring import score_scoremaps

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", type=int, default=5794)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--interval", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="write (or reuse) the folder here instead of a temporary one")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "score.json"))
    args = ap.parse_args(argv)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_score_"))
    try:
        if not (root / "metadata" / "CUB" / "test" / "localization.txt").is_file():
            t = time.perf_counter()
            write_folder(root, args.maps, args.seed)
            print(f"wrote {args.maps} maps in {time.perf_counter() - t:.1f} s", flush=True)
        results = {"maps": args.maps, "interval": args.interval, "python": platform.python_version(),
                   "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "runs": []}
        score_scoremaps(root / "scoremaps", root / "metadata", "CUB", "test", cam_curve_interval=0.1)  # warm-up
        for multi in (False, True):
            for workers in args.workers:
                t = time.perf_counter()
                scores = score_scoremaps(root / "scoremaps", root / "metadata", "CUB", "test",
                                         cam_curve_interval=args.interval, multi_contour=multi, workers=workers)
                seconds = time.perf_counter() - t
                row = {"contour": "multi" if multi else "single", "workers": workers, "seconds": seconds,
                       "ms_per_map": 1e3 * seconds / scores["num_scored"], "num_scored": scores["num_scored"],
                       "maxboxacc": scores["maxboxacc"]}
                results["runs"].append(row)
                print(f"{row['contour']:6s} workers={workers}  {seconds:7.1f} s  {row['ms_per_map']:6.2f} ms/map  "
                      f"({scores['num_scored']} maps, files read included)", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")
        return results
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
