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
    "load_checkpoint",
    "load_model_state",
    "read_checkpoint",
    "restore_rng_state",
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


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict, with a one-line error when the file is missing, damaged or not ours.

    The file is read with ``torch.load(weights_only=True)`` (tensors, plain containers and NumPy's
    RNG state only), so a foreign file cannot run pickled code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Checkpoint {path} does not exist. A training run writes last.pt and final.pt (and best.pt "
            "with eval.val_split) in its output_dir (see `cirlib train --help`)."
        )
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types; re-raised with the file named
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise CheckpointError(
            f"Cannot read checkpoint {path}: {first[:200]}. It is damaged (an interrupted copy?) or not a "
            "cirlib checkpoint; use a last.pt / best.pt / final.pt written by `cirlib train`."
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


def check_same_model(ckpt: dict, config: ExperimentConfig, model: nn.Module | None, path: str | os.PathLike) -> None:
    """Refuse to continue ``ckpt`` with a model that differs from the one it was trained with.

    Compares the whole model section of the config (method, arch, num_classes, pretrained, every
    option) and ``data.image_size``; when the checkpoint stores the model's resolved options
    (defaults included, see :func:`cirlib.methods.resolved_model_options`) those are compared, so
    writing a default value out does not count as a change.

    Raises:
        CheckpointError: naming the first differing key, both values and the fix.
    """
    from cirlib.config import config_to_dict

    stored_cfg = ckpt.get("config") or {}
    stored = dict(stored_cfg.get("model") or {})
    current = config_to_dict(config)["model"]
    differences: list[tuple[str, Any, Any]] = []
    resolved_stored = ckpt.get("model_options")
    resolved_now = getattr(model, "resolved_options", None) if model is not None else None
    keys = ["method", "arch", "pretrained"]
    if not (resolved_stored and resolved_now):  # an older checkpoint: compare the options as written
        keys.append("options")
    for key in keys:
        then, now = stored.get(key), current.get(key)
        if then != now and not (key == "options" and not then and not now):
            differences.append((f"model.{key}", then, now))
    stored_classes = ckpt.get("num_classes")
    now_classes = getattr(model, "num_classes", None) if model is not None else current.get("num_classes")
    if stored_classes and now_classes and int(stored_classes) != int(now_classes):
        differences.append(("model.num_classes", stored_classes, now_classes))
    if resolved_stored and resolved_now:
        for part in ("method", "backbone"):
            a, b = resolved_stored.get(part) or {}, resolved_now.get(part) or {}
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    differences.append((f"model.options.{name}", a.get(name), b.get(name)))
    size_then = (stored_cfg.get("data") or {}).get("image_size")
    if size_then is not None and size_then != config.data.image_size:
        differences.append(("data.image_size", size_then, config.data.image_size))
    if differences:
        key, then, now = differences[0]
        more = f" (and {len(differences) - 1} more difference(s))" if len(differences) > 1 else ""
        raise CheckpointError(
            f"Cannot resume from {path}: it was trained with {key}={then!r} but the config says {now!r}{more}. "
            "Resume with the run's own settings (its config.yaml), or use another output_dir / drop --resume."
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
