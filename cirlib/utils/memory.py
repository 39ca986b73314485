"""Process-wide memory settings for CPU training."""

from __future__ import annotations


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
