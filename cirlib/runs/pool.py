"""Train many runs in parallel worker processes: the one pool of ``make demo`` and ``make results``.

Each worker is a fresh (spawned) process that trains, or reuses, one run through
:func:`cirlib.runs.cache.train_or_load`, which trains on one CPU thread: so ``jobs`` workers use
``jobs`` cores, and a run gives the same numbers whether a notebook, ``make demo`` or
``make results`` trains it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

from cirlib.config import ExperimentConfig, config_from_dict, config_to_dict

__all__ = ["run_many", "train_one"]


def train_one(values: dict[str, Any]) -> dict[str, Any]:
    """Train (or reuse) the run of one config dict; the worker of :func:`run_many`.

    Returns:
        ``{"output_dir", "reused", "seconds", "cpu_time_s", "train_time_s", "metrics"}``: the wall
        and CPU seconds of this call (the CPU time does not depend on the machine's load; ``None``
        for a reused run), the sum of the epochs' wall times the trainer recorded (the original
        training's when reused) and the run's test metrics.
    """
    from cirlib.runs.cache import train_or_load

    start, cpu_start = time.perf_counter(), time.process_time()
    # shipped=False: make demo and make results train their runs; they are what the shipped
    # checkpoints are refreshed from (cirlib.runs.shipped), never copies of them.
    trained = train_or_load(config_from_dict(values, source="run_many"), progress=False, shipped=False)
    cpu_time = time.process_time() - cpu_start
    train_time = None
    metrics_path = trained.output_dir / "metrics.json"
    if metrics_path.exists():
        with open(metrics_path) as handle:
            history = json.load(handle).get("history") or []
        train_time = float(sum(entry.get("time_s", 0.0) for entry in history))
    return {
        "output_dir": str(trained.output_dir),
        "reused": bool(trained.reused),
        "seconds": time.perf_counter() - start,
        "cpu_time_s": None if trained.reused else round(cpu_time, 1),
        "train_time_s": train_time,
        "metrics": trained.metrics,
    }


def _cost(config: ExperimentConfig) -> float:
    """Expected train time (:func:`~cirlib.runs.experiments.estimate_train_seconds`; 0 where it has none)."""
    from cirlib.runs.experiments import estimate_train_seconds

    return estimate_train_seconds(config) or 0.0


def run_many(
    configs: Sequence[ExperimentConfig], jobs: int = 2
) -> Iterator[tuple[ExperimentConfig, dict[str, Any]]]:
    """Train (or reuse) every config, ``jobs`` at a time, longest first; yield each as it finishes.

    Args:
        configs: the runs.
        jobs: worker processes (1: in this process, one after the other).

    Yields:
        ``(config, record)`` in the order the runs finish, ``record`` as :func:`train_one` returns it.

    Raises:
        ValueError: ``jobs < 1``.
    """
    if int(jobs) < 1:
        raise ValueError(f"run_many: jobs must be >= 1, got {jobs}.")
    ordered = sorted(configs, key=lambda c: -_cost(c))
    if int(jobs) == 1:
        for config in ordered:
            yield config, train_one(config_to_dict(config))
        return
    with ProcessPoolExecutor(max_workers=int(jobs), mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(train_one, config_to_dict(config)): config for config in ordered}
        for future in as_completed(futures):
            yield futures[future], future.result()

