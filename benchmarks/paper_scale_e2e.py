"""The paper-scale recipes end to end at a size that takes minutes: export, train, evaluate, timed.

    python benchmarks/paper_scale_e2e.py                                  # every configs/cub + configs/ilsvrc recipe
    python benchmarks/paper_scale_e2e.py --configs configs/cub/resnet50_cam.yaml --train 64 --epochs 2
    python benchmarks/paper_scale_e2e.py --device cuda --train 2000 --val 200 --test 500 --batch 64 --workers 8

Writes the synthetic data at 224 px (``cirlib data export``, wsolevaluation layout with a val split,
CUB for ``configs/cub``, ILSVRC for ``configs/ilsvrc``) into ``--out``, then runs for each recipe the
README's command, ``cirlib train --config <recipe> --set data.root=<folder> ...`` with random init
(``model.pretrained=null``, no internet) and the given device, batch, workers and epochs, in its own
process, and records its wall time, the test metrics and the final training loss in
``<out>/summary.json``. This checks that the path runs at a realistic size and how long it takes;
random-init runs of a few epochs on a few hundred images are not expected to localise anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=None, help="default: every configs/cub and configs/ilsvrc recipe")
    parser.add_argument("--out", default="build/paper_scale_e2e")
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--val", type=int, default=8)
    parser.add_argument("--test", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from cirlib.data.export import export_dataset

    configs = [Path(c) for c in args.configs] if args.configs else sorted((ROOT / "configs" / "cub").glob("*.yaml")) + \
        sorted((ROOT / "configs" / "ilsvrc").glob("*.yaml"))
    out = Path(args.out)
    roots = {}
    for dataset in sorted({"ILSVRC" if c.resolve().parent.name == "ilsvrc" else "CUB" for c in configs}):
        folder = out / f"data_{dataset.lower()}"
        if not (folder / "cirlib_export.json").is_file():
            summary = export_dataset(folder, "wsolevaluation", dataset=dataset, image_size=224, train=args.train,
                                     val=args.val, test=args.test, overwrite=True)
            print(f"exported {summary.counts} to {folder} in {summary.seconds:.1f} s", flush=True)
        roots[dataset] = folder
    env = dict(os.environ, TQDM_DISABLE="1")
    results = []
    for config in configs:
        dataset = "ILSVRC" if config.resolve().parent.name == "ilsvrc" else "CUB"
        run_dir = out / "runs" / f"{config.resolve().parent.name}_{config.stem}"
        cmd = [sys.executable, "-m", "cirlib", "train", "--config", str(config), "--set", f"data.root={roots[dataset]}",
               "model.pretrained=null", f"device={args.device}", f"data.batch_size={args.batch}",
               f"data.eval_batch_size={args.batch}", f"data.num_workers={args.workers}", f"train.epochs={args.epochs}",
               f"output_dir={run_dir}", "--no-progress"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        entry = {"config": str(config.relative_to(ROOT) if config.is_absolute() else config), "seconds": round(seconds, 1),
                 "returncode": proc.returncode}
        if proc.returncode == 0:
            metrics = json.loads((run_dir / "metrics.json").read_text())
            entry.update(test={k: metrics["test"].get(k) for k in ("top1", "maxboxacc_v2", "num_images")},
                         train_loss=metrics["history"][-1]["train"]["loss"], steps=metrics["global_step"])
        else:
            entry["error"] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        results.append(entry)
        print(json.dumps(entry), flush=True)
    payload = {"args": vars(args), "results": results}
    (out / "summary.json").write_text(json.dumps(payload, indent=2) + "\n")
    failed = [r["config"] for r in results if r["returncode"] != 0]
    print(f"{len(results) - len(failed)}/{len(results)} recipes trained and evaluated; summary in {out / 'summary.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
