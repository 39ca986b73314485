"""How big SSAM's position attention gets at 224 px, for every backbone.

SSAM's attention ``S`` is ``N x N`` per image (``N = h*w`` positions of the feature map), in float32.
The forward briefly holds two such matrices (the energy and its softmax); autograd keeps one (the
softmax output, which the backward of both the softmax and ``V S^T`` needs). For each backbone this script

* finds the size of the backbone's output feature map (where SSAM works) at the input size by
  running the backbone on the ``meta`` device (no compute, no memory);
* computes the attention size analytically: ``N^2`` entries, ``4 N^2`` bytes per matrix per image
  (times the batch for what is kept for the backward pass);
* measures, on the CPU, one SSAM forward + backward on a random feature map of that shape
  (batch ``--batch``, default 1): the bytes autograd saves for the backward pass (counted with
  ``torch.autograd.graph.saved_tensors_hooks``) and the wall time; on a CUDA device (``--device
  cuda``) also the peak allocated memory.

Usage::

    python benchmarks/ssam_memory.py                 # 224 px, batch 1, CPU
    python benchmarks/ssam_memory.py --batch 64 --no-measure   # analytic only, training batch
    python benchmarks/ssam_memory.py --json results/ssam_memory.json
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass

import torch

from cirlib.models.attention import SpatialSelfAttention
from cirlib.models.backbones import build_backbone

#: (name, build_backbone kwargs)
CONFIGS: tuple[tuple[str, dict], ...] = (
    ("small_cnn", {}),
    ("vgg16", {}),
    ("resnet50", {}),
    ("resnet50", {"large_feature_map": True}),
    ("inception_v3", {}),
    ("inception_v3", {"large_feature_map": True}),
)


@dataclass
class Row:
    arch: str
    channels: int
    h: int
    w: int
    n: int
    attention_entries: int  # per image
    attention_mib_per_image: float  # one float32 N x N matrix
    analytic_saved_mib: float  # batch * 1 matrix (the softmax output autograd keeps), float32
    measured_saved_mib: float | None = None
    measured_ms: float | None = None
    cuda_peak_mib: float | None = None


def feature_shape(arch: str, kwargs: dict, size: int) -> tuple[int, int, int]:
    """``(C, h, w)`` of the backbone's output at ``size`` px, computed on the meta device."""
    backbone = build_backbone(arch, **kwargs).to("meta").eval()
    with torch.no_grad():
        return tuple(backbone(torch.empty(1, 3, size, size, device="meta")).shape[1:])


def measure(channels: int, h: int, w: int, batch: int, device: str) -> tuple[float, float, float | None]:
    """Saved-for-backward MiB, forward+backward ms, CUDA peak MiB (None on the CPU) of one SSAM."""
    torch.manual_seed(0)
    ssam = SpatialSelfAttention(channels, mode="additive").to(device)
    with torch.no_grad():
        ssam.beta.fill_(0.5)
    x = torch.randn(batch, channels, h, w, device=device, requires_grad=True)
    saved = {"bytes": 0}
    seen: set[int] = set()

    def pack(t: torch.Tensor):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in seen:  # count each storage once (views share it)
            seen.add(ptr)
            saved["bytes"] += t.untyped_storage().nbytes()
        return t

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = ssam(x)
    out.square().mean().backward()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    ms = (time.perf_counter() - start) * 1e3
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.startswith("cuda") else None
    return saved["bytes"] / 2**20, ms, peak


def run(size: int = 224, batch: int = 1, device: str = "cpu", do_measure: bool = True,
        max_n_measure: int = 80 * 80) -> list[Row]:
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    rows: list[Row] = []
    for arch, kwargs in CONFIGS:
        name = arch + ("-large" if kwargs.get("large_feature_map") else "")
        if arch == "small_cnn" and size > 128:
            name += "(toy)"
        c, h, w = feature_shape(arch, kwargs, size)
        n = h * w
        row = Row(
            arch=name, channels=c, h=h, w=w, n=n,
            attention_entries=n * n,
            attention_mib_per_image=4 * n * n / 2**20,
            analytic_saved_mib=batch * 4 * n * n / 2**20,
        )
        if do_measure and n <= max_n_measure:
            row.measured_saved_mib, row.measured_ms, row.cuda_peak_mib = measure(c, h, w, batch, device)
        rows.append(row)
    return rows


def format_table(rows: list[Row], size: int, batch: int) -> str:
    head = (
        f"SSAM attention at {size} px, batch {batch} "
        "(attention MiB: one float32 N x N matrix per image; saved: autograd's saved tensors)\n"
        "| backbone | C | h x w | N | N^2 | attention MiB/img | analytic saved MiB "
        "| measured saved MiB | fwd+bwd ms | CUDA peak MiB |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [head]

    def fmt(v, spec=".1f"):
        return "-" if v is None else format(v, spec)

    for r in rows:
        lines.append(
            f"| {r.arch} | {r.channels} | {r.h}x{r.w} | {r.n} | {r.attention_entries:,} | "
            f"{r.attention_mib_per_image:.2f} | {r.analytic_saved_mib:.1f} | {fmt(r.measured_saved_mib)} | "
            f"{fmt(r.measured_ms, '.0f')} | {fmt(r.cuda_peak_mib)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224, help="input side in pixels")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-measure", action="store_true", help="analytic sizes only")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows = run(args.size, args.batch, args.device, not args.no_measure)
    print(format_table(rows, args.size, args.batch))
    if args.json:
        from cirlib.utils import atomic_write_json

        atomic_write_json(args.json, [asdict(r) for r in rows])


if __name__ == "__main__":
    main()
