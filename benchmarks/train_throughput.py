"""Training throughput and peak memory per backbone x method x precision, and the data loader's own rate.

    # GPU (one prepared run; 224 px, batch 64):
    python benchmarks/train_throughput.py --device cuda --json benchmarks/results/throughput_cuda.json
    # CPU (small mode; the README's CPU table):
    python benchmarks/train_throughput.py --device cpu --json benchmarks/results/throughput_cpu.json

A training step is what :class:`cirlib.engine.Trainer` does per batch: autocast (``bf16`` rows),
``training_loss``, ``zero_grad``, ``backward``, SGD ``step`` (the recipes' Nesterov momentum and weight
decay), with the model and the batch in ``channels_last`` for the ``channels_last`` rows (which also
use bf16, as the recipes do) and ``torch.compile`` for the ``compile`` rows (``--precisions ... compile``).
Random input, random init, ``--warmup`` untimed steps then ``--steps`` timed ones (CUDA synchronised).

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` of the step; on the CPU PyTorch keeps no such
counter, so every row runs in a fresh process and reports that process's peak resident memory
(``ru_maxrss``: model, optimizer state, activations and the Python runtime).

The loader row reads JPEGs from disk: a folder written by ``cirlib data export`` (CUB layout,
500x375 like a typical CUB image; ``--data-root`` uses an existing one), the recipes' training
transforms (resize 256, random crop 224, flip, normalise), ``num_workers`` and ``pin_memory`` as the
configs set them (8 and true; pinning only where CUDA is available), batches of ``--batch``; images/s
over the batches after the first (the first includes starting the workers, reported separately).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PRECISIONS = ("fp32", "bf16", "channels_last", "compile")


def train_step_rate(arch: str, method: str, precision: str, device: str, batch: int, size: int, steps: int,
                    warmup: int, num_classes: int = 200, threads: int | None = None) -> dict:
    """Images/s and peak memory of the training step of one (arch, method, precision)."""
    import torch

    from cirlib.config import TrainConfig
    from cirlib.engine import build_optimizer
    from cirlib.methods import build_model

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    options = {}  # the registry's presets
    torch.manual_seed(0)
    model = build_model(method, arch, num_classes, image_size=size, **options).to(dev)
    channels_last = precision in ("channels_last", "compile")
    amp = precision in ("bf16", "channels_last", "compile")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = build_optimizer(model, TrainConfig())
    loss_fn = model.training_loss
    if precision == "compile":
        loss_fn = torch.compile(model.training_loss)
    x = torch.randn(batch, 3, size, size, device=dev)
    y = torch.randint(0, num_classes, (batch,), device=dev)
    extra = {"boxes": [torch.tensor([[0.0, 0.0, size - 1.0, size - 1.0]], device=dev)] * batch} if model.needs_boxes else {}
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(x, y, **extra)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        step()
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    seconds = (time.perf_counter() - start) / steps
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
        peak_kind = "cuda max_memory_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        peak_kind = "process peak RSS"
    return {"arch": arch, "method": method, "precision": precision, "device": device, "batch": batch,
            "image_size": size, "steps": steps, "s_per_step": seconds, "images_per_s": batch / seconds,
            "peak_mib": peak, "peak_kind": peak_kind, "threads": torch.get_num_threads()}


def loader_rate(root: Path | None, batch: int, batches: int, num_workers: int, pin_memory: bool,
                image_size: int = 224) -> dict:
    """Images/s of the training loader reading JPEGs through the recipes' transforms."""
    from cirlib.data import build_dataset
    from cirlib.engine import build_train_loader

    tmp = None
    if root is None:
        from cirlib.data.export import export_dataset

        tmp = tempfile.TemporaryDirectory(prefix="cirlib-loader-")
        root = export_dataset(Path(tmp.name) / "cub", "cub", image_size="500x375", train=batch * (batches + 1),
                              test=1, progress=False).root
    try:
        dataset = build_dataset("cub", "train", root=root, image_size=image_size)
        loader = build_train_loader(dataset, batch, seed=0, num_workers=num_workers, pin_memory=pin_memory)
        loader.sampler.set_epoch(0)
        start = time.perf_counter()
        iterator = iter(loader)
        next(iterator)
        first = time.perf_counter() - start
        start = time.perf_counter()
        n = 0
        for i, b in enumerate(iterator):
            n += b["image"].shape[0]
            if i + 2 >= batches:
                break
        seconds = time.perf_counter() - start
        del iterator
    finally:
        if tmp is not None:
            tmp.cleanup()
    return {"images": n, "batch": batch, "num_workers": num_workers, "pin_memory": pin_memory, "crop": image_size,
            "first_batch_s": first, "images_per_s": n / seconds if seconds > 0 else float("nan"),
            "dataset_images": len(dataset)}


