"""One run per folder: the lock a run holds while it writes, and what a run may do with a folder.

A run folder holds :data:`RUN_FILES` (``config.yaml``, ``last.pt``, ``best.pt``, ``final.pt``,
``metrics.json``), all of one run. :func:`fit <cirlib.engine.fit>` keeps it so:

* **Lock.** While a run writes, it holds ``<output_dir>/run.lock`` (``fcntl.flock``, exclusive,
  holding its PID). A second process is refused, naming that PID. The kernel releases the lock when
  its process dies, so the file a killed run leaves behind is stale and simply taken over.
* **New run** (neither flag): refused when the folder holds another run's files. A ``config.yaml``
  alone of the same config is no other run (it stopped before its first checkpoint).
* ``--resume``: ``last.pt`` must come from the same config, every key compared except ``device``
  and ``output_dir`` (:func:`cirlib.engine.checkpoint.check_same_run`); a completed run
  (``final.pt`` and ``metrics.json`` saying ``"completed"``) has nothing left to do; ``final.pt``
  without ``last.pt`` is refused (there is nothing to continue from, and retraining would replace
  the finished model).
* ``--overwrite``: the old run's files are removed, once the lock is held, before anything is written.

:func:`plan_run_folder` decides without writing anything; :class:`RunLock` takes the lock, and
:func:`fit <cirlib.engine.fit>` plans again under it, since another run may have written meanwhile.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from pathlib import Path

from cirlib.config import ExperimentConfig

__all__ = ["LOCK_NAME", "RUN_FILES", "RunFolderError", "RunLock", "clear_run_files", "lock_holder", "plan_run_folder"]

#: The files of one run (``data_fingerprint.txt`` is written beside them by notebooks' runs).
RUN_FILES = ("config.yaml", "last.pt", "best.pt", "final.pt", "metrics.json", "data_fingerprint.txt")
LOCK_NAME = "run.lock"


class RunFolderError(ValueError):
    """The run folder is in use or holds another run; the message names the folder, why, and the fix."""


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(folder: str | os.PathLike) -> int | None:
    """PID of the live process holding ``folder``'s run lock; ``None`` when free (no lock, or a stale one).

    Only looks: the lock is taken and released at once when nobody holds it. A held lock whose file
    names no PID (it is being written) gives ``-1``.
    """
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            return _read_pid(path) or -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _in_use(folder: Path, pid: int) -> RunFolderError:
    who = f"PID {pid}" if pid > 0 else "a process starting up"
    return RunFolderError(
        f"output_dir={str(folder)!r} is in use by another run ({who} holds {folder / LOCK_NAME}); wait for it to "
        "end or stop it, or choose another output_dir."
    )


class RunLock:
    """The exclusive lock of a run folder (``<folder>/run.lock`` with the holder's PID).

    ``acquire`` creates the folder, takes the lock or raises :class:`RunFolderError` naming the
    holder's PID; ``release`` removes the file. A lock file left by a dead process is taken over
    (``stale_pid`` names that process).
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.stale_pid: int | None = None

    def acquire(self) -> "RunLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise _in_use(self.folder, _read_pid(self.path) or -1) from None
            # The holder before us may have removed the file after we opened it: lock the file that is there.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_pid(self.path)
        if previous and previous != os.getpid() and not _alive(previous):
            self.stale_pid = previous
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        os.close(self.fd)  # closing releases the flock
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _status(folder: Path) -> str | None:
    try:
        with open(folder / "metrics.json") as handle:
            return json.load(handle).get("status")
    except (OSError, ValueError, AttributeError):
        return None


def _describe(folder: Path, present: list[str]) -> str:
    status = _status(folder)
    return ", ".join(present) + (f"; metrics.json says {status!r}" if status else "")


def _config_yaml_differences(folder: Path, config: ExperimentConfig) -> list | None:
    """Differences between ``folder/config.yaml`` and ``config`` (``None``: no config.yaml; unreadable: one)."""
    from cirlib.config import config_from_dict, load_yaml
    from cirlib.engine.checkpoint import model_options_now, run_differences

    path = folder / "config.yaml"
    if not path.is_file():
        return None
    try:
        stored = load_yaml(path.read_text(encoding="utf-8")) or {}
        stored_config = config_from_dict(stored, source=str(path), validate=False)
    except Exception as exc:  # noqa: BLE001 - an unreadable config.yaml is another run's, not ours
        return [("config.yaml", f"unreadable ({type(exc).__name__})", "this config")]
    return run_differences(stored, config, model_options_now(stored_config, None), model_options_now(config, None))


def plan_run_folder(config: ExperimentConfig, folder: str | os.PathLike, resume: bool = False,
                    overwrite: bool = False, check_lock: bool = True) -> str:
    """What a run of ``config`` may do in ``folder``, decided without writing anything.

    Returns:
        ``"new"`` (start from scratch; with ``overwrite`` after :func:`clear_run_files`), ``"resume"``
        (continue ``last.pt``) or ``"completed"`` (``resume`` of a finished run: nothing to do).

    Raises:
        RunFolderError, CheckpointError: one line naming the folder, the files or the differing
            config keys, and the fix (``--resume``, ``--overwrite`` or another ``output_dir``).
    """
    from cirlib.engine.checkpoint import check_same_run, describe_differences, read_checkpoint

    folder = Path(folder)
    if resume and overwrite:
        raise RunFolderError("--resume continues the run in output_dir and --overwrite replaces it: give only one.")
    if check_lock:
        holder = lock_holder(folder)
        if holder is not None:
            raise _in_use(folder, holder)
    present = [name for name in RUN_FILES if (folder / name).is_file()]
    if overwrite or not present:
        return "new"
    last, final = folder / "last.pt", folder / "final.pt"
    if not resume:
        if present == ["config.yaml"] and not _config_yaml_differences(folder, config):
            return "new"  # the same run, stopped before its first checkpoint
        raise RunFolderError(
            f"output_dir={str(folder)!r} holds another run ({_describe(folder, present)}). Continue it with "
            "--resume, replace it with --overwrite, or choose another output_dir."
        )
    if not last.is_file():
        if final.is_file():
            raise RunFolderError(
                f"Cannot resume {folder}: it holds final.pt but no last.pt, so there is nothing to continue from "
                f"({_describe(folder, present)}). Evaluate final.pt with `cirlib evaluate`, or train anew with "
                "--overwrite."
            )
        differences = _config_yaml_differences(folder, config)
        if differences:
            raise RunFolderError(
                f"Cannot resume {folder}: its config.yaml is another run's ({describe_differences(differences)}) "
                "and it has no checkpoint. Use --overwrite or another output_dir."
            )
        return "new"  # nothing to resume yet: the trainer says so and starts from scratch
    check_same_run(read_checkpoint(last, mmap=True), config, None, last)
    if final.is_file() and _status(folder) == "completed":
        return "completed"
    return "resume"


def clear_run_files(folder: str | os.PathLike) -> list[str]:
    """Remove the :data:`RUN_FILES` of ``folder`` (``--overwrite``, under the lock); returns their names."""
    removed = []
    for name in RUN_FILES:
        path = Path(folder) / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    return removed
