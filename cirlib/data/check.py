"""``cirlib data check``: decode every image of a run's splits and list the files that fail, one line each.

Training checks only the image headers before its first step (seconds for CUB, see
:func:`cirlib.engine.fit.prepare_split`); a file whose header is intact but whose pixels are cut
(an interrupted download) is found only when it is read, possibly after training. This command
reads every pixel of the splits a config uses, as the run would (``data.train_limit``,
``data.eval_limit``), before spending the training time::

    cirlib data check --config configs/cub/resnet50_cam.yaml --set data.root=/data/CUB_200_2011
    cirlib data check --config configs/cub/resnet50_cam.yaml --split test

Each unreadable image is one line on stdout (``<split>: <error naming the file>``); a summary
line goes to stderr. Exit code 0 when every image decodes, 1 when some do not.
"""

from __future__ import annotations

import argparse
import sys

from tqdm.auto import tqdm

__all__ = ["check_splits", "register_check"]


def check_splits(config, splits: list[str] | None = None, progress: bool = True, out=None) -> tuple[int, int]:
    """Decode every image of ``splits`` (default: train, ``eval.val_split``, ``eval.split``) of ``config``.

    Prints one line per unreadable image to ``out`` (stdout by default).

    Returns:
        ``(images checked, unreadable images)``.

    Raises:
        SplitNotAvailableError: a split asked for by name that the layout does not have.
        ValueError, OSError: the metadata itself is bad (one line, as ``cirlib train`` reports it).
    """
    from cirlib.data.builders import base_dataset
    from cirlib.data.errors import SplitNotAvailableError
    from cirlib.engine.builders import build_data

    out = out if out is not None else sys.stdout
    asked = splits is not None
    if splits is None:
        splits = ["train"] + [s for s in (config.eval.val_split, config.eval.split) if s]
    checked = bad = 0
    for split in dict.fromkeys(splits):
        try:
            dataset = build_data(config, split, train=split == "train")
        except SplitNotAvailableError:
            if asked:
                raise
            continue
        base = base_dataset(dataset)
        if not hasattr(base, "unreadable_images"):  # the synthetic data is rendered, not read
            continue
        indices = list(getattr(dataset, "indices", range(len(base))))
        for _, message in base.unreadable_images(
                tqdm(indices, desc=f"check {split}", disable=not progress, leave=False)):
            print(f"{split}: {message}", file=out, flush=True)
            bad += 1
        checked += len(indices)
    return checked, bad


def _cmd_check(args: argparse.Namespace) -> int:
    from cirlib.config import load_config

    config = load_config(args.config, overrides=args.set)
    if config.data.name == "synthetic":
        print("cirlib data check: the synthetic dataset is rendered in memory; there are no files to check.",
              file=sys.stderr)
        return 0
    checked, bad = check_splits(config, args.split, progress=not args.no_progress)
    root = config.data.root
    if bad:
        print(f"cirlib data check: {bad} of {checked} images under {root} cannot be read (listed above); fix or "
              "remove them before training.", file=sys.stderr)
        return 1
    print(f"cirlib data check: all {checked} images under {root} decode.", file=sys.stderr)
    return 0


def register_check(data_sub: argparse._SubParsersAction) -> None:
    """Add ``cirlib data check`` to the ``cirlib data`` subcommands."""
    p = data_sub.add_parser(
        "check",
        help="decode every image of a config's splits and list the unreadable ones (one line each)",
        description=__doc__.split("\n\n")[0] + " Exit code 1 when an image cannot be read.",
    )
    p.add_argument("--config", "-c", default=None, help="YAML config of the run (its data section is used)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="dotted overrides, as for `cirlib train`, e.g. --set data.root=/data/CUB_200_2011")
    p.add_argument("--split", action="append", choices=("train", "val", "test"), default=None,
                   help="split to check (repeatable; default: train, eval.val_split and eval.split)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check)