def _table(rows: list[dict], loader: dict | None, info: dict) -> str:
    lines = [f"device: {rows[0]['device'] if rows else '?'}; {info.get('cuda') or info['cpu']} "
             f"({info['cpu_count']} cores), torch {info['torch']}; load average {info.get('load_average')}",
             "", "| backbone | method | precision | batch | px | images/s | peak memory (MiB) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['method']} | {r['precision']} | {r['batch']} | {r['image_size']} | "
                         f"failed: {r['error']} | |")
            continue
        lines.append(f"| {r['arch']} | {r['method']} | {r['precision']} | {r['batch']} | {r['image_size']} | "
                     f"{r['images_per_s']:.2f} | {r['peak_mib']:.0f} |")
    if loader:
        lines += ["", f"loader: {loader['images_per_s']:.1f} images/s from on-disk JPEGs (500x375, resize, crop {loader['crop']}, "
                  f"flip), batch {loader['batch']}, {loader['num_workers']} workers, pin_memory={loader['pin_memory']} "
                  f"(first batch {loader['first_batch_s']:.1f} s, with the worker start-up)"]
    return "\n".join(lines)


def speedups(rows: list[dict]) -> dict[str, float]:
    """Images/s of every non-fp32 row over the fp32 row of the same backbone and method (e.g. bf16 / fp32)."""
    fp32 = {(r["arch"], r["method"]): r["images_per_s"] for r in rows if r["precision"] == "fp32" and "error" not in r}
    out = {}
    for r in rows:
        base = fp32.get((r["arch"], r["method"]))
        if r["precision"] != "fp32" and "error" not in r and base:
            out[f"{r['arch']} {r['method']} {r['precision']}"] = r["images_per_s"] / base
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--archs", nargs="+", default=["resnet50", "vgg16"])
    parser.add_argument("--methods", nargs="+", default=["cam", "has", "full"])
    parser.add_argument("--precisions", nargs="+", default=None, choices=PRECISIONS,
                        help="default: fp32 bf16 channels_last (add compile to try torch.compile)")
    parser.add_argument("--batch", type=int, default=None, help="default 64 on CUDA, 2 on the CPU")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10 on CUDA, 2 on the CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3 on CUDA, 1 on the CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default 1 on the CPU: on a shared machine a descheduled OpenMP thread "
                             "stalls every parallel region; PyTorch's default on CUDA)")
    parser.add_argument("--loader-batches", type=int, default=None, help="loader batches (default 8; 0 skips the loader)")
    parser.add_argument("--num-workers", type=int, default=8, help="loader workers (default 8, as the configs)")
    parser.add_argument("--data-root", default=None, help="an exported (or real) CUB folder for the loader row")
    parser.add_argument("--loader-size", type=int, default=224, help="the loader's crop (default 224, the recipes')")
    parser.add_argument("--json", default=None, help="write every measurement here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    on_cuda = device.startswith("cuda")
    batch = args.batch or (64 if on_cuda else 2)
    steps = args.steps or (10 if on_cuda else 2)
    warmup = args.warmup if args.warmup is not None else (3 if on_cuda else 1)
    precisions = args.precisions or ["fp32", "bf16", "channels_last"]
    if args.threads is None and not on_cuda:
        args.threads = 1

    if args.child:  # one row in a fresh process (CPU peak memory)
        arch, method, precision = args.child.split(",")
        print(json.dumps(train_step_rate(arch, method, precision, device, batch, args.size, steps, warmup,
                                         threads=args.threads)))
        return 0

    from cirlib.runs.machine import machine_description

    info = machine_description()
    rows: list[dict] = []
    for arch in args.archs:
        for method in args.methods:
            for precision in precisions:
                try:
                    if on_cuda:
                        row = train_step_rate(arch, method, precision, device, batch, args.size, steps, warmup,
                                              threads=args.threads)
                        torch.cuda.empty_cache()
                    else:
                        cmd = [sys.executable, __file__, "--child", f"{arch},{method},{precision}", "--device", device,
                               "--batch", str(batch), "--size", str(args.size), "--steps", str(steps),
                               "--warmup", str(warmup)] + (["--threads", str(args.threads)] if args.threads else [])
                        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                        if proc.returncode != 0:
                            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed")
                        row = json.loads(proc.stdout.strip().splitlines()[-1])
                except Exception as exc:  # a row that fails (e.g. compile) is reported, not fatal
                    row = {"arch": arch, "method": method, "precision": precision, "device": device, "batch": batch,
                           "image_size": args.size, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
                rows.append(row)
                shown = "failed: " + row["error"] if "error" in row else \
                    f"{row['images_per_s']:.2f} images/s, peak {row['peak_mib']:.0f} MiB"
                print(f"{arch:12s} {method:6s} {precision:14s} batch {batch} {args.size} px: {shown}", flush=True)
    loader = None
    loader_batches = args.loader_batches if args.loader_batches is not None else 8
    if loader_batches > 0:
        loader = loader_rate(Path(args.data_root) if args.data_root else None, batch, loader_batches,
                             args.num_workers, pin_memory=on_cuda, image_size=args.loader_size)
        print(f"loader: {loader['images_per_s']:.1f} images/s ({args.num_workers} workers)", flush=True)
    table = _table(rows, loader, info)
    print()
    print(table)
    ratios = speedups(rows)
    if ratios:
        print("speed-up over fp32: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    if on_cuda and loader and rows:
        for r in rows:
            if "error" not in r and r["images_per_s"] > loader["images_per_s"]:
                print(f"note: the loader ({loader['images_per_s']:.0f} images/s) is slower than {r['arch']} {r['method']} "
                      f"{r['precision']} ({r['images_per_s']:.0f} images/s)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows, "loader": loader, "speedups": ratios,
                                               "table": table},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
