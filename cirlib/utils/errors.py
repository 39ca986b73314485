"""The message of an error as one line: what the command line prints and ``metrics.json`` records."""

from __future__ import annotations

__all__ = ["error_lines"]


def error_lines(exc: BaseException) -> list[str]:
    """The non-blank lines of ``exc``'s message, with a DataLoader worker's wrapping removed.

    A DataLoader worker's error arrives as a ``RuntimeError`` holding the worker's whole traceback
    (``Caught X in DataLoader worker process 0. Original Traceback ...``); its last line is the
    original ``module.Error: message``, of which the message is kept.
    """
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if text.startswith("Caught ") and "Original Traceback" in text and lines:
        last = lines[-1]
        head, sep, rest = last.partition(": ")
        return [rest if sep and head.replace(".", "").replace("_", "").isalnum() else last]
    return lines
