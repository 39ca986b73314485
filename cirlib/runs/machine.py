"""Where the numbers came from: one description of the machine for ``make results`` and ``make demo``."""

from __future__ import annotations

import os
import platform
from typing import Any

__all__ = ["machine_description"]


def _cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` knows)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, Any]:
    """OS, CPU, core count, load average, PyTorch's thread count, GPU and library versions.

    Returns:
        ``{"platform", "cpu", "cpu_count", "load_average", "torch_threads", "cuda", "python", "torch"}``;
        ``load_average`` is ``None`` where the OS has none, ``cuda`` the first GPU's name or ``None``.
    """
    import torch

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average": load,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
