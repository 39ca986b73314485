"""Checkpoints shipped with the repository: the seed-0 synthetic runs the notebooks load by default.

A fresh clone has no trained run, and training every notebook's models takes minutes. So the
repository carries, in ``checkpoints/`` (:data:`SHIPPED_DIR`), the finished seed-0 runs that
``make results`` / ``make demo`` train for the notebooks' default parameters (the runs of
:func:`cirlib.runs.experiments.demo_configs`), laid out as in ``OUTPUT_DIR``::

    checkpoints/synthetic/<method>[-<tag>]/seed0/
        final.pt              the trained weights (optimizer and RNG states left out: nothing resumes it)
        metrics.json          the run's history and test metrics, as training wrote them
        config.yaml           the run's config
        data_fingerprint.txt  the synthetic images it was trained on (cirlib.runs.identity.dataset_fingerprint)

:func:`cirlib.runs.cache.train_or_load` copies a shipped run into an empty run folder when it is the
run asked for: the same config (:func:`cirlib.runs.identity.same_run`) and the same data fingerprint.
Any other parameter (another ``SEED``, ``EPOCHS``, an option) trains as before. The copy's
``metrics.json`` says where it came from (:data:`SHIPPED_FROM_KEY`), so that a copy is never shipped
back as if it had been trained.

Refreshing them after a change of the model, the data or a default (``tests/test_shipped.py``
fails until then)::

    rm -rf results/runs && make results     # trains every run anew (make results never copies these)
    python -m cirlib.runs.shipped update --from results/runs
    python -m cirlib.runs.shipped check     # re-evaluates every shipped run against its metrics.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cirlib.config import ExperimentConfig, config_from_dict
from cirlib.paths import REPO_ROOT

__all__ = [
    "SHIPPED_DIR",
    "SHIPPED_FILES",
    "SHIPPED_FROM_KEY",
    "copy_shipped_run",
    "evaluate_run",
    "find_shipped_run",
    "recorded_metrics",
    "ship_run",
    "shipped_configs",
    "shipped_folder",
    "slim_checkpoint",
    "unshippable_reason",
    "update_shipped",
]

#: Where the shipped runs live (committed; ``checkpoints/<data>/<run>/seed<seed>``).
SHIPPED_DIR = REPO_ROOT / "checkpoints"
#: The files of a shipped run, in the order a copy writes them: ``metrics.json`` (which says
#: "completed") comes last, so an interrupted copy never looks finished.
SHIPPED_FILES = ("config.yaml", "data_fingerprint.txt", "final.pt", "metrics.json")
#: Key of a copied run's ``metrics.json`` naming the shipped folder it was copied from.
SHIPPED_FROM_KEY = "shipped_from"
#: What a shipped ``final.pt`` keeps: enough to rebuild and score the model and to say where in
#: training it was written (:func:`cirlib.engine.checkpoint.checkpoint_position`); the optimizer,
#: scheduler and RNG states (half the file) only serve a resume, and a finished run never resumes.
KEPT_CHECKPOINT_KEYS = ("format", "kind", "config", "num_classes", "method", "model_options", "model",
                        "epoch", "step_in_epoch", "global_step", "history", "best", "world_size")
#: The test metrics a re-evaluation must reproduce (``cirlib.engine.evaluate_model``'s keys).
CHECKED_METRICS = ("top1", "top5", "maxboxacc", "maxboxacc_v2", "pxap")


def shipped_configs(output_dir: str | os.PathLike | None = None) -> list[ExperimentConfig]:
    """The runs that are shipped: those the notebooks load with their default parameters.

    Every run of :func:`cirlib.runs.experiments.demo_configs` for seed 0 (the results table's rows
    and notebook 06's fusion-loss ablation), under ``output_dir`` (default :data:`SHIPPED_DIR`).
    """
    from cirlib.runs.experiments import demo_configs

    return demo_configs(seed=0, output_dir=output_dir or SHIPPED_DIR)


def run_key(config: ExperimentConfig) -> Path:
    """``<data>/<method>[-<tag>]/seed<seed>[-fast]``: where a run sits under any ``OUTPUT_DIR``
    (:func:`cirlib.runs.experiments.experiment_config` builds ``output_dir`` so)."""
    return Path(*Path(config.output_dir).parts[-3:])


def shipped_folder(config: ExperimentConfig, shipped_dir: str | os.PathLike | None = None) -> Path:
    """The folder under ``shipped_dir`` (default :data:`SHIPPED_DIR`) that would hold ``config``'s
    shipped run, whether or not it exists."""
    return Path(shipped_dir or SHIPPED_DIR) / run_key(config)


def _display(path: Path) -> str:
    """``path`` relative to the repository when inside it (what a message shows)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _read_json(path: Path) -> dict | None:
    try:
        with open(path) as handle:
            payload = json.load(handle)
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def find_shipped_run(config: ExperimentConfig, fingerprint: str | None,
                     shipped_dir: str | os.PathLike | None = None) -> Path | None:
    """The shipped folder holding exactly ``config``'s run, or ``None``.

    It must be a completed run whose stored config is ``config``'s (:func:`cirlib.runs.identity.same_run`:
    every key but ``device`` and ``output_dir``, and the model options resolved) and whose data
    fingerprint is ``fingerprint``, the one the synthetic generator gives today. Only synthetic runs
    are shipped (``fingerprint`` is ``None`` for the real datasets).
    """
    from cirlib.engine.checkpoint import CheckpointError, read_checkpoint
    from cirlib.runs.identity import same_run

    folder = shipped_folder(config, shipped_dir)
    if fingerprint is None or not all((folder / name).is_file() for name in SHIPPED_FILES):
        return None
    if (folder / "data_fingerprint.txt").read_text().strip() != fingerprint:
        return None
    if (_read_json(folder / "metrics.json") or {}).get("status") != "completed":
        return None
    try:
        checkpoint = read_checkpoint(folder / "final.pt", mmap=True)
        stored = config_from_dict(checkpoint["config"], source=str(folder / "final.pt"))
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None
    return folder if same_run(stored, config, checkpoint.get("model_options")) else None


def copy_shipped_run(source: Path, run_dir: Path) -> None:
    """Copy the shipped run ``source`` into ``run_dir``, which holds no run file.

    The files are copied into a temporary folder beside ``run_dir``, whose ``metrics.json`` gains
    :data:`SHIPPED_FROM_KEY`; that folder is then renamed to ``run_dir`` (one atomic step) or, when
    ``run_dir`` exists and is not empty (a stale ``run.lock``), its files are moved in one by one,
    ``metrics.json`` last, so an interrupted copy is never taken for a finished run.
    """
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.shipped-", dir=run_dir.parent))
    try:
        for name in SHIPPED_FILES:
            shutil.copyfile(source / name, staging / name)
        metrics = _read_json(source / "metrics.json") or {}
        metrics[SHIPPED_FROM_KEY] = _display(source)
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        try:
            if run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()
            os.rename(staging, run_dir)
        except OSError:
            if not run_dir.is_dir():
                raise
            for name in SHIPPED_FILES:
                os.replace(staging / name, run_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def slim_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A finished run's ``final.pt`` without what only a resume needs (:data:`KEPT_CHECKPOINT_KEYS`)."""
    return {key: checkpoint[key] for key in KEPT_CHECKPOINT_KEYS if key in checkpoint}


def recorded_metrics(folder: str | os.PathLike) -> dict[str, Any]:
    """The test metrics a run's ``metrics.json`` recorded, restricted to :data:`CHECKED_METRICS`."""
    test = (_read_json(Path(folder) / "metrics.json") or {}).get("test") or {}
    return {key: test.get(key) for key in CHECKED_METRICS}


def evaluate_run(folder: str | os.PathLike) -> dict[str, Any]:
    """Score a run folder's ``final.pt`` on its config's test split, as training's final evaluation did.

    The model is rebuilt under the current code and scored on the CPU with
    :data:`cirlib.runs.identity.CPU_TRAIN_THREADS` thread(s), the setting training evaluated under;
    returns the :data:`CHECKED_METRICS` of :func:`cirlib.engine.evaluate_model`.
    """
    from cirlib.engine import build_eval_loader, evaluate_model, load_checkpoint
    from cirlib.engine.fit import prepare_split
    from cirlib.runs.identity import CPU_TRAIN_THREADS, cpu_threads
    from cirlib.utils import seed_everything

    model, config = load_checkpoint(Path(folder) / "final.pt", device="cpu")
    with cpu_threads(CPU_TRAIN_THREADS):
        seed_everything(config.seed)
        dataset = prepare_split(config, config.eval.split, "eval.split")
        loader = build_eval_loader(dataset, config.data.eval_batch_size, 0, False)
        metrics = evaluate_model(model, loader, device="cpu", iou_thresholds=tuple(config.eval.iou_thresholds),
                                 cam_interval=config.eval.cam_interval, progress=False, desc=config.eval.split)
    return {key: metrics.get(key) for key in CHECKED_METRICS}


def unshippable_reason(config: ExperimentConfig) -> str | None:
    """Why ``config``'s run folder cannot be shipped (``None``: it can): missing, unfinished, another
    config, other images, or itself a copy of a shipped run."""
    from cirlib.engine.checkpoint import read_checkpoint
    from cirlib.runs.identity import dataset_fingerprint, same_run

    run_dir = config.resolved_output_dir()
    metrics = _read_json(run_dir / "metrics.json") or {}
    if not (run_dir / "final.pt").is_file() or metrics.get("status") != "completed":
        return f"{run_dir} holds no finished run"
    if metrics.get(SHIPPED_FROM_KEY):
        return f"{run_dir} is a copy of the shipped {metrics[SHIPPED_FROM_KEY]}, not a run trained here"
    checkpoint = read_checkpoint(run_dir / "final.pt", mmap=True)
    stored = config_from_dict(checkpoint["config"], source=str(run_dir / "final.pt"))
    if not same_run(stored, config, checkpoint.get("model_options")):
        return f"{run_dir} was trained with another configuration than experiment_config gives today"
    fingerprint = run_dir / "data_fingerprint.txt"
    if not fingerprint.is_file() or fingerprint.read_text().strip() != dataset_fingerprint(config):
        return f"{run_dir} was trained on other images than the synthetic generator renders today"
    return None


def ship_run(source: Path, target: Path) -> None:
    """Write the finished run folder ``source`` as a shipped run in ``target`` (atomic file by file,
    ``metrics.json`` last; ``final.pt`` slimmed by :func:`slim_checkpoint`)."""
    from cirlib.engine.checkpoint import read_checkpoint
    from cirlib.utils.io import atomic_torch_save, atomic_write_text

    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "data_fingerprint.txt"):
        atomic_write_text(target / name, (source / name).read_text())
    atomic_torch_save(slim_checkpoint(read_checkpoint(source / "final.pt")), target / "final.pt")
    atomic_write_text(target / "metrics.json", (source / "metrics.json").read_text())


def update_shipped(from_dir: str | os.PathLike, shipped_dir: str | os.PathLike | None = None) -> list[Path]:
    """Replace the shipped runs with the trained runs of ``from_dir`` (``make results``' ``results/runs``).

    Every run of :func:`shipped_configs` must be there, finished, trained (not copied) with today's
    config and images; otherwise nothing is written and the error names each folder and the fix.
    Shipped folders of runs no longer listed are removed. Returns the folders written.
    """
    configs = shipped_configs(from_dir)
    problems = [p for p in (unshippable_reason(c) for c in configs) if p]
    if problems:
        raise ValueError(
            f"cannot ship the runs of {from_dir}: {'; '.join(problems)}. Train them first: "
            "`rm -rf results/runs && make results` (make results trains every run; it never copies shipped ones)."
        )
    shipped_dir = Path(shipped_dir or SHIPPED_DIR)
    written = []
    for config in configs:
        target = shipped_folder(config, shipped_dir)
        ship_run(config.resolved_output_dir(), target)
        written.append(target)
    for stale in sorted(set(shipped_dir.glob("*/*/*")) - set(written)):
        if stale.is_dir():
            shutil.rmtree(stale)
            print(f"[shipped] removed {_display(stale)} (no longer a run the notebooks load by default)")
    return written


def _check(shipped_dir: Path | None = None) -> int:
    """Re-evaluate every shipped run; print each, return the number that do not reproduce their metrics."""
    failures = 0
    for config in shipped_configs(shipped_dir):
        folder = shipped_folder(config, shipped_dir)
        recorded, now = recorded_metrics(folder), evaluate_run(folder)
        same = recorded == now
        failures += not same
        print(f"[shipped] {_display(folder)}: " + ("reproduces its metrics" if same
                                                    else f"recorded {recorded}, scored now {now}"), flush=True)
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cirlib.runs.shipped", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    update = sub.add_parser("update", help="replace the shipped runs with the trained runs of a make results folder")
    update.add_argument("--from", dest="from_dir", required=True, help="the runs folder (results/runs)")
    sub.add_parser("check", help="re-evaluate every shipped run and compare with its recorded metrics")
    args = parser.parse_args(argv)
    if args.command == "update":
        try:
            written = update_shipped(args.from_dir)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        size = sum(f.stat().st_size for folder in written for f in folder.iterdir())
        print(f"[shipped] wrote {len(written)} runs to {_display(SHIPPED_DIR)} ({size / 2**20:.1f} MiB); "
              "commit them with the change that made them stale")
        return 0
    return 1 if _check() else 0


if __name__ == "__main__":
    raise SystemExit(main())
