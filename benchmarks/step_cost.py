"""Cost of one training step per method relative to CAM, measured as a ratio in one run.

    python benchmarks/step_cost.py                       # make results budget: small_cnn width 16, 64 px, batch 64
    python benchmarks/step_cost.py --arch resnet50 --size 112 --batch 8 --reps 5
    python benchmarks/step_cost.py --profile             # + torch.profiler table of the full step
    python benchmarks/step_cost.py --breakdown           # + the full step without CAAM, SSAM, or both

One thread (``torch.set_num_threads(1)``, as ``make results`` trains). A step is what
:class:`cirlib.engine.Trainer` does per batch: ``training_loss``, ``zero_grad``, ``backward``,
SGD ``step``. The methods' steps are **interleaved** (cam, has, complementary, full, cam, ...)
for ``--reps`` rounds after one warm-up round, so a load change on the shared machine hits all of
them alike (within a round each method runs one untimed step, then the timed one, so no method is
timed on caches another model just filled); each step is timed by the process's CPU time (load-independent: time the scheduler
gave to other processes does not count; also reported: wall time). The ratio printed is the
median over rounds of ``step(method) / step(cam)`` within the round. The result (with the machine and
the machine) goes to ``benchmarks/results/step_cost_<arch>.json`` (``--json``).

``--breakdown`` adds three variants of the full method to the same interleaved rounds: without CAAM
(``full-no-caam``), without SSAM (``full-no-ssam``) and without either (``full-no-attention``): the
same model with the module removed (its branch of the aggregation is then the input features), so
the differences to ``full`` are what each module costs in the step, forward and backward.

The full method does three backbone passes (the two complementary images, batched as one pass of
2B, and the full image) plus CAAM and SSAM on the two branches, exactly as the notebooks write them
(:mod:`cirlib.models.attention`): about 3x CAM plus the attention's own cost. CAAM's cost is two
:math:`C \times C` energies over :math:`N` positions and two :math:`C \times C \times N` products per
image (64 channels at 16x16 positions for ``small_cnn``, 2048 at 7x7-14x14 for ResNet50), SSAM's its
:math:`N \times N` softmax. ``--breakdown`` shows each module's share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

METHODS = ("cam", "has", "complementary", "full")
#: Variants of the full method that --breakdown adds: which attention modules are removed.
BREAKDOWN = {"full-no-caam": ("caam",), "full-no-ssam": ("ssam",), "full-no-attention": ("caam", "ssam")}


def build(method: str, arch: str, size: int, num_classes: int, width: int | None):
    import torch

    from cirlib.config import TrainConfig
    from cirlib.engine import build_optimizer
    from cirlib.methods import build_model

    removed = BREAKDOWN.get(method, ())
    base = "full" if removed else method
    options = {}  # the registry's presets: the variants of the make results budget
    if arch == "small_cnn" and width:
        options["width"] = width
    torch.manual_seed(0)
    model = build_model(base, arch, num_classes, image_size=size, **options)
    for name in removed:  # ComplementaryModel skips a module that is None (F^c = F or F^s = F)
        setattr(model, name, None)
    model.train()
    return model, build_optimizer(model, TrainConfig(lr=0.02, new_layer_lr_mult=1.0))


def measure(arch: str = "small_cnn", size: int = 64, batch: int = 64, width: int | None = 16, reps: int = 7,
            methods: tuple[str, ...] = METHODS, num_classes: int = 10, log=print) -> dict:
    """Interleaved per-step CPU and wall times of ``methods``; returns medians and ratios to CAM."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _measure(arch, size, batch, width, reps, methods, num_classes, log)
    finally:
        torch.set_num_threads(threads)


