"""Helpers for tests that run ``cirlib train`` in a process of its own (resume, signals)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "synthetic" / "tiny.yaml"


def train_command(out: Path, settings: list[str], *extra: str) -> list[str]:
    """``python -m cirlib train`` on the tiny synthetic config into ``out`` with ``--set`` ``settings``."""
    return [sys.executable, "-m", "cirlib", "train", "--config", str(TINY), "--set", f"output_dir={out}",
            *settings, *extra]


def single_thread_env() -> dict:
    """The environment of a reproducible CPU run: one thread, no progress bars, a fixed hash seed."""
    env = dict(os.environ)
    env.update(TQDM_DISABLE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    return env


def strip_times(history: list[dict]) -> list[dict]:
    """``metrics.json``'s history without the wall times, which differ between runs."""
    return [{k: v for k, v in h.items() if k != "time_s"} for h in history]
