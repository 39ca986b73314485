"""Cost of one training step (64 images) per method, single-threaded: the relative compute of the variants.

    python benchmarks/step_cost.py [IMAGE_SIZE=64] [WIDTH=8]

Prints seconds per step for ``cam``, ``complementary`` (two branches) and ``full`` (two branches,
CAAM, SSAM and the stitched fusion loss's third, full-image pass), mean of 3 steps after 1 warm-up.
"""

from __future__ import annotations

import sys
import time


def main(size: int = 64, width: int = 8) -> dict[str, float]:
    import torch

    from cirlib.methods import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, size, size), torch.randint(0, 10, (64,))
    out: dict[str, float] = {}
    for method in ("cam", "has", "complementary", "full"):
        model = build_model(method, "small_cnn", 10, width=width)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for i in range(4):
            if i == 1:
                start = time.perf_counter()
            loss = model.training_loss(x, y)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[method] = (time.perf_counter() - start) / 3
        print(f"{method:14s} {size} px width {width}: {out[method]:.3f} s/step ({out[method] / out['cam']:.2f}x cam)",
              flush=True)
    return out


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
