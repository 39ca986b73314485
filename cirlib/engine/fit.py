"""Train and evaluate one experiment from its config: :func:`fit`, with the checks it runs first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Subset
from tqdm.auto import tqdm

from cirlib.config import ExperimentConfig
from cirlib.engine.builders import (
    base_dataset,
    build_data,
    build_eval_loader,
    build_model,
    build_train_loader,
    num_classes,
)
from cirlib.engine.checkpoint import capture_rng_state, restore_rng_state
from cirlib.engine.distributed import barrier, get_rank, init_distributed, is_distributed, is_main_process
from cirlib.engine.trainer import RunResult, Trainer
from cirlib.utils import resolve_device, seed_everything

__all__ = ["DataSplitError", "TRAIN_FILE_CHECK_LIMIT", "check_output_dir", "fit", "prepare_split"]


class DataSplitError(ValueError):
    """A split the run needs cannot be built or read; the message names the config key and the file."""


#: Training splits larger than this are checked on this many evenly spaced images (ILSVRC's 1.28
#: million headers would take minutes); evaluation splits are always checked completely.
TRAIN_FILE_CHECK_LIMIT = 20_000


def check_output_dir(path: str | os.PathLike) -> Path:
    """Check, without writing anything, that the run folder can be created and written.

    Raises:
        ConfigError: ``output_dir`` is a file, or its nearest existing parent is not writable.
    """
    from cirlib.config import ConfigError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output_dir={str(path)!r} is a file, not a folder. Choose a folder: --set output_dir=DIR.")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            f"output_dir={str(path)!r} cannot be created: {probe} is a file. Choose another: --set output_dir=DIR."
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"output_dir={str(path)!r} is not writable ({probe} does not allow writing). "
            "Choose a folder you can write to: --set output_dir=DIR."
        )
    return path


def _base_and_indices(dataset) -> tuple[Any, list[int]]:
    if isinstance(dataset, Subset):
        return dataset.dataset, list(dataset.indices)
    return dataset, list(range(len(dataset)))


def prepare_split(config: ExperimentConfig, split: str, key: str, train: bool = False, log=None):
    """Build one split the run will use and check it before any training step.

    The metadata is parsed, the split must not be empty (after ``data.train_limit`` /
    ``data.eval_limit``), and for real datasets every image's header is read and its boxes checked
    against its size (a training split above :data:`TRAIN_FILE_CHECK_LIMIT` images on a sample).

    Args:
        config: the experiment.
        split: ``train``, ``val`` or ``test``.
        key: the config key that chose the split (``eval.split``), named in errors.
        train: apply ``data.train_limit`` instead of ``data.eval_limit``.
        log: called with a notice when only a sample is checked.

    Raises:
        DataSplitError: naming ``key``, the split and the file (one line).
        SplitNotAvailableError: the layout has no such split (the caller decides).
    """
    from cirlib.data import SplitNotAvailableError

    where = f"{key}={split!r}" if key != "data.root" else f"the {split!r} split"
    try:
        dataset = build_data(config, split, train=train)
    except SplitNotAvailableError:
        raise
    except (OSError, ValueError) as exc:
        raise DataSplitError(f"{where}: {exc}") from exc
    if len(dataset) == 0:
        raise DataSplitError(f"{where}: the {split!r} split is empty; check data.root and the split's metadata.")
    base, indices = _base_and_indices(dataset)
    if hasattr(base, "check_files"):
        if train and len(indices) > TRAIN_FILE_CHECK_LIMIT:
            step = len(indices) / TRAIN_FILE_CHECK_LIMIT
            indices = [indices[int(k * step)] for k in range(TRAIN_FILE_CHECK_LIMIT)]
            if log is not None:
                log(f"checking {len(indices)} of the {len(dataset)} training images before training (all of val/test).")
        try:
            base.check_files(indices)
        except (OSError, ValueError) as exc:
            raise DataSplitError(f"{where}: {exc}") from exc
    return dataset


def fit(config: ExperimentConfig, resume: bool = False, progress: bool = True) -> RunResult:
    """Train and evaluate one experiment described by ``config``.

    Builds the datasets (``cirlib.data.build_dataset``), the model (``cirlib.methods.build_model``),
    seeded loaders and a :class:`Trainer`; trains (validating on ``eval.val_split`` to keep
    ``best.pt``), evaluates the final model on ``eval.split`` and writes ``metrics.json``. Under
    ``torchrun`` it runs DDP (gloo on the CPU, nccl on CUDA); only rank 0 writes.

    Fails early: the output folder, and every split the run uses (train, ``eval.val_split``,
    ``eval.split``), are built and checked before the first step (see :func:`prepare_split`).
    On the official CUB-200-2011 layout, which has no ``val`` split, ``eval.val_split=val`` falls back
    to no validation with a logged notice (``best.pt`` is then not written). ``metrics.json`` says
    ``"completed"`` only once the final evaluation is written; a failed evaluation is recorded as
    ``"failed: evaluation"`` with the error.

    Args:
        config: the experiment (see :mod:`cirlib.config`).
        resume: continue from ``<output_dir>/last.pt`` when it exists.
        progress: tqdm progress bars.

    Returns:
        A :class:`RunResult` (the same numbers on every rank).
    """
    from cirlib.data import SplitNotAvailableError

    config.validate()
    device = resolve_device(config.device)
    output_dir = check_output_dir(config.resolved_output_dir())
    created_group = init_distributed(device.type)

    def log(message: str) -> None:
        if is_main_process():
            tqdm.write(f"[cirlib] {message}")

    try:
        if is_distributed() and device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        seed_everything(config.seed)
        train_set = prepare_split(config, "train", "data.root", train=True, log=log)
        if hasattr(base_dataset(train_set), "set_augmentation_seed"):
            # crops and flips from (seed, epoch, image): the same whatever the rank or worker reading it
            base_dataset(train_set).set_augmentation_seed(config.seed)
        # Building the evaluation splits early must not move the random streams the training uses.
        rng_before = capture_rng_state()
        val_set = None
        if config.eval.val_split is not None and config.train.eval_every > 0:
            try:
                val_set = prepare_split(config, config.eval.val_split, "eval.val_split")
            except SplitNotAvailableError as exc:
                log(f"eval.val_split={config.eval.val_split!r} is not available, so training runs without "
                    f"validation and writes no best.pt (eval.val_split=null silences this): {exc}")
        try:
            test_set = prepare_split(config, config.eval.split, "eval.split")
        except SplitNotAvailableError as exc:
            raise DataSplitError(f"eval.split={config.eval.split!r}: {exc}") from exc
        restore_rng_state(rng_before)
        n_classes = config.model.num_classes or num_classes(train_set)
        model = build_model(config, n_classes)
        # Each rank draws its own hiding masks; the data order is seeded separately.
        torch.manual_seed(config.seed + 1000 * get_rank())
        pin = config.data.pin_memory and device.type == "cuda"
        train_loader = build_train_loader(
            train_set, config.data.batch_size, seed=config.seed, num_workers=config.data.num_workers,
            pin_memory=pin,
        )
        val_loader = None
        if val_set is not None:
            val_loader = build_eval_loader(val_set, config.data.eval_batch_size, config.data.num_workers, pin)
        test_loader = build_eval_loader(test_set, config.data.eval_batch_size, config.data.num_workers, pin)
        trainer = Trainer(
            model, train_loader, config, val_loader=val_loader, output_dir=output_dir,
            device=device, progress=progress,
        )
        result = trainer.fit(resume=resume, final_status="evaluating")
        try:
            result.test = trainer.evaluate(test_loader, desc=config.eval.split)
        except Exception as exc:
            trainer.write_metrics("failed: evaluation", extra={"error": f"{type(exc).__name__}: {exc}"})
            raise
        result.metrics_path = trainer.write_metrics("completed", test=result.test)
        t = result.test
        trainer.log(
            f"{config.eval.split}: top-1 {t['top1']:.2f}, MaxBoxAcc "
            + "/".join(f"{v:.1f}" for v in (t.get("maxboxacc") or {}).values())
            + f", MaxBoxAccV2 {t.get('maxboxacc_v2', float('nan')):.2f}"
            + (f", PxAP {t['pxap']:.2f}" if t.get("pxap") is not None else "")
            + (f" -> {result.metrics_path}" if result.metrics_path else "")
        )
        barrier()
        return result
    finally:
        if created_group:
            torch.distributed.destroy_process_group()
