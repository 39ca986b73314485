"""Experiment configuration: nested dataclasses, YAML files and ``--set key=value`` overrides.

An :class:`ExperimentConfig` describes one run completely (data, model, training, evaluation,
seed, device, output folder). The defaults in this file are the small synthetic setting that
runs on a laptop CPU; the paper-scale recipes live in ``configs/`` as YAML files.

Every key is checked: an unknown key (in a file or on the command line) is an error that lists
the valid keys and suggests the closest one, and a bad value names the key it belongs to::

    >>> cfg = load_config("configs/synthetic/tiny.yaml", overrides=["train.epochs=3"])
    >>> cfg.train.epochs
    3
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from cirlib.methods import registry
from cirlib.utils.choices import validate_choice
from cirlib.utils.device import device_hint
from cirlib.utils.io import atomic_write_text

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ExperimentConfig",
    "ModelConfig",
    "TrainConfig",
    "DATASETS",
    "ARCHS",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "YamlLoader",
    "load_config",
    "load_yaml",
    "save_config",
]

DATASETS: tuple[str, ...] = ("synthetic", "cub", "ilsvrc")
ARCHS: tuple[str, ...] = ("small_cnn", "vgg16", "resnet50", "inception_v3")
LR_SCHEDULES: tuple[str, ...] = ("step", "cosine", "constant")
AMP_MODES: tuple[str, ...] = ("none", "bf16")
SPLITS: tuple[str, ...] = ("train", "val", "test")


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the key, the file and a fix."""


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 numbers: ``1e-3``, ``5E4``, ``1.5e+2`` are floats.

    PyYAML implements YAML 1.1, whose float pattern needs a dot and a signed exponent, so it reads
    ``1e-3`` (how people write a learning rate) as the *string* ``'1e-3'``. This loader adds the
    YAML 1.2 core-schema float pattern; every config file, ``--set`` value and notebook ``-y``
    mapping goes through it.
    """


# YAML 1.2 core schema: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?, plus the
# 1.1 forms PyYAML already knew (.inf, .nan, 1_000.5). Integers keep PyYAML's int resolver (listed first).
_YAML12_FLOAT = re.compile(
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
YamlLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789."))


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """``", line L, column C: not valid YAML: <problem> (<context>)"``, one line (1-based line and column)."""
    mark = getattr(exc, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def load_yaml(text: str) -> Any:
    """Parse YAML text with :class:`YamlLoader` (safe, with YAML 1.2 numbers)."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - YamlLoader is a SafeLoader


