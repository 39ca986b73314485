"""Atomic writes: a file is either the old version or the complete new one, never half.

A write goes to a temporary file in the target's folder, is flushed to disk and renamed over the
target. The temporary file gets the mode an ordinary ``open()`` would give (``0o666`` minus the
umask, typically ``0o644``), not ``mkstemp``'s private ``0o600``. When the write fails (disk full,
quota, permission), the temporary file is removed, the old file stays as it was, and the error
raised is :class:`AtomicWriteError` naming the file and the *first* cause: ``torch.save`` tends to
follow an ``ENOSPC`` with its own misleading "unexpected pos" error, which must not hide it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "AtomicWriteError",
    "TorchFileError",
    "atomic_torch_save",
    "atomic_write_json",
    "atomic_write_text",
    "default_file_mode",
    "folder_problem",
    "load_torch_file",
]

_UMASK_LOCK = threading.Lock()


class AtomicWriteError(OSError):
    """Writing a file failed; the file already on disk (if any) is left untouched."""


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file here: ``0o666`` minus the process umask."""
    with _UMASK_LOCK:  # the only portable way to read the umask is to set it and put it back
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


class _FirstErrorWriter:
    """A binary file wrapper that remembers the first ``OSError`` raised by ``write``."""

    def __init__(self, handle) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._handle.write(data)
        except OSError as exc:
            if self.error is None:
                self.error = exc
            raise

    def flush(self) -> None:
        try:
            self._handle.flush()
        except OSError as exc:
            if self.error is None:
                self.error = exc
            raise

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


def _open_temp(fd: int):
    """The binary handle a write goes through (a seam for tests that simulate a full disk)."""
    return os.fdopen(fd, "wb")


def _atomic_replace(path: Path, write) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise AtomicWriteError(
            f"Cannot write {path}: {exc.strerror or exc} (folder {path.parent}). Choose a writable folder."
        ) from exc
    writer = None
    try:
        handle = _open_temp(fd)
        writer = _FirstErrorWriter(handle)
        try:
            write(writer)
            writer.flush()
            os.fsync(handle.fileno())
        finally:
            try:
                handle.close()
            except OSError as exc:
                if writer.error is None:
                    writer.error = exc
        if writer.error is not None:  # a write failed but the caller carried on (or raised its own error)
            raise writer.error
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        cause = writer.error if writer is not None and writer.error is not None else exc
        if isinstance(cause, OSError):
            old = "the previous file is unchanged" if path.exists() else "nothing was written"
            raise AtomicWriteError(
                f"Cannot write {path}: {cause.strerror or cause} ({old}). Free space or choose another folder."
            ) from cause
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return _atomic_replace(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (keys kept in insertion order)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically, so an interrupted run never leaves a broken checkpoint."""
    return _atomic_replace(Path(path), lambda handle: torch.save(obj, handle))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serialisable")


class TorchFileError(ValueError):
    """A file could not be read by :func:`load_torch_file`; ``reason`` says why in words (no torch jargon)."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"Cannot read {path}: {reason}.")


def load_torch_file(
    path: str | os.PathLike, map_location: Any = "cpu", safe_globals: list | tuple = (), mmap: bool = False
) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, so no pickled code runs.

    torch's warning about an unusual pickle protocol is not printed (the error below says what
    matters). ``mmap=True`` maps the tensors instead of reading them (a cheap look at a big checkpoint's
    config); a file of torch's older, non-zip format is then read normally.

    Raises:
        TorchFileError: the file holds pickled code or objects (refused, nothing ran), or it is damaged
            or not a ``torch.save`` file; ``reason`` says which.
    """
    import warnings

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*pickle protocol", category=UserWarning)
            with torch.serialization.safe_globals(list(safe_globals)):
                try:
                    return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
                except RuntimeError as exc:
                    if not (mmap and "mmap" in str(exc)):
                        raise
                    return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types; each becomes one reason
        raise TorchFileError(path, torch_load_failure(exc, path)) from exc


def torch_load_failure(exc: BaseException, path: str | os.PathLike | None = None) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in one clause.

    A file that asks to import a function or class (``GLOBAL posix.system``, named by torch or
    found by :func:`pickled_imports` when torch stopped earlier, e.g. at protocol 5's framing)
    holds pickled code or objects: it was refused before anything in it ran. Anything else (random
    bytes, a truncated zip) is a damaged file or not one written by ``torch.save``.
    """
    import re

    text = str(exc)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    names = [found.group(1)] if found is not None else (pickled_imports(path) if path is not None else [])
    if names:
        return (f"it holds pickled code or objects ({', '.join(names[:3])}) and was refused: only tensors and "
                "plain containers are read (weights_only), so nothing in it ran")
    return "it is damaged (a truncated or interrupted copy?) or not a file written by torch.save"


#: Modules whose names a ``torch.save`` file of tensors and containers imports (rebuilding tensors).
_TENSOR_MODULES = ("torch", "collections", "numpy", "_codecs")


def pickled_imports(path: str | os.PathLike) -> list[str]:
    """Functions and classes outside torch/NumPy/collections that the pickle(s) in ``path`` would import.

    The opcodes are only listed (``pickletools.genops``), never executed. Reads torch's zip format
    (``data.pkl``) and the older format (several pickles in a row); an unreadable stream ends the list.
    """
    import io as _io
    import pickletools
    import zipfile

    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(name) if name else b""
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile, KeyError):
        return []
    stream, names, strings = _io.BytesIO(data), [], []
    try:
        for _ in range(8):  # torch's older format: magic number, protocol, system info, data
            if stream.tell() >= len(data):
                break
            for op, arg, _pos in pickletools.genops(stream):
                if isinstance(arg, str):
                    strings.append(arg)
                if op.name == "GLOBAL":
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # noqa: BLE001 - a damaged stream: what was listed so far stands
        pass
    return [n for n in dict.fromkeys(names) if n.split(".", 1)[0] not in _TENSOR_MODULES]


def folder_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot serve as a folder to write in (``None`` when it can), leaving nothing behind.

    The path must be a folder or not exist yet; its nearest existing ancestor must be a folder in
    which a file can be created. That is tried for real (a temporary file, removed at once), because
    permission bits do not tell: root writes through them, and an immutable folder (``chattr +i``)
    or a read-only mount refuses root too.

    Returns:
        ``"is a file, not a folder"``, ``"cannot be created: X is a file"``,
        ``"is not writable (creating a file in X fails: reason)"`` or ``None``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        return "is a file, not a folder"
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be created: {probe} is a file"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"is not writable ({probe} does not allow writing)"
    try:
        fd, name = tempfile.mkstemp(prefix=".cirlib-write-test.", dir=probe)
    except OSError as exc:
        return f"is not writable (creating a file in {probe} fails: {exc.strerror or exc})"
    os.close(fd)
    os.unlink(name)
    return None
