"""Command line: ``cirlib train`` and ``cirlib evaluate`` (also ``python -m cirlib``).

::

    cirlib train --config configs/synthetic/tiny.yaml --set train.epochs=3 model.method=has
    cirlib train --config configs/synthetic/tiny.yaml --resume
    cirlib evaluate --checkpoint runs/tiny/final.pt --split test --out metrics_test.json
    torchrun --nproc_per_node=2 -m cirlib train --config configs/cub/resnet50_cam.yaml

``--set`` may be repeated (every group applies). Errors are one line, ``cirlib <command>: error:
...``, naming the key, file or parameter and the fix (exit code 2); ``--debug`` or ``CIRLIB_DEBUG=1``
shows the traceback instead; Ctrl-C and SIGTERM say how to resume and exit with 130 and 143.

The parser is built by :func:`build_parser` (nothing happens at import) from :data:`SUBCOMMANDS`,
a dict ``name -> registrar(subparsers)``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

Registrar = Callable[[argparse._SubParsersAction], None]


def _cmd_train(args: argparse.Namespace) -> int:
    from cirlib.config import load_config
    from cirlib.engine import fit

    config = load_config(args.config, overrides=args.set)
    if args.device:
        config.device = args.device
        config.validate(source="--device")
    args.output_dir = config.resolved_output_dir()  # named by the Ctrl-C message
    rank = int(os.environ.get("RANK", "0"))  # fit() has closed the process group by now
    result = fit(config, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
    if rank == 0 and result.test is not None:
        print(json.dumps(_headline(result.test), indent=2))
    return 0


def _headline(metrics: dict) -> dict:
    keys = ("top1", "top5", "maxboxacc", "maxboxacc_v2", "top1_loc", "gt_known_loc", "pxap", "num_images")
    return {k: metrics[k] for k in keys if k in metrics}


#: Config keys `cirlib evaluate --set` applies; the rest would be ignored, so they are refused.
EVALUATE_KEYS = ("data.", "eval.", "device", "train.amp", "train.channels_last")


def _check_evaluate_overrides(overrides: Sequence[str]) -> None:
    """Refuse ``--set`` keys that evaluation would silently ignore (the model comes from the checkpoint)."""
    from cirlib.config import ConfigError

    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key == "model" or key.startswith("model."):
            raise ConfigError(
                f"--set {item!r}: the model is rebuilt from the checkpoint's own config, so model.* cannot be "
                "changed at evaluation; evaluate a checkpoint trained with these settings instead."
            )
        if not any(key == k or (k.endswith(".") and key.startswith(k)) for k in EVALUATE_KEYS):
            raise ConfigError(
                f"--set {item!r}: {key} has no effect on evaluation; evaluate accepts data.*, eval.*, device, "
                "train.amp and train.channels_last."
            )


def _evaluation_split(args: argparse.Namespace, config) -> str:
    """``--split`` or ``--set eval.split``; both given and different is an error."""
    from cirlib.config import ConfigError

    set_split = any(item.split("=", 1)[0].strip() == "eval.split" for item in args.set)
    if args.split is not None and set_split and args.split != config.eval.split:
        raise ConfigError(
            f"--split {args.split} and --set eval.split={config.eval.split} disagree; give only one of them."
        )
    return args.split or config.eval.split


def _checkpoint_position(path: str) -> dict:
    """Where in training ``path`` was written (``trained``: said on stderr, stored with the metrics)."""
    from cirlib.engine.checkpoint import checkpoint_position, checkpoint_summary, read_checkpoint

    ckpt = read_checkpoint(path, mmap=True)
    where = checkpoint_position(ckpt)
    summary = checkpoint_summary(ckpt)
    return {"trained": where, "epochs_completed": summary["epoch"], "global_step": summary["global_step"]}


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from cirlib.config import apply_overrides, config_from_dict, config_to_dict
    from cirlib.data import SplitNotAvailableError
    from cirlib.engine import build_eval_loader, evaluate_model, load_checkpoint
    from cirlib.engine.distributed import init_distributed, is_main_process
    from cirlib.engine.fit import DataSplitError, prepare_split
    from cirlib.utils import atomic_write_json, resolve_device, seed_everything

    _check_evaluate_overrides(args.set)
    model, config = load_checkpoint(args.checkpoint, device="cpu")
    position = _checkpoint_position(args.checkpoint)
    if args.set:
        config = config_from_dict(
            apply_overrides(config_to_dict(config), args.set), source=f"{args.checkpoint} with --set"
        )
    split = _evaluation_split(args, config)
    try:
        dataset = prepare_split(config, split, "--split")
    except SplitNotAvailableError as exc:
        raise DataSplitError(f"--split {split}: {exc}") from exc
    device = resolve_device(args.device or config.device, context="cli")
    created = init_distributed(device.type)
    try:
        seed_everything(config.seed)
        model.to(device)
        pin = config.data.pin_memory and device.type == "cuda"
        loader = build_eval_loader(dataset, config.data.eval_batch_size, config.data.num_workers, pin)
        if is_main_process():
            print(f"[cirlib] scoring {args.checkpoint}: {position['trained']}.", file=sys.stderr)
        metrics = evaluate_model(
            model,
            loader,
            device=device,
            iou_thresholds=tuple(config.eval.iou_thresholds),
            cam_interval=config.eval.cam_interval,
            amp=config.train.amp == "bf16",
            channels_last=config.train.channels_last,
            progress=not args.no_progress,
            desc=split,
            save_maps=args.save_maps,
        )
        if is_main_process():
            payload = {"checkpoint": str(args.checkpoint), **position, "split": split, **metrics}
            if args.out:
                atomic_write_json(args.out, payload)
            print(json.dumps(_headline(metrics), indent=2))
        return 0
    finally:
        if created:
            torch.distributed.destroy_process_group()


def _add_debug(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's default must not overwrite `cirlib --debug train ...`.
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the full traceback of an error (also CIRLIB_DEBUG=1)")


def _register_train(sub: argparse._SubParsersAction) -> None:
    from cirlib.methods import describe_methods

    p = sub.add_parser(
        "train",
        help="train one experiment from a YAML config",
        description="Train a WSOL model. Writes config.yaml, last.pt, final.pt and metrics.json (and best.pt "
        "when eval.val_split is set) in the run's output_dir, which belongs to this run: it holds run.lock "
        "while training (a second run there is refused), and a folder holding another run needs --resume or "
        "--overwrite. Ctrl-C and SIGTERM stop at the next step with last.pt written (resume with --resume). "
        "Under torchrun it uses DDP.",
        epilog="methods (model.method, from cirlib/methods/registry.py):\n" + describe_methods(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", default=None, help="YAML config (default: the synthetic defaults)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="dotted overrides parsed as YAML, e.g. --set train.epochs=3 model.method=has "
                        "(repeatable: every --set group applies, later ones win)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in output_dir from its last.pt (refused when any config key but device "
                        "and output_dir differs; a completed run is left as it is)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in output_dir (its config.yaml, checkpoints and metrics.json); "
                        "without --resume or --overwrite a folder holding another run is refused")
    p.add_argument("--device", default=None, help="override config.device (auto, cpu, cuda, cuda:N)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (also TQDM_DISABLE=1)")
    _add_debug(p)
    p.set_defaults(func=_cmd_train)


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint (MaxBoxAcc, MaxBoxAccV2, Top-1/5 Loc, GT-known Loc, PxAP)",
        description="Evaluate a checkpoint written by `cirlib train` on a split of its dataset. The model comes "
        "from the checkpoint: --set accepts data.*, eval.*, device, train.amp and train.channels_last.",
    )
    p.add_argument("--checkpoint", required=True, help="last.pt, final.pt (or best.pt) of a run")
    p.add_argument("--split", default=None, choices=("train", "val", "test"),
                   help="split to evaluate (default: eval.split of the run's config, usually test)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="overrides of the stored config, e.g. --set data.root=/data/CUB eval.cam_interval=0.001")
    p.add_argument("--out", default=None, help="write the metrics as JSON here")
    p.add_argument("--save-maps", default=None, metavar="DIR",
                   help="also write every scored map as DIR/<image_id>.npy, the reference's layout "
                        "(`cirlib score --scoremap-root DIR` gives the same numbers)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: the run's config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_debug(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_score(args: argparse.Namespace) -> int:
    from cirlib.scoring import format_scores, score_scoremaps
    from cirlib.utils import atomic_write_json

    scores = score_scoremaps(
        args.scoremap_root, args.metadata_root, args.dataset, args.split, mask_root=args.mask_root,
        cam_curve_interval=args.cam_curve_interval, iou_thresholds=args.iou_thresholds,
        multi_contour=args.multi_contour, workers=args.workers, strict=args.strict,
    )
    if args.json:
        atomic_write_json(args.json, scores)
    print(format_scores(scores))
    return 0


def _register_score(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score any WSOL method's saved maps with the reference protocol (MaxBoxAcc, MaxBoxAccV2, PxAP)",
        description="Score the maps of any WSOL codebase on the inputs of wsolevaluation's evaluation.py: "
        "SCOREMAP_ROOT/<image_id>.npy (224x224 floats in [0, 1]) and METADATA_ROOT/<DATASET>/<split>/"
        "{image_ids,image_sizes,localization}.txt. GT boxes are resized to 224 as the reference does. "
        "See docs/metrics.md.",
    )
    p.add_argument("--scoremap-root", required=True, help="folder of <image_id>.npy maps")
    p.add_argument("--metadata-root", required=True, help="wsolevaluation's metadata/ folder (holds <DATASET>/<split>/)")
    p.add_argument("--dataset", required=True, choices=("CUB", "ILSVRC", "OpenImages"))
    p.add_argument("--split", required=True, choices=("val", "test"))
    p.add_argument("--mask-root", default=None,
                   help="OpenImages: the folder holding OpenImages/<mask path> (wsolevaluation's dataset/)")
    p.add_argument("--cam-curve-interval", type=float, default=0.001,
                   help="CAM thresholds numpy.arange(0, 1, interval) (default 0.001)")
    p.add_argument("--iou-thresholds", type=float, nargs="+", default=[30, 50, 70], metavar="PERCENT",
                   help="IoU thresholds in percent (default 30 50 70)")
    contour = p.add_mutually_exclusive_group()
    contour.add_argument("--multi-contour", dest="multi_contour", action="store_true", default=True,
                         help="a box per contour, the best one counts (MaxBoxAccV2; the default)")
    contour.add_argument("--single-contour", dest="multi_contour", action="store_false",
                         help="the box of the largest contour only (the original MaxBoxAcc)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the scores and curves as JSON here")
    p.add_argument("--workers", type=int, default=1, help="processes scoring maps in parallel (default 1)")
    p.add_argument("--strict", action="store_true",
                   help="maps for image ids the metadata does not list are an error (else counted and reported)")
    _add_debug(p)
    p.set_defaults(func=_cmd_score)


def _register_notebook(sub: argparse._SubParsersAction) -> None:
    from cirlib.tools import notebooks

    p = sub.add_parser(
        "notebook",
        help="run the teaching notebooks headless (papermill), prepare them for nbval, make student copies",
        description=notebooks.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_debug(p)
    notebooks.build_parser(p)
    p.set_defaults(func=notebooks.main_from_args)


def _register_data(sub: argparse._SubParsersAction) -> None:
    from cirlib.data.export import register

    register(sub)


#: name -> function adding that subcommand's parser (it sets ``func``, taking the parsed namespace
#: and returning an exit code).
SUBCOMMANDS: dict[str, Registrar] = {
    "train": _register_train,
    "evaluate": _register_evaluate,
    "score": _register_score,
    "notebook": _register_notebook,
    "data": _register_data,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``cirlib`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="cirlib",
        description="Where to Look? complementary image regions for WSOL: training and evaluation.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also CIRLIB_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for registrar in SUBCOMMANDS.values():
        registrar(sub)
    return parser


def one_line_error(exc: BaseException, context: str = "cli") -> str:
    """The one line the CLI prints for an error: what went wrong, where, and the fix.

    A DataLoader worker's error arrives wrapped in a ``RuntimeError`` that holds the worker's whole
    traceback; its last line is the original message. A message of several lines (an expected
    layout, say) keeps its first line, with a pointer to ``--debug``.
    """
    from cirlib.utils.device import CPU_HINTS, DeviceUnavailableError

    if isinstance(exc, DeviceUnavailableError):
        return f"device {exc.requested!r} was asked for but {exc.what}. Use {CPU_HINTS[context]} (or auto)."
    from cirlib.utils.errors import error_lines

    lines = error_lines(exc)
    if not lines:
        return type(exc).__name__
    line = lines[0]
    if isinstance(exc, KeyError):
        line = f"missing key {line}"
    if len(lines) > 1:
        if line.endswith("Expected layout:"):
            line = line[: -len("Expected layout:")].rstrip() + " (--debug prints the expected layout)"
        else:
            line += " (--debug shows the full message)"
    return line


def _interrupted(args: argparse.Namespace, how: str = "") -> str:
    if args.command == "train":
        out = getattr(args, "output_dir", None)
        last = Path(out) / "last.pt" if out else None
        if last is None or not last.is_file():
            return f"interrupted{how} before the first checkpoint was written; run the same command to start again."
        return (f"interrupted{how}. {last} holds the last checkpoint (the step it stopped at): run the same "
                "command with --resume to continue.")
    return f"interrupted{how}; nothing was written."


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cirlib`` and ``python -m cirlib``; returns the exit code.

    Every error is one line ``cirlib <command>: error: ...`` naming the key, file or parameter and
    the fix (exit code 2; 1 for an unexpected error); ``--debug`` (or ``CIRLIB_DEBUG=1``) shows the
    traceback instead. Ctrl-C (SIGTERM) prints how to resume and exits with 130 (143).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("CIRLIB_DEBUG", "") not in ("", "0")
    from cirlib.engine.signals import terminate_as_interrupt

    try:
        with terminate_as_interrupt():  # SIGTERM (Slurm, docker stop, kill) ends a command like Ctrl-C
            return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        signum = getattr(exc, "signum", 2)
        how = " (SIGTERM)" if signum == 15 else ""
        print(f"cirlib {args.command}: {_interrupted(args, how)}", file=sys.stderr)
        return 128 + signum
    except Exception as exc:  # noqa: BLE001 - every error becomes one line unless --debug
        if debug:
            raise
        expected = isinstance(exc, (ValueError, OSError, RuntimeError, LookupError))
        line = one_line_error(exc)
        if not expected:
            line += f" ({type(exc).__name__}; rerun with --debug for the traceback and report it)"
        print(f"cirlib {args.command}: error: {line}", file=sys.stderr)
        return 2 if expected else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
