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

__all__ = ["CHECKPOINT_FORMAT", "capture_rng_state", "restore_rng_state", "load_checkpoint", "read_checkpoint"]

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


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict, with a clear error when the file is missing or not ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Checkpoint {path} does not exist. A training run writes last.pt, best.pt and final.pt "
            "in its output_dir (see `cirlib train --help`)."
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise RuntimeError(f"Could not read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a cirlib checkpoint (expected a dict with format={CHECKPOINT_FORMAT!r}). "
            "Use a last.pt / best.pt / final.pt written by `cirlib train`."
        )
    return ckpt


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
    config = config_from_dict(ckpt["config"], source=f"{path} (stored config)")
    model = build_model(
        config.model.method,
        config.model.arch,
        ckpt["num_classes"],
        pretrained=None,
        image_size=config.data.image_size,
        **config.model.options,
    )
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, config


def checkpoint_summary(ckpt: dict) -> dict[str, Any]:
    """Position of a checkpoint in training, for messages."""
    return {k: ckpt.get(k) for k in ("epoch", "step_in_epoch", "global_step", "kind")}