def _measure(arch: str, size: int, batch: int, width: int | None, reps: int, methods: tuple[str, ...],
             num_classes: int, log) -> dict:
    import torch

    from cirlib.utils.memory import keep_freed_cpu_memory

    keep_freed_cpu_memory()  # as cirlib.engine.Trainer does on the CPU
    torch.manual_seed(0)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, num_classes, (batch,))
    built = {m: build(m, arch, size, num_classes, width) for m in methods}
    whole = {"boxes": [torch.tensor([[0.0, 0.0, size - 1.0, size - 1.0]])] * batch}  # for needs_boxes models

    def step(method: str) -> tuple[float, float]:
        model, opt = built[method]
        wall, cpu = time.perf_counter(), time.process_time()
        loss = model.training_loss(images, labels, **(whole if model.needs_boxes else {}))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.process_time() - cpu, time.perf_counter() - wall

    for m in methods:  # warm-up: allocator, oneDNN primitive caches
        step(m)
    cpu: dict[str, list[float]] = {m: [] for m in methods}
    wall: dict[str, list[float]] = {m: [] for m in methods}
    for r in range(reps):
        order = methods if r % 2 == 0 else tuple(reversed(methods))  # no method always runs first
        for m in order:
            step(m)  # untimed: bring this model's weights and buffers back into the caches
            c, w = step(m)
            cpu[m].append(c)
            wall[m].append(w)
    out = {"arch": arch, "image_size": size, "batch": batch, "width": width if arch == "small_cnn" else None,
           "reps": reps, "threads": torch.get_num_threads(), "methods": {}}
    for m in methods:
        ratios = [a / b for a, b in zip(cpu[m], cpu["cam"])]
        wall_ratios = [a / b for a, b in zip(wall[m], wall["cam"])]
        out["methods"][m] = {
            "cpu_s": statistics.median(cpu[m]), "wall_s": statistics.median(wall[m]),
            "ratio_cpu": statistics.median(ratios), "ratio_wall": statistics.median(wall_ratios),
            "ratio_cpu_min": min(cpu[m]) / min(cpu["cam"]),
        }
        e = out["methods"][m]
        log(f"{m:17s} {arch} {size} px batch {batch}: {e['cpu_s']:.3f} s/step CPU ({e['wall_s']:.3f} s wall)  "
            f"{e['ratio_cpu']:.2f}x cam (wall {e['ratio_wall']:.2f}x, min/min {e['ratio_cpu_min']:.2f}x)")
    return out


def profile_full(arch: str, size: int, batch: int, width: int | None, num_classes: int = 10, rows: int = 25) -> str:
    """torch.profiler table (self CPU time, grouped by input shape) of two full-method steps."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    model, opt = build("full", arch, size, num_classes, width)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, num_classes, (batch,))

    def step() -> None:
        loss = model.training_loss(x, y)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(2):
            step()
    return prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=rows)


def _machine() -> dict:
    """CPU model, core count, torch version and load average (:func:`cirlib.runs.machine.machine_description`)."""
    from cirlib.runs.machine import machine_description

    return machine_description()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="small_cnn")
    parser.add_argument("--size", type=int, default=64, help="image side (default 64)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--width", type=int, default=16, help="small_cnn width (default 16, the make results budget)")
    parser.add_argument("--reps", type=int, default=7, help="interleaved rounds after the warm-up (default 7)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--limit", type=float, default=3.5, help="full / cam ratio to check against (default 3.5)")
    parser.add_argument("--profile", action="store_true", help="also print a torch.profiler table of the full step")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the full method without CAAM, without SSAM and without both")
    parser.add_argument("--json", default=None,
                        help="write the measurements here (default benchmarks/results/step_cost_<arch>.json; '' skips)")
    args = parser.parse_args(argv)
    methods = tuple(dict.fromkeys(["cam", *args.methods, *(BREAKDOWN if args.breakdown else ())]))
    before = _machine()
    result = measure(args.arch, args.size, args.batch, args.width, args.reps, methods)
    result["machine"] = before
    print(f"machine: {before['cpu']} ({before['cpu_count']} cores), torch {before['torch']}")
    if args.profile:
        print(profile_full(args.arch, args.size, args.batch, args.width))
    json_path = str(ROOT / "benchmarks" / "results" / f"step_cost_{args.arch}.json") if args.json is None else args.json
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    if "full" in result["methods"]:
        ratio = result["methods"]["full"]["ratio_cpu"]
        verdict = "<=" if ratio <= args.limit else ">"
        print(f"full / cam = {ratio:.2f}x {verdict} {args.limit}x ({args.arch}, {args.size} px, batch {args.batch}, "
              f"1 thread, median of {args.reps} interleaved rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