@dataclass
class DataConfig:
    """Which dataset and how to load it.

    Attributes:
        name: ``synthetic`` (built in), ``cub`` or ``ilsvrc``.
        root: dataset folder (required for ``cub`` / ``ilsvrc``; ignored by ``synthetic``).
        image_size: side of the network input in pixels (64 synthetic, 224 paper scale).
        batch_size: training batch size per process.
        eval_batch_size: evaluation batch size per process.
        num_workers: DataLoader worker processes (0 = load in the main process).
        pin_memory: pinned host memory for faster host-to-GPU copies (no-op on the CPU).
        train_limit: use only the first ``train_limit`` training items (``null`` = all).
        train_per_class: use only the first ``train_per_class`` training items of each class, in
            the split's order (``null`` = all; the few-shot baseline uses 5). Applied before
            ``train_limit``; a class with fewer items is an error.
        eval_limit: use only the first ``eval_limit`` items of each evaluation split.
        options: extra keyword arguments for ``cirlib.data.build_dataset`` (validated there).
    """

    name: str = "synthetic"
    root: str | None = None
    image_size: int = 64
    batch_size: int = 64
    eval_batch_size: int = 128
    num_workers: int = 0
    pin_memory: bool = True
    train_limit: int | None = None
    train_per_class: int | None = None
    eval_limit: int | None = None
    options: dict = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Which WSOL method and backbone.

    Attributes:
        method: one of ``cam, has, complementary, caam, ssam, full``.
        arch: backbone, one of ``small_cnn, vgg16, resnet50, inception_v3``.
        num_classes: number of classes; ``null`` takes it from the dataset.
        pretrained: ``null`` (random init), ``imagenet`` (torchvision weights, needs internet)
            or a path to a local weights file.
        options: method options passed to ``cirlib.methods.build_model`` (validated there), for
            example ``{hide_prob: 0.5, patch_sizes: [8]}``.
    """

    method: str = "cam"
    arch: str = "small_cnn"
    num_classes: int | None = None
    pretrained: str | None = None
    options: dict = field(default_factory=dict)


@dataclass
class TrainConfig:
    r"""Optimisation recipe.

    SGD with momentum and (optionally) Nesterov; the learning rate of newly added layers is
    ``lr * new_layer_lr_mult``. The schedule multiplies the base rate by
    ``lr_decay ** floor(epoch / lr_step)`` (``step``),
    :math:`\tfrac12 (1 + \cos(\pi\, t / T))` with :math:`t` the step and :math:`T` the total
    number of steps (``cosine``), or 1 (``constant``).

    Attributes:
        epochs: number of passes over the training set.
        lr: base learning rate.
        new_layer_lr_mult: learning-rate multiplier for new layers (10 in the paper recipe).
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: L2 weight decay.
        lr_schedule: ``step``, ``cosine`` or ``constant``.
        lr_step: epochs between two decays of the ``step`` schedule.
        lr_decay: decay factor of the ``step`` schedule.
        amp: ``none`` or ``bf16`` (autocast on CUDA only; ignored on the CPU).
        channels_last: NHWC memory format (CUDA only; ignored on the CPU).
        checkpoint_every_steps: also write ``last.pt`` every N optimisation steps
            mid-epoch (0 = only at the end of each epoch).
        eval_every: evaluate on ``eval.val_split`` every N epochs (0 = never during training).
        log_every: refresh the progress bar's loss every N steps.
    """

    epochs: int = 10
    lr: float = 0.01
    new_layer_lr_mult: float = 10.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    lr_schedule: str = "step"
    lr_step: int = 5
    lr_decay: float = 0.1
    amp: str = "none"
    channels_last: bool = False
    checkpoint_every_steps: int = 0
    eval_every: int = 1
    log_every: int = 10


@dataclass
class EvalConfig:
    """Evaluation protocol (docs/design.md#evaluation-protocol).

    Attributes:
        split: the split of the final evaluation (``test``).
        val_split: the split evaluated during training to pick ``best.pt`` (``null`` = none; on
            the official CUB-200-2011 layout, which has no ``val``, training falls back to none with
            a logged notice).
        cam_interval: CAM threshold step; thresholds are ``arange(0, 1, cam_interval)``.
        iou_thresholds: IoU thresholds in percent for MaxBoxAcc.
        best_metric: the metric of ``val_split`` that selects ``best.pt``.
    """

    split: str = "test"
    val_split: str | None = "val"
    cam_interval: float = 0.01
    iou_thresholds: list = field(default_factory=lambda: [30, 50, 70])
    best_metric: str = "maxboxacc_v2"


@dataclass
class ExperimentConfig:
    """One experiment: everything needed to reproduce a run.

    Attributes:
        name: run name (used in the default output folder).
        seed: seed for Python, NumPy, PyTorch and the data order.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        output_dir: where ``config.yaml``, checkpoints and ``metrics.json`` go
            (default ``runs/<name>``).
        data: see :class:`DataConfig`.
        model: see :class:`ModelConfig`.
        train: see :class:`TrainConfig`.
        eval: see :class:`EvalConfig`.
    """

    name: str = "synthetic_cam"
    seed: int = 0
    device: str = "auto"
    output_dir: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def resolved_output_dir(self) -> Path:
        """The run folder: ``output_dir`` or ``runs/<name>``."""
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name

    def validate(self, source: str = "<config>") -> "ExperimentConfig":
        """Check every value; raise :class:`ConfigError` naming the key and ``source``."""
        _validate(self, source)
        return self

    def to_dict(self) -> dict:
        """A plain nested dict (YAML/JSON friendly)."""
        return config_to_dict(self)


# ----------------------------------------------------------------------------- conversion

_FREE_DICTS = {("data", "options"), ("model", "options")}


def config_to_dict(config: ExperimentConfig) -> dict:
    """Convert a config to nested plain dicts (a deep copy)."""
    return copy.deepcopy(dataclasses.asdict(config))


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _unknown_key_error(key: str, valid: Sequence[str], source: str) -> ConfigError:
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, list(valid), n=1, cutoff=0.5)
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    hint = f" Did you mean {prefix + close[0]!r}?" if close else ""
    return ConfigError(
        f"{source}: unknown config key {key!r}.{hint} Valid keys here: "
        f"{', '.join(prefix + v for v in valid)}."
    )


def _build(cls, values: Any, source: str, path: tuple[str, ...]):
    where = ".".join(path) or "<top level>"
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source}: {where} must be a mapping of keys to values, got {type(values).__name__} "
            f"({values!r})."
        )
    names = _field_names(cls)
    kwargs = {}
    for key, value in values.items():
        dotted = ".".join(path + (str(key),))
        if key not in names:
            raise _unknown_key_error(dotted, names, source)
        sub = _SECTIONS.get(key) if not path else None
        if sub is not None:
            kwargs[key] = _build(sub, value, source, path + (key,))
        elif (tuple(path) + (key,)) in _FREE_DICTS:
            if value is None:
                value = {}
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {dotted} must be a mapping, got {value!r}.")
            kwargs[key] = dict(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "eval": EvalConfig}


def config_from_dict(values: dict | None, source: str = "<dict>", validate: bool = True) -> ExperimentConfig:
    """Build an :class:`ExperimentConfig` from nested dicts; missing keys keep their defaults.

    Args:
        values: nested mapping, e.g. parsed YAML.
        source: where the values came from (named in error messages).
        validate: also check every value.

    Raises:
        ConfigError: unknown key (with the valid keys) or bad value (naming the key).
    """
    config = _build(ExperimentConfig, values or {}, source, ())
    if validate:
        config.validate(source)
    return config


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise ConfigError(
            f"--set {item!r}: expected key=value with a dotted key, e.g. --set train.epochs=3."
        )
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {item!r}: the key before '=' is empty.")
    try:
        value = load_yaml(raw) if raw.strip() != "" else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: the value is not a valid YAML scalar ({yaml_error_text(exc)[2:]}).") from exc
    return key, value


def apply_overrides(values: dict, overrides: Sequence[str] | None, source: str = "--set") -> dict:
    """Apply ``key=value`` overrides (dotted keys, YAML-parsed values) to a nested dict.

    ``model.options.hide_prob=0.3`` sets a key inside a free ``options`` dict; any other unknown
    key is an error listing the valid keys.

    Args:
        values: nested dict (not modified).
        overrides: items such as ``"train.epochs=3"``.
        source: named in error messages.

    Returns:
        A new nested dict.
    """
    out = copy.deepcopy(values)
    for item in overrides or ():
        key, value = _parse_override(item)
        parts = key.split(".")
        cls: Any = ExperimentConfig
        node = out
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            prefix = tuple(parts[:depth])
            if cls is None:  # inside a free dict
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
                    if not isinstance(node, dict):
                        raise ConfigError(f"{source} {item!r}: {'.'.join(parts[:depth + 1])} is not a mapping.")
                continue
            names = _field_names(cls)
            if part not in names:
                raise _unknown_key_error(".".join(parts[: depth + 1]), names, f"{source} {item!r}")
            if last:
                node[part] = value
                break
            if cls is ExperimentConfig and part in _SECTIONS:
                cls = _SECTIONS[part]
            elif prefix + (part,) in _FREE_DICTS:
                cls = None
            else:
                raise ConfigError(
                    f"{source} {item!r}: {'.'.join(parts[: depth + 1])} is a value, not a section; "
                    f"write --set {'.'.join(parts[: depth + 1])}=VALUE."
                )
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{source} {item!r}: {'.'.join(parts[:depth + 1])} is not a mapping.")
            node = child
    return out


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] | None = None,
    validate: bool = True,
) -> ExperimentConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides.

    Args:
        path: YAML file; ``None`` starts from the synthetic defaults.
        overrides: ``key=value`` items, e.g. ``["train.epochs=3", "model.method=has"]``.
        validate: check every value.

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: unknown key or bad value (the message names the file and the key).
    """
    values: dict = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"Config file {path} does not exist. Available configs are under configs/ "
                "(e.g. configs/synthetic/tiny.yaml)."
            )
        try:
            values = load_yaml(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}{yaml_error_text(exc)}") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(values).__name__}.")
    # Check the file on its own first so that its errors name the file.
    _build(ExperimentConfig, values, source, ())
    if overrides:
        values = apply_overrides(values, overrides)
        source = f"{source} with --set {' '.join(overrides)}"
    return config_from_dict(values, source=source, validate=validate)


