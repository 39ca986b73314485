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


_ALLOCATOR_TUNED = False


def keep_freed_cpu_memory() -> bool:
    """Let glibc's ``malloc`` keep freed memory for reuse instead of returning it to the OS (Linux).

    A training step allocates and frees the same large buffers every step. glibc serves blocks
    above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and gives them back on ``free``,
    so each step page-faults (and the kernel zeroes) those pages again: a 64-image batch of the
    two-branch model at 64 px has dozens of 33 MiB activations, and the faults cost about half a
    CAM step per full-method step (``benchmarks/step_cost.py``). With mmap off
    (``M_MMAP_MAX = 0``) and no trimming (``M_TRIM_THRESHOLD`` at its maximum) the heap keeps them:
    the process's resident memory stays at its peak, and no number changes (only where memory comes
    from). PyTorch's CPU performance guide suggests jemalloc / tcmalloc for the same reason.

    Called once per process by :class:`cirlib.engine.Trainer` on the CPU. A no-op returning False
    where glibc's ``mallopt`` is unavailable (macOS, Windows, musl) or ``CIRLIB_KEEP_FREED_MEMORY=0``.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("CIRLIB_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    ok = bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
    _ALLOCATOR_TUNED = ok
    return ok
