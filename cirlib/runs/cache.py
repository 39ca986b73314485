"""Train a run once, then reuse it: :func:`train_or_load`.

A finished run is reused when its stored config and the resolved model options its checkpoint
stores are those of the config asked for (:func:`cirlib.runs.identity.same_run`), and when the
synthetic generator still renders the same images (:func:`cirlib.runs.identity.dataset_fingerprint`). An empty run folder first receives the
repository's shipped run of the same config and images when there is one
(:mod:`cirlib.runs.shipped`: the seed-0 runs of the notebooks' default parameters).

Reproducibility: on the CPU, :func:`train_or_load` trains and evaluates on
:data:`cirlib.runs.identity.CPU_TRAIN_THREADS` thread(s) whatever the machine's core count, because PyTorch's CPU kernels
split their sums by thread and a different count gives (slightly) different weights. So a notebook
run in JupyterLab, ``make demo`` and ``make results`` (whose workers run in parallel, one core
each) give the same numbers for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cirlib.config import ExperimentConfig, config_from_dict
from cirlib.runs.experiments import describe_duration, estimate_train_seconds, run_device
from cirlib.runs.identity import CPU_TRAIN_THREADS, cpu_threads, dataset_fingerprint, model_identity, same_run
from cirlib.utils.io import atomic_write_text

__all__ = ["TrainedModel", "train_or_load"]

def _announce_training(config: ExperimentConfig, run_dir: Path, resuming: bool = False) -> None:
    """Say, before training starts, that a run must be trained (or resumed) and about how long it takes."""
    seconds = estimate_train_seconds(config)
    when = (f"{describe_duration(seconds)} on one idle CPU core, longer on a busy machine" if seconds is not None
            else "duration unknown here (no measured time for this dataset or device)")
    print(f"[cirlib] no finished run of {config.model.method!r} in {run_dir}: "
          f"{'resuming it from last.pt' if resuming else 'training it now'}, "
          f"{config.train.epochs} epoch(s), {when}. (`make demo` trains every notebook's runs in advance.)",
          flush=True)


@dataclass
class TrainedModel:
    """A trained model with its test metrics and run folder."""

    model: Any
    metrics: dict
    output_dir: Path
    config: ExperimentConfig
    reused: bool
    #: The shipped run (``checkpoints/...``) this run folder was copied from; ``None`` when trained here.
    shipped_from: str | None = None

    @property
    def origin(self) -> str:
        """Where the model came from, in a few words (a notebook loading several prints one line)."""
        return "shipped checkpoint" if self.shipped_from else "loaded from OUTPUT_DIR" if self.reused else "trained now"


def train_or_load(config: ExperimentConfig, progress: bool = True, retrain: bool = False,
                  quiet: bool = False, shipped: bool = True) -> TrainedModel:
    """Train ``config`` once; later calls load the finished run from its folder.

    A finished run is ``final.pt`` plus a ``"completed"`` ``metrics.json`` in ``config.output_dir``
    whose stored run is ``config``'s (:func:`same_run`: same config, same resolved model options). An interrupted run (or one whose final evaluation
    failed) resumes from ``last.pt``. A folder holding a
    different config is an error (delete it or choose another ``OUTPUT_DIR``), never overwritten.
    With ``shipped``, a folder holding no run file first receives a copy of the repository's shipped
    run when it is exactly this run (:func:`cirlib.runs.shipped.find_shipped_run`), which is then
    loaded; ``make demo`` and ``make results`` pass ``False`` (they are what trains those runs).
    ``quiet`` leaves out the line that names a loaded run (a notebook loading ten runs prints one
    line of its own); a run that trains is always announced.
    """
    import json

    from cirlib.engine import fit, load_checkpoint, read_checkpoint
    from cirlib.engine.run_folder import RUN_FILES
    # imported here: `python -m cirlib.runs.shipped` must not find it imported by cirlib.runs
    from cirlib.runs.shipped import SHIPPED_FROM_KEY, copy_shipped_run, find_shipped_run

    run_dir = config.resolved_output_dir()
    final = run_dir / "final.pt"
    metrics_path = run_dir / "metrics.json"
    fingerprint_path = run_dir / "data_fingerprint.txt"
    fingerprint = dataset_fingerprint(config)
    if shipped and not retrain and not any((run_dir / name).is_file() for name in RUN_FILES):
        source = find_shipped_run(config, fingerprint)
        if source is not None:
            copy_shipped_run(source, run_dir)
    if final.exists() and _status(metrics_path) == "completed" and not retrain:
        checkpoint = read_checkpoint(final)
        stored = config_from_dict(checkpoint["config"], source=str(final))
        if not same_run(stored, config, checkpoint.get("model_options")):
            raise ValueError(
                f"{run_dir} holds a run with a different configuration. Delete that folder or pass "
                "another OUTPUT_DIR to train this one."
            )
        if fingerprint and fingerprint_path.exists() and fingerprint_path.read_text().strip() != fingerprint:
            raise ValueError(
                f"{run_dir} was trained on different images than this version of the synthetic generator "
                "renders (its data fingerprint differs). Delete that folder to retrain it."
            )
        with open(metrics_path) as handle:
            metrics = json.load(handle)
        origin = metrics.get(SHIPPED_FROM_KEY)
        if not quiet and origin:
            print(f"[cirlib] loading {final}: a copy of the shipped checkpoint {origin}, trained by `make results` "
                  "with this configuration (other parameters, e.g. another SEED or EPOCHS, train a run of "
                  "their own)", flush=True)
        elif not quiet:
            print(f"[cirlib] loading {final} (trained before; delete that folder or choose another OUTPUT_DIR "
                  "to train anew)", flush=True)
        model, _ = load_checkpoint(final, device=run_device(config))
        return TrainedModel(model, metrics.get("test") or {}, run_dir, config, reused=True, shipped_from=origin)
    # Whatever this config's run left in the folder is continued (fit refuses another config's files);
    # retrain replaces it.
    resume = not retrain and any((run_dir / name).is_file() for name in RUN_FILES)
    _announce_training(config, run_dir, resuming=resume and (run_dir / "last.pt").is_file())
    with cpu_threads(CPU_TRAIN_THREADS if run_device(config).type == "cpu" else None):
        result = fit(config, resume=resume, progress=progress, overwrite=retrain)
    if fingerprint and result.output_dir is not None:
        atomic_write_text(fingerprint_path, fingerprint + "\n")
    model = result.model
    model.eval()
    return TrainedModel(model, result.test or {}, run_dir, config, reused=False)


def _status(metrics_path: Path) -> str | None:
    """``metrics.json``'s status; only a ``"completed"`` run (its test metrics written) is reused."""
    import json

    try:
        with open(metrics_path) as handle:
            return json.load(handle).get("status")
    except (OSError, ValueError):
        return None


