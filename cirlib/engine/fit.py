"""Train and evaluate one experiment from its config: :func:`fit`, with the checks it runs first."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
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

__all__ = [
    "DataSplitError",
    "EvaluationError",
    "TRAIN_FILE_CHECK_LIMIT",
    "check_num_classes",
    "check_output_dir",
    "fit",
    "prepare_split",
]


class DataSplitError(ValueError):
    """A split the run needs cannot be built or read; the message names the config key and the file."""


#: Training splits larger than this are checked on this many evenly spaced images (ILSVRC's 1.28
#: million headers would take minutes); evaluation splits are always checked completely.
TRAIN_FILE_CHECK_LIMIT = 20_000


def check_output_dir(path: str | os.PathLike) -> Path:
    """Check, leaving nothing behind, that the run folder can be created and written
    (:func:`cirlib.utils.io.folder_problem`: a real write test, so root and read-only mounts are covered).

    Raises:
        ConfigError: ``output_dir`` is a file, or cannot be created or written.
    """
    from cirlib.config import ConfigError
    from cirlib.utils.io import folder_problem

    path = Path(path)
    problem = folder_problem(path)
    if problem is not None:
        raise ConfigError(
            f"output_dir={str(path)!r} {problem}. Choose a folder you can write to: --set output_dir=DIR."
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


def fit(config: ExperimentConfig, resume: bool = False, progress: bool = True, overwrite: bool = False) -> RunResult:
    """Train and evaluate one experiment described by ``config``.

    Builds the datasets (``cirlib.data.build_dataset``), the model (``cirlib.methods.build_model``),
    seeded loaders and a :class:`Trainer`; trains (validating on ``eval.val_split`` to keep
    ``best.pt``), evaluates the final model on ``eval.split`` and writes ``metrics.json``. Under
    ``torchrun`` it runs DDP (gloo on the CPU, nccl on CUDA); only rank 0 writes.

    Fails early, before anything is written: the output folder (writable, and not another run's:
    :mod:`cirlib.engine.run_folder`), every split the run uses (train, ``eval.val_split``,
    ``eval.split``, see :func:`prepare_split`) and ``model.num_classes`` against the labels. While it
    writes, the run holds the folder's lock (``run.lock``).
    On the official CUB-200-2011 layout, which has no ``val`` split, ``eval.val_split=val`` falls back
    to no validation with a logged notice (``best.pt`` is then not written). ``metrics.json`` says
    ``"completed"`` only once the final evaluation is written; a failed evaluation is recorded as
    ``"failed: evaluation"`` with the error (``final.pt`` keeps the trained weights), an interrupted
    run (Ctrl-C, SIGTERM) as ``"interrupted"``.

    Args:
        config: the experiment (see :mod:`cirlib.config`).
        resume: continue from ``<output_dir>/last.pt`` (same config, every key but device and
            output_dir); a completed run is returned as it is, without training.
        progress: tqdm progress bars.
        overwrite: remove the files of the run already in ``output_dir`` and train anew.

    Returns:
        A :class:`RunResult` (the same numbers on every rank; ``model`` is ``None`` for a completed
        run that ``resume`` found).
    """
    from cirlib.data import SplitNotAvailableError
    from cirlib.engine.run_folder import RunLock, clear_run_files, plan_run_folder

    config.validate()
    device = resolve_device(config.device)
    output_dir = check_output_dir(config.resolved_output_dir())
    main_rank = int(os.environ.get("RANK", "0")) == 0
    plan = plan_run_folder(config, output_dir, resume=resume, overwrite=overwrite, check_lock=main_rank)

    def log(message: str) -> None:
        if is_main_process():
            tqdm.write(f"[cirlib] {message}")

    if plan == "completed":
        return _completed_run(output_dir, log)
    created_group = init_distributed(device.type)
    lock = None
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
        splits = {"train": train_set, config.eval.split: test_set}
        if val_set is not None:
            splits[config.eval.val_split] = val_set
        check_num_classes(config, splits)
        n_classes = config.model.num_classes or num_classes(train_set)
        model = build_model(config, n_classes)
        if is_main_process():  # the folder is ours from here on; plan again, another run may have written
            lock = RunLock(output_dir).acquire()
            if lock.stale_pid:
                log(f"took over {lock.path} from PID {lock.stale_pid}, which is no longer running.")
            plan = plan_run_folder(config, output_dir, resume=resume, overwrite=overwrite, check_lock=False)
            if plan == "completed":
                return _completed_run(output_dir, log)
            if overwrite:
                removed = clear_run_files(output_dir)
                if removed:
                    log(f"--overwrite: removed the previous run's {', '.join(removed)} from {output_dir}.")
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
            with trainer.stop_on_signals():
                result.test = trainer.evaluate(test_loader, desc=config.eval.split)
        except KeyboardInterrupt:
            trainer.write_metrics("interrupted", extra={"error": "interrupted during the final evaluation"})
            raise
        except Exception as exc:
            raise _evaluation_failed(trainer, config, exc) from exc
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
        if lock is not None:
            lock.release()
        if created_group:
            torch.distributed.destroy_process_group()


class EvaluationError(RuntimeError):
    """Training finished (``final.pt`` holds the weights) but the final evaluation failed."""


def _evaluation_failed(trainer: Trainer, config: ExperimentConfig, exc: Exception) -> EvaluationError:
    """Record the failed evaluation in ``metrics.json``; the error says the weights are kept and what failed."""
    from cirlib.utils.errors import error_lines

    cause = (error_lines(exc) or [type(exc).__name__])[0]
    cause += "" if cause.endswith(".") else "."
    trainer.write_metrics("failed: evaluation", extra={"error": f"{type(exc).__name__}: {cause}"})
    final = trainer._path("final.pt")
    kept = f"{final} holds the trained weights" if final is not None else "the trained model is kept"
    return EvaluationError(
        f"Training finished and {kept}, but evaluating eval.split={config.eval.split!r} failed: {cause} "
        "`cirlib data check` lists every unreadable image; once they are fixed, run the same command with "
        "--resume: it evaluates without training again."
    )


def _completed_run(output_dir: Path, log) -> RunResult:
    """A finished run found by ``resume``: its stored results, nothing trained or written."""
    import json

    metrics_path = output_dir / "metrics.json"
    with open(metrics_path) as handle:
        metrics = json.load(handle)
    log(f"{output_dir} holds a completed run ({metrics.get('epochs_completed')} epoch(s), {metrics_path}): "
        "nothing to resume. Evaluate its final.pt with `cirlib evaluate`, or train it anew with --overwrite.")
    return RunResult(output_dir=output_dir, history=metrics.get("history") or [], test=metrics.get("test"),
                     best=metrics.get("best"), metrics_path=metrics_path, model=None)


def check_num_classes(config: ExperimentConfig, splits: dict) -> None:
    """``model.num_classes``, when given, must exceed every label of the splits the run uses.

    Raises:
        ConfigError: naming the key, the split, its largest label and the fix (before anything is written).
    """
    from cirlib.config import ConfigError

    given = config.model.num_classes
    if given is None:
        return
    for split, dataset in splits.items():
        base, indices = _base_and_indices(dataset)
        labels = getattr(base, "labels", None)
        if isinstance(labels, np.ndarray) and len(indices):
            top = int(labels[np.asarray(indices)].max())
        else:
            top = int(getattr(base, "num_classes", 0)) - 1
        if top >= given:
            raise ConfigError(
                f"model.num_classes={given} but the labels of the {split!r} split go up to {top} "
                f"({top + 1} classes, 0..{top}). Set model.num_classes={top + 1} or more, or null to take "
                "it from the data."
            )