def save_config(config: ExperimentConfig, path: str | os.PathLike) -> Path:
    """Write the config as YAML atomically (the run folder's ``config.yaml``)."""
    text = yaml.safe_dump(config_to_dict(config), sort_keys=False)
    return atomic_write_text(path, text)


# ----------------------------------------------------------------------------- validation


def _check(cond: bool, source: str, key: str, value: Any, what: str) -> None:
    if not cond:
        raise ConfigError(f"{source}: {key}={value!r} is invalid: {what}.")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _validate(c: ExperimentConfig, source: str) -> None:
    _check(isinstance(c.name, str) and c.name != "", source, "name", c.name, "must be a non-empty string")
    _check(_is_int(c.seed) and c.seed >= 0, source, "seed", c.seed, "must be an integer >= 0")
    _check(isinstance(c.device, str), source, "device", c.device, "must be a string like auto, cpu, cuda")
    dev = c.device.lower()
    if not (dev in ("auto", "cpu", "cuda", "mps") or (dev.startswith("cuda:") and dev[5:].isdigit())):
        close = device_hint(dev)
        _check(False, source, "device", c.device,
               "must be auto, cpu, cuda, cuda:N or mps" + (f" (did you mean {close!r}?)" if close else ""))
    _check(c.output_dir is None or isinstance(c.output_dir, str), source, "output_dir", c.output_dir,
           "must be a path string or null")

    d = c.data
    validate_choice("data.name", d.name, DATASETS, prefix=f"{source}: ", error=ConfigError)
    if d.name != "synthetic":
        _check(isinstance(d.root, str) and d.root != "", source, "data.root", d.root,
               f"data.name={d.name} needs the dataset folder, e.g. --set data.root=/data/{d.name.upper()}")
    for key in ("image_size", "batch_size", "eval_batch_size"):
        v = getattr(d, key)
        _check(_is_int(v) and v > 0, source, f"data.{key}", v, "must be a positive integer")
    _check(_is_int(d.num_workers) and d.num_workers >= 0, source, "data.num_workers", d.num_workers,
           "must be an integer >= 0")
    _check(isinstance(d.pin_memory, bool), source, "data.pin_memory", d.pin_memory, "must be true or false")
    for key in ("train_limit", "train_per_class", "eval_limit"):
        v = getattr(d, key)
        _check(v is None or (_is_int(v) and v > 0), source, f"data.{key}", v, "must be a positive integer or null")

    m = c.model
    validate_choice("model.method", m.method, registry.METHODS, prefix=f"{source}: ", error=ConfigError)
    validate_choice("model.arch", m.arch, ARCHS, prefix=f"{source}: ", error=ConfigError)
    _check(m.num_classes is None or (_is_int(m.num_classes) and m.num_classes > 1), source,
           "model.num_classes", m.num_classes, "must be an integer > 1 or null (from the dataset)")
    _check(m.pretrained is None or isinstance(m.pretrained, str), source, "model.pretrained",
           m.pretrained, "must be null, 'imagenet' or a path to a weights file")

    t = c.train
    _check(_is_int(t.epochs) and t.epochs >= 1, source, "train.epochs", t.epochs, "must be an integer >= 1")
    _check(_is_num(t.lr) and t.lr > 0, source, "train.lr", t.lr, "must be a number > 0")
    _check(_is_num(t.new_layer_lr_mult) and t.new_layer_lr_mult > 0, source, "train.new_layer_lr_mult",
           t.new_layer_lr_mult, "must be a number > 0")
    _check(_is_num(t.momentum) and 0 <= t.momentum < 1, source, "train.momentum", t.momentum, "must be in [0, 1)")
    _check(isinstance(t.nesterov, bool), source, "train.nesterov", t.nesterov, "must be true or false")
    _check(not (t.nesterov and t.momentum == 0), source, "train.nesterov", t.nesterov,
           "Nesterov needs train.momentum > 0")
    _check(_is_num(t.weight_decay) and t.weight_decay >= 0, source, "train.weight_decay", t.weight_decay,
           "must be a number >= 0")
    validate_choice("train.lr_schedule", t.lr_schedule, LR_SCHEDULES, prefix=f"{source}: ", error=ConfigError)
    _check(_is_int(t.lr_step) and t.lr_step >= 1, source, "train.lr_step", t.lr_step, "must be an integer >= 1")
    _check(_is_num(t.lr_decay) and 0 < t.lr_decay <= 1, source, "train.lr_decay", t.lr_decay, "must be in (0, 1]")
    validate_choice("train.amp", t.amp, AMP_MODES, prefix=f"{source}: ", error=ConfigError)
    _check(isinstance(t.channels_last, bool), source, "train.channels_last", t.channels_last, "must be true or false")
    for key in ("checkpoint_every_steps", "eval_every"):
        v = getattr(t, key)
        _check(_is_int(v) and v >= 0, source, f"train.{key}", v, "must be an integer >= 0")
    _check(_is_int(t.log_every) and t.log_every >= 1, source, "train.log_every", t.log_every, "must be an integer >= 1")

    e = c.eval
    validate_choice("eval.split", e.split, SPLITS, prefix=f"{source}: ", error=ConfigError)
    if e.val_split is not None:
        validate_choice("eval.val_split", e.val_split, SPLITS, prefix=f"{source}: ", error=ConfigError)
    _check(_is_num(e.cam_interval) and 0 < e.cam_interval < 1, source, "eval.cam_interval", e.cam_interval,
           "must be in (0, 1), e.g. 0.01 or 0.001")
    _check(isinstance(e.iou_thresholds, (list, tuple)) and len(e.iou_thresholds) > 0
           and all(_is_num(v) and 0 < v <= 100 for v in e.iou_thresholds), source, "eval.iou_thresholds",
           e.iou_thresholds, "must be a list of IoU thresholds in percent, e.g. [30, 50, 70]")
    valid_metrics = ("maxboxacc_v2", "top1", "top1_loc", "gt_known_loc", "pxap")
    validate_choice("eval.best_metric", e.best_metric, valid_metrics, prefix=f"{source}: ", error=ConfigError)
