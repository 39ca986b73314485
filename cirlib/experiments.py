"""One place for the experiment budgets that notebooks, ``make demo`` and ``make results`` share.

A notebook asks for "the HaS model of seed 0 on the synthetic data" with :func:`experiment_config`
and gets it with :func:`train_or_load`: trained once, then reused from its checkpoint by every later
notebook (and by a second ``make demo``), because the run folder is keyed by method, seed and budget
and the stored config must match.

Budgets:

* ``"demo"`` is the meaningful single-seed setting of ``make demo`` and ``make results``.
* ``"fast"`` is the tiny CI setting (``FAST=True`` in the notebooks): it checks that code runs,
  its numbers mean nothing.

Reproducibility: on the CPU, :func:`train_or_load` trains and evaluates on
:data:`CPU_TRAIN_THREADS` thread(s) whatever the machine's core count, because PyTorch's CPU kernels
split their sums by thread and a different count gives (slightly) different weights. So a notebook
run in JupyterLab, ``make demo`` and ``make results`` (whose workers run in parallel, one core
each) give the same numbers for the same seed.

For ``DATA="cub"`` / ``"ilsvrc"`` the paper-scale recipes in ``configs/`` are used instead.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cirlib.config import DATASETS, METHODS, ExperimentConfig, config_from_dict, config_to_dict, validate_choice
from cirlib.paths import CONFIGS_DIR, RESULTS_DIR
from cirlib.utils.io import atomic_write_text

__all__ = [
    "BUDGETS",
    "CPU_TRAIN_THREADS",
    "TrainedModel",
    "demo_configs",
    "estimate_train_seconds",
    "experiment_config",
    "fusion_ablation_configs",
    "NOTEBOOK_PARAMETERS",
    "NotebookParameterError",
    "train_or_load",
    "validate_notebook_parameters",
]

#: Generator knobs of the synthetic data, written into every config so that a run folder trained on
#: another version of the data is never reused (``cirlib.data.SyntheticSpec`` has the same defaults).
SYNTHETIC_KNOBS: dict[str, Any] = {"stripe_frame": "image", "body_tint": 0.5, "body_cue_strength": 0.4}

#: Settings shared by every method within one budget (so comparisons are fair).
BUDGETS: dict[str, dict[str, Any]] = {
    "demo": {
        "data": {"name": "synthetic", "image_size": 64, "batch_size": 64, "eval_batch_size": 200,
                 "train_limit": 2000, "eval_limit": 500, "num_workers": 0, "pin_memory": False,
                 "options": dict(SYNTHETIC_KNOBS)},
        "model": {"arch": "small_cnn", "options": {"width": 16}},
        "train": {"epochs": 6, "lr": 0.02, "new_layer_lr_mult": 1.0, "lr_schedule": "cosine",
                  "weight_decay": 1e-4, "eval_every": 0, "checkpoint_every_steps": 50, "log_every": 10},
        "eval": {"split": "test", "val_split": None, "cam_interval": 0.01},
    },
    "fast": {
        "data": {"name": "synthetic", "image_size": 32, "batch_size": 32, "eval_batch_size": 64,
                 "train_limit": 128, "eval_limit": 64, "num_workers": 0, "pin_memory": False,
                 "options": dict(SYNTHETIC_KNOBS)},
        "model": {"arch": "small_cnn", "options": {"width": 8}},
        "train": {"epochs": 1, "lr": 0.02, "new_layer_lr_mult": 1.0, "lr_schedule": "constant",
                  "eval_every": 0, "checkpoint_every_steps": 0, "log_every": 1},
        "eval": {"split": "test", "val_split": None, "cam_interval": 0.05},
    },
}

#: The attention variants' placement and CAM source, the ``ComplementaryModel`` defaults, written
#: into their configs: a run trained under the earlier defaults (``attention_at="early"``,
#: ``cam_from="attended"``) then has another config and is retrained, never reused.
_ATTENTION_OPTIONS: dict[str, Any] = {"attention_at": "late", "cam_from": "backbone"}

#: Method options that make each variant of the ablation (the budget's own options are merged in).
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "cam": {},
    "has": {},
    "complementary": {},
    "caam": dict(_ATTENTION_OPTIONS),
    "ssam": dict(_ATTENTION_OPTIONS),
    "full": dict(_ATTENTION_OPTIONS),
}

#: Threads PyTorch uses while :func:`train_or_load` trains and evaluates on the CPU (see the module docstring).
CPU_TRAIN_THREADS = 1

#: Relative cost of one training epoch per method (CAM = 1), from the single-threaded train times in
#: ``results/results.json`` (CAM 74 s, full 322 s for 6 epochs); orders ``make demo``'s pre-training
#: (longest first) and scales :func:`estimate_train_seconds` when no measured time is at hand.
RELATIVE_TRAIN_COST: dict[str, float] = {"cam": 1.0, "has": 1.0, "complementary": 2.3, "caam": 2.5, "ssam": 2.7,
                                         "full": 4.4}
#: Single-threaded seconds of one CAM epoch under the ``demo`` budget (``results/results.json``: 74 s / 6).
CAM_DEMO_EPOCH_SECONDS = 74.0 / 6

#: Backbone used for each paper-scale dataset when a notebook asks for ``cub`` / ``ilsvrc``.
PAPER_SCALE_ARCH = "resnet50"


def _deep_update(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def experiment_config(
    method: str,
    *,
    seed: int = 0,
    fast: bool = False,
    data: str = "synthetic",
    data_root: str | None = None,
    epochs: int | None = None,
    device: str = "auto",
    output_dir: str | os.PathLike = "runs",
    options: dict[str, Any] | None = None,
    tag: str | None = None,
    pretrained: bool | None = None,
    val_split: str | None = None,
) -> ExperimentConfig:
    """The configuration of one method under the shared budget.

    Args:
        method: one of ``cam, has, complementary, caam, ssam, full``.
        seed: the run's seed.
        fast: the tiny CI budget instead of the demo budget.
        data: ``synthetic`` (built in), ``cub`` or ``ilsvrc`` (paper-scale recipe from ``configs/``).
        data_root: the dataset folder for ``cub`` / ``ilsvrc``.
        epochs: override the budget's number of epochs (``None`` or 0 keeps it).
        device: ``auto``, ``cpu`` or ``cuda``.
        output_dir: root folder; the run goes to ``<output_dir>/<data>/<method>[-<tag>]/seed<seed>[-fast]``.
        options: extra method options (an ablation), merged over the variant's defaults.
        tag: a name for the option set when ``options`` is given (keeps runs apart).
        pretrained: paper scale only: ``False`` trains the backbone from scratch instead of the
            recipe's ImageNet weights (``None`` / ``True`` keep the recipe). Ignored for synthetic.
        val_split: paper scale only: the split that picks ``best.pt``: ``"val"``, or ``"none"``
            for no validation (``None`` / ``""`` keep the recipe's ``val``; on the official CUB layout,
            which has no val split, training then falls back to no validation with a notice).
            Ignored for synthetic.

    Returns:
        A validated :class:`~cirlib.config.ExperimentConfig`.
    """
    validate_choice("method", method, METHODS)
    validate_choice("DATA", data, DATASETS)
    if options and not tag:
        tag = "-".join(f"{k}={v}" for k, v in sorted(options.items())).replace("/", "_")
    if data == "synthetic":
        values = copy.deepcopy(BUDGETS["fast" if fast else "demo"])
    else:
        if not data_root:
            raise ValueError(f"DATA={data!r} needs DATA_ROOT, the dataset folder (see README, 'Paper scale').")
        recipe = CONFIGS_DIR / data / f"{PAPER_SCALE_ARCH}_{method}.yaml"
        if not recipe.exists():
            recipe = CONFIGS_DIR / data / f"{PAPER_SCALE_ARCH}_cam.yaml"
        from cirlib.config import load_yaml

        values = load_yaml(recipe.read_text(encoding="utf-8"))
        values.setdefault("data", {})["root"] = str(data_root)
        if fast:
            _deep_update(values, {"data": {"train_limit": 64, "eval_limit": 32, "batch_size": 16},
                                  "train": {"epochs": 1}})
        if pretrained is False:
            values.setdefault("model", {})["pretrained"] = None
        if val_split:
            values.setdefault("eval", {})["val_split"] = None if val_split == "none" else val_split
    model_options = dict(values.get("model", {}).get("options", {}))
    model_options.update(METHOD_OPTIONS[method])
    model_options.update(options or {})
    name = method if not tag else f"{method}-{tag}"
    run_dir = Path(output_dir) / data / name / (f"seed{seed}" + ("-fast" if fast else ""))
    _deep_update(values, {
        "name": f"{data}_{name}_seed{seed}",
        "seed": int(seed),
        "device": device,
        "output_dir": str(run_dir),
        "model": {"method": method, "options": model_options},
    })
    if epochs:
        values["train"]["epochs"] = int(epochs)
    return config_from_dict(values, source=f"experiment_config({method!r})")


def _measured_epoch_seconds(method: str, results_path: Path) -> float | None:
    """Mean single-threaded seconds per epoch of ``method`` in ``make results``' file (demo budget), if any."""
    import json

    try:
        payload = json.loads(Path(results_path).read_text())
        if payload.get("budget") != "demo":
            return None
        seconds = float(payload["summary"][method]["mean"]["train_time_s"])
        epochs = int(payload["budget_settings"]["train"]["epochs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return seconds / epochs if seconds > 0 and epochs > 0 else None


def estimate_train_seconds(config: ExperimentConfig,
                           results_path: str | os.PathLike | None = None) -> float | None:
    r"""About how long :func:`train_or_load` will train ``config`` on one CPU thread, in seconds.

    The time of one epoch of the method under the ``demo`` budget (measured by ``make results`` when
    its ``results.json`` is there, else :data:`CAM_DEMO_EPOCH_SECONDS` times
    :data:`RELATIVE_TRAIN_COST`) is scaled by the epochs and by the work per epoch relative to the
    demo budget, pixels times images times the backbone width squared:

    $$t \approx t_{epoch}^{demo}(m)\; E\; \frac{n\, s^2\, w^2}{n_{demo}\, s_{demo}^2\, w_{demo}^2}.$$

    Args:
        config: the run to be trained.
        results_path: ``make results``' file (default ``results/results.json``).

    Returns:
        Seconds, or ``None`` where no estimate exists (real datasets, GPU runs, other backbones).
    """
    demo = BUDGETS["demo"]
    if config.data.name != "synthetic" or config.model.arch != demo["model"]["arch"]:
        return None
    if _device_for(config).type != "cpu":
        return None
    method = config.model.method
    per_epoch = _measured_epoch_seconds(method, Path(results_path or RESULTS_DIR / "results.json"))
    if per_epoch is None:
        per_epoch = CAM_DEMO_EPOCH_SECONDS * RELATIVE_TRAIN_COST.get(method, 1.0)
    images = config.data.train_limit or demo["data"]["train_limit"]
    if config.data.train_per_class:  # e.g. the few-shot baseline: N images per class of the synthetic classes
        images = min(images, config.data.train_per_class * int(config.data.options.get("num_classes", 10)))
    width = float(config.model.options.get("width", demo["model"]["options"]["width"]))
    work = (images * config.data.image_size ** 2 * width ** 2) / (
        demo["data"]["train_limit"] * demo["data"]["image_size"] ** 2 * demo["model"]["options"]["width"] ** 2)
    return per_epoch * config.train.epochs * work


def describe_duration(seconds: float) -> str:
    """``"about 40 s"`` / ``"about 5.4 min"``, for messages."""
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.1f} min"


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


def _same_config(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    left, right = config_to_dict(a), config_to_dict(b)
    for d in (left, right):
        d.pop("device", None)  # a CPU-trained checkpoint is the same experiment on a GPU
        d.pop("output_dir", None)  # the run folder is where it was found (relative or absolute path)
    return left == right


def train_or_load(config: ExperimentConfig, progress: bool = True, retrain: bool = False) -> TrainedModel:
    """Train ``config`` once; later calls load the finished run from its folder.

    A finished run is ``final.pt`` plus a ``"completed"`` ``metrics.json`` in ``config.output_dir``
    whose stored config equals ``config``. An interrupted run (or one whose final evaluation
    failed) resumes from ``last.pt``. A folder holding a
    different config is an error (delete it or choose another ``OUTPUT_DIR``), never overwritten.
    """
    import json

    from cirlib.engine import fit, load_checkpoint, read_checkpoint

    run_dir = config.resolved_output_dir()
    final = run_dir / "final.pt"
    metrics_path = run_dir / "metrics.json"
    fingerprint_path = run_dir / "data_fingerprint.txt"
    fingerprint = dataset_fingerprint(config)
    if final.exists() and _status(metrics_path) == "completed" and not retrain:
        stored = config_from_dict(read_checkpoint(final)["config"], source=str(final))
        if not _same_config(stored, config):
            raise ValueError(
                f"{run_dir} holds a run with a different configuration. Delete that folder or pass "
                "another OUTPUT_DIR to train this one."
            )
        if fingerprint and fingerprint_path.exists() and fingerprint_path.read_text().strip() != fingerprint:
            raise ValueError(
                f"{run_dir} was trained on different images than this version of the synthetic generator "
                "renders (its data fingerprint differs). Delete that folder to retrain it."
            )
        print(f"[cirlib] loading {final} (trained before; delete that folder or choose another OUTPUT_DIR "
              "to train anew)", flush=True)
        model, _ = load_checkpoint(final, device=_device_for(config))
        with open(metrics_path) as handle:
            metrics = json.load(handle)
        return TrainedModel(model, metrics.get("test") or {}, run_dir, config, reused=True)
    resume = not retrain and (run_dir / "last.pt").is_file()
    _announce_training(config, run_dir, resuming=resume)
    with _cpu_threads(CPU_TRAIN_THREADS if _device_for(config).type == "cpu" else None):
        result = fit(config, resume=resume, progress=progress)
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


@contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (``None``: unchanged), then restore."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fusion_ablation_configs(*, ablation_epochs: int = 0, **run: Any) -> dict[str, ExperimentConfig]:
    """The runs of notebook 06's fusion-loss ablation: the full method with each loss kind and none.

    Args:
        ablation_epochs: epochs of each run; 0 means a quarter of the budget's epochs (at least 1).
        **run: keyword arguments of :func:`experiment_config` (seed, fast, data, epochs, output_dir, ...).

    Returns:
        ``{"stitched" | "consistency" | "max" | "None": config}``; when the ablation runs as long as
        the budget, the default kind's entry (``"max"``) is the full method's own config (one run, not two).
    """
    from cirlib.methods.fusion_loss import DEFAULT_FUSION_LOSS, FUSION_LOSSES

    full = experiment_config("full", **run)
    epochs = int(ablation_epochs) or max(1, full.train.epochs // 4)
    configs: dict[str, ExperimentConfig] = {}
    for kind in (*FUSION_LOSSES, None):
        if kind == DEFAULT_FUSION_LOSS and epochs == full.train.epochs:
            configs[str(kind)] = full
        else:
            configs[str(kind)] = experiment_config("full", **dict(run, epochs=epochs), options={"fusion_loss": kind})
    return configs


def demo_configs(
    seed: int = 0, output_dir: str | os.PathLike = "runs", ablation_epochs: int = 0, **run: Any
) -> list[ExperimentConfig]:
    """Every run the notebooks of ``make demo`` train: the six methods and notebook 06's ablation.

    ``make demo`` trains these first, in parallel worker processes, and the notebooks then reuse
    them through their checkpoints (see :func:`cirlib.notebooks.run_demo`).

    Args:
        seed, output_dir, **run: as for :func:`experiment_config`.
        ablation_epochs: notebook 06's ``ABLATION_EPOCHS`` (0: a quarter of the budget).
    """
    run = dict(run, seed=seed, output_dir=output_dir)
    configs = [experiment_config(method, **run) for method in METHODS]
    configs += list(fusion_ablation_configs(ablation_epochs=ablation_epochs, **run).values())
    unique: dict[str, ExperimentConfig] = {}
    for config in configs:
        unique.setdefault(str(config.output_dir), config)
    return list(unique.values())


def dataset_fingerprint(config: ExperimentConfig, num_images: int = 4) -> str | None:
    """A short hash of the first test images the synthetic generator renders for ``config``.

    Stored beside a finished run, it tells :func:`train_or_load` when the generator's code changed
    under an unchanged config. ``None`` for real datasets (their files are the reference).
    """
    if config.data.name != "synthetic":
        return None
    import hashlib

    from cirlib.data import build_dataset

    dataset = build_dataset("synthetic", "test", image_size=config.data.image_size,
                            size=num_images, **config.data.options)
    digest = hashlib.sha256()
    for index in range(num_images):
        digest.update(dataset.render(index)["rgb"].tobytes())
    return digest.hexdigest()[:16]


def _device_for(config: ExperimentConfig):
    from cirlib.utils import resolve_device

    return resolve_device(config.device, context="notebook")


class NotebookParameterError(ValueError):
    """A notebook parameter has the wrong type or value; the message names it and its valid values."""


#: Every parameter a notebook's ``parameters`` cell may declare: ``name -> (type, valid values)``.
#: :func:`validate_notebook_parameters` checks the type and then the value.
NOTEBOOK_PARAMETERS: dict[str, tuple[type, str]] = {
    "FAST": (bool, "True or False"),
    "SEED": (int, "an integer >= 0"),
    "DEVICE": (str, "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    "DATA": (str, "'synthetic', 'cub' or 'ilsvrc'"),
    "DATA_ROOT": (str, "a dataset folder ('' for synthetic)"),
    "EPOCHS": (int, "an integer >= 0 (0 keeps the budget)"),
    "INTERACTIVE": (bool, "True or False"),
    "OUTPUT_DIR": (str, "a folder path"),
    "FIGURES_DIR": (str, "a folder path ('' saves no figures)"),
    "ABLATION_EPOCHS": (int, "an integer >= 0 (0: a quarter of the budget)"),
    "RESULTS_FILE": (str, "a results.json path ('' for the repository's)"),
    "PRETRAINED": (bool, "True or False"),
    "VAL_SPLIT": (str, "'', 'val' or 'none'"),
}

_TYPE_NAMES = {"bool": bool, "int": int, "float": float, "str": str}


def _type_ok(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _bad(name: str, value: Any, valid: str, extra: str = "") -> NotebookParameterError:
    return NotebookParameterError(f"notebook parameter {name}={value!r} is invalid: {name} must be {valid}{extra}.")


def validate_notebook_parameters(parameters: Any, data_root: str | None = None, device: str | None = None,
                                 epochs: int | None = None) -> None:
    """The checks every notebook runs right after its ``parameters`` cell.

    Call it with the notebook's namespace, ``validate_notebook_parameters(globals())``: every
    parameter of :data:`NOTEBOOK_PARAMETERS` found there is checked for its type and value
    (``FAST: maybe`` and ``EPOCHS: ten`` are errors, not a FAST run or a ``TypeError`` later), and any
    other name annotated in the parameters cell (``NAME: int = 0``) for its annotated type. The
    earlier form ``validate_notebook_parameters(DATA, DATA_ROOT, DEVICE, EPOCHS)`` still works.

    Raises:
        NotebookParameterError: one line naming the parameter, its value and the valid values
            (``DATA="cubb"`` suggests ``cub``, ``DEVICE="gpu"`` suggests ``cuda``).
    """
    if isinstance(parameters, str) or parameters is None:  # the earlier positional form
        values: dict[str, Any] = {"DATA": parameters, "DATA_ROOT": data_root or "", "DEVICE": device}
        if epochs is not None:
            values["EPOCHS"] = epochs
    else:
        values = {k: v for k, v in dict(parameters).items() if k in NOTEBOOK_PARAMETERS}
        annotations = dict(parameters).get("__annotations__") or {}
        for name, annotation in annotations.items():
            kind = _TYPE_NAMES.get(annotation) if isinstance(annotation, str) else annotation
            if name in NOTEBOOK_PARAMETERS or name not in parameters or kind not in _TYPE_NAMES.values():
                continue
            if not _type_ok(parameters[name], kind):
                raise _bad(name, parameters[name], f"of type {kind.__name__} (as declared in the parameters cell)")
    for name, value in values.items():
        kind, valid = NOTEBOOK_PARAMETERS[name]
        if not _type_ok(value, kind):
            raise _bad(name, value, valid)
    for name in ("SEED", "EPOCHS", "ABLATION_EPOCHS"):
        if name in values and values[name] < 0:
            raise _bad(name, values[name], NOTEBOOK_PARAMETERS[name][1])
    if "OUTPUT_DIR" in values and not values["OUTPUT_DIR"].strip():
        raise _bad("OUTPUT_DIR", values["OUTPUT_DIR"], "a folder path, not empty")
    if "VAL_SPLIT" in values and values["VAL_SPLIT"] not in ("", "val", "none"):
        raise _bad("VAL_SPLIT", values["VAL_SPLIT"], NOTEBOOK_PARAMETERS["VAL_SPLIT"][1])
    if "DATA" in values:
        try:
            validate_choice("DATA", values["DATA"], DATASETS)
        except ValueError as exc:
            raise NotebookParameterError(f"notebook parameter {exc}") from None
    if "DEVICE" in values:
        from cirlib.utils import resolve_device
        from cirlib.utils.device import device_hint

        dev = values["DEVICE"].strip().lower()
        if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            close = device_hint(dev)
            raise _bad("DEVICE", values["DEVICE"], NOTEBOOK_PARAMETERS["DEVICE"][1],
                       f"; did you mean {close!r}?" if close else "")
        try:
            resolve_device(values["DEVICE"], context="notebook")
        except ValueError as exc:
            raise NotebookParameterError(f"notebook parameter DEVICE: {exc}") from None
    data = values.get("DATA", "synthetic")
    root = values.get("DATA_ROOT") or ""
    if data != "synthetic":
        if not root:
            raise NotebookParameterError(
                f"notebook parameter DATA={data!r} needs DATA_ROOT, the folder that holds the dataset."
            )
        if not Path(root).exists():
            raise NotebookParameterError(
                f"notebook parameter DATA_ROOT={root!r} does not exist. See README, 'Paper scale', for the "
                "expected layout."
            )
