"""The one check of a named choice: is ``value`` one of the valid values?

Every option that takes one of a few names (a config key, a model option, a notebook parameter,
a command-line flag) goes through :func:`validate_choice`, so every wrong name gets the same one
line: the parameter, the value, the valid values and the closest one::

    >>> validate_choice("DATA", "cubb", ("synthetic", "cub", "ilsvrc"))
    Traceback (most recent call last):
    ValueError: DATA='cubb' is not one of synthetic, cub, ilsvrc; did you mean 'cub'?

This module imports nothing from ``cirlib``, so any module may use it without an import cycle.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

__all__ = ["validate_choice"]


def validate_choice(
    name: str,
    value: Any,
    choices: Iterable[Any],
    *,
    prefix: str = "",
    suffix: str = "",
    error: type[ValueError] = ValueError,
) -> Any:
    """Return ``value`` when it is one of ``choices``; otherwise raise ``error`` with a helpful message.

    The message is ``{prefix}{name}={value!r} is not one of {choices}; did you mean {closest!r}?{suffix}``;
    the closest valid value (``difflib``, similarity at least 0.5) is named when there is one.

    Args:
        name: the parameter's name as the user wrote it (``"DATA"``, ``"data.name"``, ``"fusion_loss"``).
        value: the value to check.
        choices: the valid values.
        prefix: text before the message, naming where the value was given (``"ComplementaryModel: "``,
            ``"configs/x.yaml: "``).
        suffix: text after it (e.g. where the values are documented).
        error: the exception class to raise, a ``ValueError`` subclass (``cirlib.config.ConfigError`` for configs).

    Returns:
        ``value`` unchanged when valid.

    Raises:
        ValueError: (or ``error``) ``value`` is not among ``choices``.
    """
    choices = tuple(choices)
    if value in choices:
        return value
    message = f"{prefix}{name}={value!r} is not one of {', '.join(str(c) for c in choices)}"
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
    if close:
        message += f"; did you mean {close[0]!r}?"
    raise error(message + suffix)
