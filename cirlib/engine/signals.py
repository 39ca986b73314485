"""Ctrl-C and SIGTERM stop a run the same way: at a step boundary, with a checkpoint.

SIGTERM is what job schedulers (Slurm at the time limit, ``scancel``), ``docker stop`` and
``kill`` send; Python's default would end the process at once, silently. While
:class:`StopSignals` is active, SIGINT (Ctrl-C) and SIGTERM either

* are *deferred* inside the training loop (:meth:`StopSignals.deferred`): the loop finishes the
  step it is in, writes ``last.pt`` and stops (:class:`cirlib.engine.Trainer`), or
* raise :class:`Interrupted` (a ``KeyboardInterrupt``) anywhere else, as Ctrl-C always did.

A second signal while one is pending raises at once. DataLoader workers ignore both signals
(:func:`ignore_stop_signals_in_worker`): the main process decides, and the workers end with it.
Because a worker ignores SIGTERM, it must be shut down through its loader, never left to the
interpreter's exit (which terminates leftover workers with SIGTERM and then waits for them): every
loop over a loader goes through :func:`batches`, which shuts the workers down however the loop ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["Interrupted", "StopSignals", "batches", "ignore_stop_signals_in_worker", "terminate_as_interrupt"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``signum`` is SIGINT (Ctrl-C) or SIGTERM."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(signal.Signals(signum).name)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class StopSignals:
    """SIGINT/SIGTERM handling of a training run (see the module docstring).

    ``pending`` is the number of a signal received while deferred (``None`` otherwise); the
    training loop checks it between steps. Handlers are installed only in the main thread (Python
    allows no other) and the previous ones are restored on exit.
    """

    def __init__(self) -> None:
        self.pending: int | None = None
        self._defer = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self._defer and self.pending is None:
            self.pending = signum
            return
        raise Interrupted(signum)

    def __enter__(self) -> "StopSignals":
        if _main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals inside the block only set ``pending`` (the first one; a second raises)."""
        self._defer = True
        try:
            yield
        finally:
            self._defer = False


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Interrupted` like Ctrl-C does (the command line's default while it runs)."""
    if not _main_thread():
        yield
        return

    def handle(signum, frame):
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def ignore_stop_signals_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: SIGINT and SIGTERM (sent to the whole process group by a terminal's
    Ctrl-C or by Slurm) leave the worker running, so the main process can finish its step and write
    its checkpoint; the worker ends when the main process does."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


@contextmanager
def batches(loader: Iterable) -> Iterator[Iterator]:
    """``with batches(loader) as it: for batch in it: ...``: the loader's iterator, whose worker processes
    are shut down when the block ends, normally or by an exception (a bad image, a signal).

    Without it an exception leaves the iterator in a reference cycle with its traceback; the workers
    then live until the interpreter exits, where they ignore the SIGTERM it sends them
    (:func:`ignore_stop_signals_in_worker`) and the exit waits for them forever.
    """
    iterator = iter(loader)
    try:
        yield iterator
    finally:
        shutdown = getattr(iterator, "_shutdown_workers", None)  # a multi-process DataLoader's iterator
        if shutdown is not None:
            shutdown()
