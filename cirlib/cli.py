"""Command line: ``cirlib train`` and ``cirlib evaluate`` (also ``python -m cirlib``).

::

    cirlib train --config configs/synthetic/tiny.yaml --set train.epochs=3 model.method=has
    cirlib train --config configs/synthetic/tiny.yaml --resume
    cirlib evaluate --checkpoint runs/tiny/final.pt --split test --out metrics_test.json
    torchrun --nproc_per_node=2 -m cirlib train --config configs/cub/resnet50_cam.yaml

The parser is built by :func:`build_parser` (nothing happens at import). Subcommands are
registered through :data:`SUBCOMMANDS`, a dict ``name -> registrar(subparsers)``; another module
adds a group (e.g. ``notebook``) with :func:`register_subcommand` before :func:`main` runs, or
by adding an entry to :data:`_BUILTIN_SUBCOMMANDS` here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main", "register_subcommand"]

Registrar = Callable[[argparse._SubParsersAction], None]


def _cmd_train(args: argparse.Namespace) -> int:
    from cirlib.config import load_config
    from cirlib.engine import fit

    config = load_config(args.config, overrides=args.set)
    if args.device:
        config.device = args.device
    rank = int(os.environ.get("RANK", "0"))  # fit() has closed the process group by now
    result = fit(config, resume=args.resume, progress=not args.no_progress)
    if rank == 0 and result.test is not None:
        print(json.dumps(_headline(result.test), indent=2))
    return 0


def _headline(metrics: dict) -> dict:
    keys = ("top1", "top5", "maxboxacc", "maxboxacc_v2", "top1_loc", "gt_known_loc", "pxap", "num_images")
    return {k: metrics[k] for k in keys if k in metrics}


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from cirlib.config import apply_overrides, config_from_dict, config_to_dict
    from cirlib.engine import build_eval_loader, evaluate_model, load_checkpoint
    from cirlib.engine.distributed import init_distributed, is_main_process
    from cirlib.engine.trainer import _build_data
    from cirlib.utils import atomic_write_json, resolve_device, seed_everything

    device = resolve_device(args.device or "auto")
    created = init_distributed(device.type)
    try:
        model, config = load_checkpoint(args.checkpoint, device="cpu")
        if args.set:
            config = config_from_dict(
                apply_overrides(config_to_dict(config), args.set), source=f"{args.checkpoint} with --set"
            )
        if args.device is None:
            device = resolve_device(config.device)
        seed_everything(config.seed)
        model.to(device)
        dataset = _build_data(config, args.split, train=False)
        pin = config.data.pin_memory and device.type == "cuda"
        loader = build_eval_loader(dataset, config.data.eval_batch_size, config.data.num_workers, pin)
        metrics = evaluate_model(
            model,
            loader,
            device=device,
            iou_thresholds=tuple(config.eval.iou_thresholds),
            cam_interval=config.eval.cam_interval,
            amp=config.train.amp == "bf16",
            channels_last=config.train.channels_last,
            progress=not args.no_progress,
            desc=args.split,
        )
        if is_main_process():
            payload = {"checkpoint": str(args.checkpoint), "split": args.split, **metrics}
            if args.out:
                atomic_write_json(args.out, payload)
            print(json.dumps(_headline(metrics), indent=2))
        return 0
    finally:
        if created:
            torch.distributed.destroy_process_group()


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train one experiment from a YAML config",
        description="Train a WSOL model. Writes config.yaml, last.pt, best.pt, final.pt and metrics.json "
        "in the run's output_dir. Under torchrun it uses DDP.",
    )
    p.add_argument("--config", "-c", default=None, help="YAML config (default: the synthetic defaults)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="dotted overrides parsed as YAML, e.g. --set train.epochs=3 model.method=has")
    p.add_argument("--resume", action="store_true", help="continue from <output_dir>/last.pt when it exists")
    p.add_argument("--device", default=None, help="override config.device (auto, cpu, cuda, cuda:N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (also TQDM_DISABLE=1)")
    p.set_defaults(func=_cmd_train)


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint (MaxBoxAcc, MaxBoxAccV2, Top-1/5 Loc, GT-known Loc, PxAP)",
        description="Evaluate a checkpoint written by `cirlib train` on a split of its dataset.",
    )
    p.add_argument("--checkpoint", required=True, help="last.pt, best.pt or final.pt of a run")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="overrides of the stored config, e.g. --set data.root=/data/CUB eval.cam_interval=0.001")
    p.add_argument("--out", default=None, help="write the metrics as JSON here")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: the run's config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_evaluate)


def _register_notebook(sub: argparse._SubParsersAction) -> None:
    from cirlib import notebooks

    p = sub.add_parser(
        "notebook",
        help="run the teaching notebooks headless (papermill), prepare them for nbval, make student copies",
        description=notebooks.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    notebooks.build_parser(p)
    p.set_defaults(func=notebooks.main_from_args)


def _register_data(sub: argparse._SubParsersAction) -> None:
    from cirlib.data.export import register

    register(sub)


_BUILTIN_SUBCOMMANDS: dict[str, Registrar] = {
    "train": _register_train,
    "evaluate": _register_evaluate,
    "notebook": _register_notebook,
    "data": _register_data,
}

#: name -> function adding a subparser; extend with :func:`register_subcommand`.
SUBCOMMANDS: dict[str, Registrar] = dict(_BUILTIN_SUBCOMMANDS)


def register_subcommand(name: str, registrar: Registrar) -> None:
    """Add a subcommand group (e.g. ``notebook``); ``registrar(subparsers)`` adds its parser and
    sets ``func`` (a callable taking the parsed namespace and returning an exit code)."""
    SUBCOMMANDS[name] = registrar


def build_parser() -> argparse.ArgumentParser:
    """The ``cirlib`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="cirlib",
        description="Where to Look? complementary image regions for WSOL: training and evaluation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for registrar in SUBCOMMANDS.values():
        registrar(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cirlib`` and ``python -m cirlib``; returns the exit code."""
    from cirlib.config import ConfigError
    from cirlib.engine.trainer import NonFiniteLossError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, NonFiniteLossError, ValueError) as exc:
        print(f"cirlib {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
