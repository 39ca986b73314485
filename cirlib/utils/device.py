"""Device selection that works the same on a laptop CPU and a GPU server."""

from __future__ import annotations

import torch

VALID_DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
#: What people write for a device and what they mean (difflib would answer 'gpu' with 'cpu').
DEVICE_ALIASES = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda:0", "metal": "mps", "apple": "mps"}
#: How to ask for the CPU where the device comes from: a notebook parameter, a CLI flag, a config key.
CPU_HINTS = {"notebook": "DEVICE='cpu'", "cli": "--device cpu", "config": "device: cpu"}


class DeviceUnavailableError(ValueError):
    """The requested device does not exist on this machine (the message says how to use the CPU)."""

    def __init__(self, requested: str, what: str, hint: str) -> None:
        self.requested = requested
        self.what = what
        super().__init__(
            f"device {requested!r} was asked for but {what}. Use {hint} (or auto, which falls back to the CPU)."
        )


def device_hint(name: str) -> str:
    """A ``did you mean`` for a device name that is not valid (``gpu`` -> ``cuda``), or ``""``."""
    key = str(name).strip().lower()
    if key in DEVICE_ALIASES:
        return DEVICE_ALIASES[key]
    import difflib

    close = difflib.get_close_matches(key, ["auto", "cpu", "cuda", "mps"], n=1, cutoff=0.6)
    return close[0] if close else ""


def resolve_device(device: str | torch.device = "auto", context: str = "config") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when available, else the CPU. Asking for CUDA on a machine
    without it is an error that says so, rather than a crash deep inside training.

    Args:
        device: the device name.
        context: who asked (``notebook``, ``cli`` or ``config``): picks how the error message
            says to use the CPU (``DEVICE='cpu'``, ``--device cpu`` or ``device: cpu``).

    Raises:
        DeviceUnavailableError: CUDA or MPS asked for on a machine without it.
        ValueError: an unknown device name (``gpu`` suggests ``cuda``).
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(str(device), "this machine has no CUDA GPU", CPU_HINTS.get(context, "cpu"))
        return torch.device(name)
    if name == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceUnavailableError(str(device), "MPS is not available here", CPU_HINTS.get(context, "cpu"))
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    close = device_hint(name)
    hint = f"; did you mean {close!r}?" if close else "."
    raise ValueError(f"Unknown device {device!r}: valid values are {', '.join(VALID_DEVICES)}{hint}")
