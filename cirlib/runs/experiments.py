"""The runs the notebooks, ``make demo`` and ``make results`` share: budgets and configs.

A notebook asks for "the HaS model of seed 0 on the synthetic data" with :func:`experiment_config`
and gets it with :func:`cirlib.runs.cache.train_or_load`: trained once, then reused from its
checkpoint by every later notebook (and by a second ``make demo``), because the run folder is keyed
by method, seed and budget and the stored run must match.

Budgets:

* ``"demo"`` is the meaningful single-seed setting of ``make demo`` and ``make results``.
* ``"fast"`` is the tiny CI setting (``FAST=True`` in the notebooks): it checks that code runs,
  its numbers mean nothing.

For ``DATA="cub"`` / ``"ilsvrc"`` the paper-scale recipes in ``configs/`` are used instead.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from cirlib.config import DATASETS, ExperimentConfig, config_from_dict
from cirlib.methods.registry import METHODS, RESULTS_METHODS, get_spec
from cirlib.paths import CONFIGS_DIR, RESULTS_DIR
from cirlib.utils.choices import validate_choice

__all__ = [
    "BUDGETS",
    "CAM_DEMO_EPOCH_SECONDS",
    "demo_configs",
    "describe_duration",
    "estimate_train_seconds",
    "experiment_config",
    "fusion_ablation_configs",
    "run_device",
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

#: Single-threaded seconds of one CAM epoch under the ``demo`` budget (CPU time per CAM run in
#: ``results/results.json``: 82 s / 6).
CAM_DEMO_EPOCH_SECONDS = 82.0 / 6

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
        method: a method of :data:`cirlib.methods.registry.METHODS` (its preset comes from the registry).
        seed: the run's seed.
        fast: the tiny CI budget instead of the demo budget.
        data: ``synthetic`` (built in), ``cub`` or ``ilsvrc`` (paper-scale recipe from ``configs/``).
        data_root: the dataset folder for ``cub`` / ``ilsvrc``.
        epochs: override the budget's number of epochs (``None`` or 0 keeps it).
        device: ``auto``, ``cpu`` or ``cuda``.
        output_dir: root folder; the run goes to ``<output_dir>/<data>/<method>[-<tag>]/seed<seed>[-fast]``.
        options: extra method options (an ablation), merged over the budget's model options.
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
        if not fast:  # a method's own demo settings (the few-shot baseline's batch and epochs); FAST stays tiny
            _deep_update(values, copy.deepcopy(dict(get_spec(method).demo_budget)))
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
    model_options.update(options or {})
    per_class = get_spec(method).train_per_class
    if per_class is not None:  # a method trained on a few images per class (e.g. the few-shot baseline)
        values.setdefault("data", {})["train_per_class"] = int(per_class)
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
    """Every run the notebooks of ``make demo`` train: every row of the results table (the paper's chain
    for notebooks 01-07, the other methods for notebook 08) and notebook 06's ablation.

    ``make demo`` trains these first, in parallel worker processes, and the notebooks then reuse
    them through their checkpoints (see :func:`cirlib.tools.notebooks.run_demo`).

    Args:
        seed, output_dir, **run: as for :func:`experiment_config`.
        ablation_epochs: notebook 06's ``ABLATION_EPOCHS`` (0: a quarter of the budget).
    """
    run = dict(run, seed=seed, output_dir=output_dir)
    configs = [experiment_config(method, **run) for method in RESULTS_METHODS]
    configs += list(fusion_ablation_configs(ablation_epochs=ablation_epochs, **run).values())
    unique: dict[str, ExperimentConfig] = {}
    for config in configs:
        unique.setdefault(str(config.output_dir), config)
    return list(unique.values())


def _measured_epoch_seconds(method: str, results_path: Path) -> float | None:
    """Mean single-threaded seconds of one epoch of ``method`` over the demo budget's training images,
    from ``make results``' file, if any.

    A method with its own demo settings (the few-shot baseline: 36 epochs of 50 images) is brought
    back to the budget's epoch of ``train_limit`` images, which :func:`estimate_train_seconds` scales.
    """
    import json

    try:
        payload = json.loads(Path(results_path).read_text())
        if payload.get("budget") != "demo":
            return None
        seconds = float(payload["summary"][method]["mean"]["train_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    run = experiment_config(method)
    per_epoch = seconds / run.train.epochs
    return per_epoch * BUDGETS["demo"]["data"]["train_limit"] / _train_images(run) if seconds > 0 else None


def _train_images(config: ExperimentConfig) -> int:
    """Training images per epoch of a synthetic run: ``train_limit``, or fewer with ``train_per_class``."""
    import inspect

    from cirlib.data.synthetic import SyntheticWSOL

    images = config.data.train_limit or BUDGETS["demo"]["data"]["train_limit"]
    if config.data.train_per_class:  # e.g. the few-shot baseline: N images per class of the synthetic classes
        default = inspect.signature(SyntheticWSOL).parameters["num_classes"].default
        classes = int(config.data.options.get("num_classes", default))
        images = min(images, config.data.train_per_class * classes)
    return images


def estimate_train_seconds(config: ExperimentConfig,
                           results_path: str | os.PathLike | None = None) -> float | None:
    r"""About how long :func:`train_or_load` will train ``config`` on one CPU thread, in seconds.

    The time of one epoch of the method under the ``demo`` budget (measured by ``make results`` when
    its ``results.json`` is there, else :data:`CAM_DEMO_EPOCH_SECONDS` times
    the method's ``relative_cost`` in :mod:`cirlib.methods.registry`) is scaled by the epochs and by the work per epoch relative to the
    demo budget, pixels times images times the backbone width squared:

    $$t \approx t_{epoch}^{demo}(m)\; E\; \frac{n\, s^2\, w^2}{n_{demo}\, s_{demo}^2\, w_{demo}^2}.$$

    Args:
        config: the run to be trained.
        results_path: ``make results``' file (default ``results/results.json``).

    Returns:
        Seconds, or ``None`` where no estimate exists (real datasets, GPU runs, other backbones,
        methods without a measured cost).
    """
    demo = BUDGETS["demo"]
    if config.data.name != "synthetic" or config.model.arch != demo["model"]["arch"]:
        return None
    if run_device(config).type != "cpu":
        return None
    method = config.model.method
    per_epoch = _measured_epoch_seconds(method, Path(results_path or RESULTS_DIR / "results.json"))
    if per_epoch is None:
        cost = get_spec(method).relative_cost
        if cost is None:
            return None
        per_epoch = CAM_DEMO_EPOCH_SECONDS * cost
    images = _train_images(config)
    width = float(config.model.options.get("width", demo["model"]["options"]["width"]))
    work = (images * config.data.image_size ** 2 * width ** 2) / (
        demo["data"]["train_limit"] * demo["data"]["image_size"] ** 2 * demo["model"]["options"]["width"] ** 2)
    return per_epoch * config.train.epochs * work


def describe_duration(seconds: float) -> str:
    """``"about 40 s"`` / ``"about 5.4 min"``, for messages."""
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.1f} min"


def run_device(config: ExperimentConfig):
    """The ``torch.device`` a run of ``config`` trains on (``"auto"`` resolved, notebook-style errors)."""
    from cirlib.utils import resolve_device

    return resolve_device(config.device, context="notebook")
