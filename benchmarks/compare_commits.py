"""Bit-for-bit check that a speed change did not move any number: train every method a few steps
with the ``make results`` budget (seed 0, one CPU thread) on this tree and on another commit's code.

    python benchmarks/compare_commits.py [--rev HEAD~1] [--steps 4] [--methods cam has ... full]

The other commit is checked out with ``git worktree add --detach`` in a temporary folder (removed
afterwards); each tree trains in its own Python process (``PYTHONPATH`` pointing at that tree).
Printed per method: the losses of every step and a SHA-256 over every tensor of the final
``state_dict`` (weights and BatchNorm buffers) and of the optimizer's momentum buffers. Exit status
1 when anything differs. The training steps are those of :class:`cirlib.engine.Trainer` (the
same data order, masks and optimizer) without its checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The paper's chain (cirlib.methods.registry.CHAIN_METHODS; written out: the base commits predate the registry).
METHODS = ("cam", "has", "complementary", "caam", "ssam", "full")

_CHILD = r"""
import hashlib, json, sys
import torch
try:  # the layout with cirlib.runs and cirlib.engine.builders
    from cirlib.runs.experiments import experiment_config
    from cirlib.engine.builders import build_data, build_model, num_classes, build_optimizer, build_train_loader
except ImportError:  # the earlier layout (cirlib.experiments, private builders in cirlib.engine.trainer)
    from cirlib.experiments import experiment_config
    from cirlib.engine.trainer import _build_data as build_data, _build_model as build_model
    from cirlib.engine.trainer import _num_classes as num_classes, build_optimizer, build_train_loader
from cirlib.utils import seed_everything

torch.set_num_threads(1)
try:  # what cirlib.engine.Trainer does on the CPU, where the tree has it
    from cirlib.utils.memory import keep_freed_cpu_memory
    keep_freed_cpu_memory()
except ImportError:
    pass
steps, methods = int(sys.argv[1]), sys.argv[2].split(",")
out = {}
for method in methods:
    config = experiment_config(method, seed=0)
    seed_everything(config.seed)
    train_set = build_data(config, "train", train=True)
    model = build_model(config, config.model.num_classes or num_classes(train_set))
    torch.manual_seed(config.seed)  # what fit() does for rank 0
    loader = build_train_loader(train_set, config.data.batch_size, seed=config.seed)
    loader.sampler.set_epoch(0)
    loader.generator.manual_seed(config.seed * 100003)
    opt = build_optimizer(model, config.train)
    model.train()
    losses = []
    for i, batch in enumerate(loader):
        if i == steps:
            break
        loss = model.training_loss(batch["image"], batch["label"])["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss).hex())
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode()); digest.update(tensor.detach().contiguous().numpy().tobytes())
    for state in opt.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                digest.update(value.detach().contiguous().numpy().tobytes())
    out[method] = {"losses": losses, "sha256": digest.hexdigest()}
print(json.dumps(out))
"""


def _run(tree: Path, steps: int, methods: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1")
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(steps), ",".join(methods)], cwd=tree, env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"training in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="HEAD~1", help="the commit to compare with (default HEAD~1)")
    parser.add_argument("--steps", type=int, default=4, help="training steps per method (default 4)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="cirlib-rev-") as tmp:
        other = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), rev], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            theirs = _run(other, args.steps, args.methods)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False,
                           capture_output=True)
    ours = _run(ROOT, args.steps, args.methods)
    same = True
    for method in args.methods:
        equal = theirs[method] == ours[method]
        same &= equal
        print(f"{method:14s} {'identical' if equal else 'DIFFERENT'}: {args.steps} losses "
              f"{[float.fromhex(v) for v in ours[method]['losses']]}, weights sha256 {ours[method]['sha256'][:16]}"
              + ("" if equal else f" vs {rev}: {[float.fromhex(v) for v in theirs[method]['losses']]}, "
                 f"{theirs[method]['sha256'][:16]}"))
    print(f"working tree vs {rev}: {'bit for bit identical' if same else 'numbers differ'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
