"""Device selection that works the same on a laptop CPU and a GPU server."""

from __future__ import annotations

import torch

VALID_DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when available, else the CPU. Asking for CUDA on a machine
    without it is an error that says so, rather than a crash deep inside training.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"DEVICE={device!r} but this machine has no CUDA GPU. "
                "Use DEVICE='cpu' (or 'auto', which falls back to the CPU)."
            )
        return torch.device(name)
    if name == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"DEVICE={device!r} but MPS is not available here. Use 'cpu' or 'auto'.")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"Unknown DEVICE={device!r}. Valid values: {', '.join(VALID_DEVICES)}.")
