"""Checkpoints: atomic save, RNG capture/restore, and reloading a trained model.

A checkpoint is a dict written with :func:`cirlib.utils.atomic_torch_save` (temporary file, then
rename), so a killed run never leaves a half-written file. It holds the model, optimizer and
scheduler states, the position in training (epoch, step in the epoch, global step), the running
statistics of the current epoch, the history, the config, and the random-number-generator states
of Python, NumPy and PyTorch (CPU and CUDA) of every rank.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cirlib.config import ExperimentConfig, config_from_dict
from cirlib.models.weights import describe_mismatches, state_dict_mismatches

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "capture_rng_state",
    "check_same_model",
    "check_same_run",
    "checkpoint_position",
    "load_checkpoint",
    "load_model_state",
    "read_checkpoint",
    "restore_rng_state",
    "run_differences",
]

CHECKPOINT_FORMAT = "cirlib-checkpoint-v1"


def capture_rng_state() -> dict:
    """The RNG states of Python, NumPy and PyTorch (CPU and every CUDA device)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Restore what :func:`capture_rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointError(ValueError):
    """A checkpoint cannot be used: unreadable, not ours, or for another model (one-line message)."""


def _safe_globals() -> list:
    """The non-tensor types a cirlib checkpoint holds: NumPy's RNG state (an array and its dtype)
    and NumPy scalars (a metric in the history may be one).

    Everything else (config dicts, history, Python's RNG tuple, tensors) is allowed by
    ``torch.load(weights_only=True)`` as it is, so no pickled code runs when a file is read.
    """
    core = getattr(np, "_core", None) or np.core
    types: list = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        names = ("UInt32DType", "Float64DType", "Int64DType")
        types += [getattr(dtypes, name) for name in names if hasattr(dtypes, name)]
    return types


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", mmap: bool = False) -> dict:
    """Load a checkpoint dict, with a one-line error when the file is missing, damaged or not ours.

    The file is read with ``torch.load(weights_only=True)`` (tensors, plain containers and NumPy's
    RNG state only, :func:`cirlib.utils.io.load_torch_file`), so a foreign file cannot run pickled
    code: it is refused with a message that says so. ``mmap=True`` maps the tensors instead of
    reading them (a cheap look at the stored config and position).
    """
    from cirlib.utils.io import TorchFileError, load_torch_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Checkpoint {path} does not exist. A training run writes last.pt and final.pt (and best.pt "
            "with eval.val_split) in its output_dir (see `cirlib train --help`)."
        )
    try:
        ckpt = load_torch_file(path, map_location=map_location, safe_globals=_safe_globals(), mmap=mmap)
    except TorchFileError as exc:
        raise CheckpointError(
            f"Cannot read checkpoint {path}: {exc.reason}. Use a last.pt / best.pt / final.pt written by "
            "`cirlib train`."
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a cirlib checkpoint (expected a dict with format={CHECKPOINT_FORMAT!r}). "
            "Use a last.pt / best.pt / final.pt written by `cirlib train`."
        )
    return ckpt


def load_model_state(model: nn.Module, state: dict, path: str | os.PathLike) -> None:
    """``model.load_state_dict(state)`` with a one-line error naming the file and the first mismatches."""
    missing, unexpected, shapes = state_dict_mismatches(model.state_dict(), state)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"The weights in {path} do not fit the model built from the config: "
            f"{describe_mismatches(missing, unexpected, shapes)}. "
            "The checkpoint was trained with other model settings; use its own config (or another output_dir)."
        )
    model.load_state_dict(state)


#: Config keys a run may change when it is resumed: where it runs and where its folder is.
RESUME_FREE_KEYS = ("device", "output_dir")


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}`` (free ``options`` dicts flattened too)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def run_differences(
    stored_config: dict, config: ExperimentConfig, stored_options: dict | None = None,
    options_now: dict | None = None, every_key: bool = True,
) -> list[tuple[str, Any, Any]]:
    """The ``(key, stored value, value now)`` that make ``config`` another run than the stored one.

    Model keys come first, then ``data.image_size``, then (``every_key``) every other key but
    :data:`RESUME_FREE_KEYS`. When both resolved model options are known
    (:func:`cirlib.methods.resolve_model_options`, what checkpoints store as ``model_options``) they
    are compared instead of ``model.options`` as written, so restating a default is no difference.
    A stored config missing a key (written before that key existed) compares with its default.
    """
    from cirlib.config import config_to_dict

    try:
        stored = config_to_dict(config_from_dict(stored_config, source="<stored config>", validate=False))
    except (ValueError, TypeError):
        stored = dict(stored_config)
    then, now = _flatten(stored), _flatten(config_to_dict(config))
    resolved = bool(stored_options and options_now)
    differences: list[tuple[str, Any, Any]] = []

    def compare(key: str) -> None:
        a, b = then.get(key), now.get(key)
        if a != b and not (a in (None, {}) and b in (None, {})):
            differences.append((key, a, b))

    for key in ("model.method", "model.arch", "model.pretrained") + (("model.num_classes",) if every_key else ()):
        compare(key)
    if resolved:
        for part in ("method", "backbone"):
            a, b = stored_options.get(part) or {}, options_now.get(part) or {}
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    differences.append((f"model.options.{name}", a.get(name), b.get(name)))
    elif (stored.get("model") or {}).get("options") or config.model.options:
        if (stored.get("model") or {}).get("options") != config.model.options:
            differences.append(("model.options", (stored.get("model") or {}).get("options"), config.model.options))
    compare("data.image_size")
    if every_key:
        for key in sorted(set(then) | set(now)):
            if key.startswith("model.") or key == "data.image_size" or key in RESUME_FREE_KEYS:
                continue
            compare(key)
    return differences


def describe_differences(differences: list[tuple[str, Any, Any]], limit: int = 3) -> str:
    """``"train.lr=0.02 -> 0.005, seed=0 -> 1 (and 2 more)"``."""
    shown = ", ".join(f"{key}={then!r} -> {now!r}" for key, then, now in differences[:limit])
    more = len(differences) - limit
    return shown + (f" (and {more} more)" if more > 0 else "")


def model_options_now(config: ExperimentConfig, model: nn.Module | None) -> dict | None:
    """The resolved model options (:func:`cirlib.methods.resolve_model_options`) of ``model``, or of the model
    ``config`` builds when ``model`` is None (``None`` when the config cannot build one)."""
    if model is not None:
        return getattr(model, "resolved_options", None)
    from cirlib.methods import resolve_model_options

    try:
        return resolve_model_options(config.model.method, config.model.arch, config.data.image_size,
                                     **config.model.options)
    except (ValueError, TypeError):
        return None  # building the model reports it


def check_same_model(ckpt: dict, config: ExperimentConfig, model: nn.Module | None, path: str | os.PathLike) -> None:
    """Refuse to load ``ckpt`` into a model that differs from the one it was trained with.

    Compares the whole model section of the config (method, arch, num_classes, pretrained, every
    option) and ``data.image_size`` (:func:`run_differences` without ``every_key``); when the
    checkpoint stores the model's resolved options (defaults included, see
    :func:`cirlib.methods.resolved_model_options`) those are compared, so writing a default value out
    does not count as a change.

    Raises:
        CheckpointError: naming the differing keys, both values and the fix.
    """
    _refuse_differences(ckpt, config, model, path, every_key=False)


def check_same_run(ckpt: dict, config: ExperimentConfig, model: nn.Module | None, path: str | os.PathLike) -> None:
    """Refuse to resume ``ckpt`` under a config that is not its run's: every key is compared
    (:func:`run_differences`) except :data:`RESUME_FREE_KEYS`, the model options resolved.

    A resumed run must end as the uninterrupted run of its config would, so a changed ``seed``,
    ``train.lr`` or ``train.epochs`` is another run: train it in another folder (or ``--overwrite``).

    Raises:
        CheckpointError: naming the differing keys, both values and the fix.
    """
    _refuse_differences(ckpt, config, model, path, every_key=True)


def _refuse_differences(ckpt: dict, config: ExperimentConfig, model: nn.Module | None, path, every_key: bool) -> None:
    stored_options = ckpt.get("model_options")
    differences = run_differences(ckpt.get("config") or {}, config, stored_options,
                                  model_options_now(config, model) if stored_options else None, every_key)
    stored_classes = ckpt.get("num_classes")
    now_classes = getattr(model, "num_classes", None) if model is not None else config.model.num_classes
    if stored_classes and now_classes and int(stored_classes) != int(now_classes):
        if not any(key == "model.num_classes" for key, _, _ in differences):
            differences.insert(0, ("model.num_classes", stored_classes, now_classes))
    if differences:
        raise CheckpointError(
            f"Cannot resume from {path}: it was trained with another config: {describe_differences(differences)}. "
            "Resume with the run's own settings (its config.yaml), or start this one with --overwrite or in "
            "another output_dir."
        )


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[nn.Module, ExperimentConfig]:
    """Rebuild the model of a training run and load its weights (for notebooks and ``evaluate``).

    The model is rebuilt from the checkpoint's config with random initialisation (no download),
    then the trained weights are loaded; it is returned in eval mode on ``device``.

    Args:
        path: a ``last.pt``, ``best.pt`` or ``final.pt`` written by training.
        device: where to put the model.

    Returns:
        ``(model, config)``.
    """
    from cirlib.methods import build_model

    ckpt = read_checkpoint(path)
    try:
        config = config_from_dict(ckpt["config"], source=f"{path} (stored config)")
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path} has no usable stored config ({exc}); it was not written by `cirlib train`."
        ) from exc
    model = build_model(
        config.model.method,
        config.model.arch,
        ckpt["num_classes"],
        pretrained=None,
        image_size=config.data.image_size,
        **config.model.options,
    )
    load_model_state(model, ckpt["model"], path)
    model.to(device).eval()
    return model, config


def checkpoint_summary(ckpt: dict) -> dict[str, Any]:
    """Position of a checkpoint in training, for messages."""
    return {k: ckpt.get(k) for k in ("epoch", "step_in_epoch", "global_step", "kind")}


def checkpoint_position(ckpt: dict) -> str:
    """Where in training a checkpoint was written, in words (what ``cirlib evaluate`` scores).

    ``epoch`` counts finished epochs; a mid-epoch checkpoint is ``step_in_epoch`` steps into the next.
    """
    epochs = ((ckpt.get("config") or {}).get("train") or {}).get("epochs")
    done, step, total = int(ckpt.get("epoch") or 0), int(ckpt.get("step_in_epoch") or 0), ckpt.get("global_step")
    of = f"/{epochs}" if epochs else ""
    if step:
        where = f"epoch {done + 1}{of}, step {step} of that epoch (global step {total}): a mid-epoch checkpoint"
    else:
        where = f"the end of epoch {done}{of} (global step {total})"
    if ckpt.get("kind") == "final":
        return f"the final model, {where}"
    if epochs and done >= int(epochs) and not step:
        return f"the last epoch, {where}"
    return f"{where}, not the end of training"
