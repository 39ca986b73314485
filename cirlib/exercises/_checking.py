"""What every exercise checker shares: reading the answer, the verdict, the unanswered case."""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, TypeVar

import numpy as np

_Checker = TypeVar("_Checker", bound=Callable[..., None])


class Unanswered(AssertionError):
    """The student has not answered yet (the answer is still ``None``)."""


def checker(function: _Checker) -> _Checker:
    """A checker: an unanswered exercise prints what to do instead of raising.

    A student copy runs top to bottom with every answer still ``None``; that must not stop the
    notebook. A wrong answer still raises ``AssertionError`` with a hint (never the answer).
    """

    @functools.wraps(function)
    def check(*args: Any, **kwargs: Any) -> None:
        try:
            function(*args, **kwargs)
        except Unanswered as unanswered:
            print(str(unanswered))

    return check  # type: ignore[return-value]



def _require(answer: Any, name: str) -> None:
    """Stop the checker with a hint when the exercise was not answered (the student stub is ``None``)."""
    if answer is None:
        raise Unanswered(
            f"{name} is still None: write your answer in the solution cell above (replace the "
            f"'{name} = None' line), run it, then run this checker again."
        )


def _as_float(answer: Any, name: str) -> float:
    _require(answer, name)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} must be a number, got {type(answer).__name__} {answer!r}.") from None
    if math.isnan(value):
        raise AssertionError(f"{name} is NaN; check for a division by zero.")
    return value


def _verdict(ok: bool, praise: str, hint: str) -> None:
    """Print ``praise`` when ``ok``; otherwise raise ``AssertionError`` with the hint.

    Returns ``None`` on purpose: a checker as the last line of a cell then prints only its verdict.
    """
    if not ok:
        raise AssertionError("Not quite. Hint: " + hint)
    print("Correct! " + praise)


def _close(value: float, expected: float, tol: float) -> bool:
    return abs(value - expected) <= tol


def _as_tensor(answer: Any, name: str, shape: tuple[int, ...]):
    import torch

    _require(answer, name)
    got = torch.as_tensor(np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer)).float()
    if tuple(got.shape) != tuple(shape):
        raise AssertionError(f"Not quite. Hint: the result has shape {tuple(shape)}, yours is {tuple(got.shape)}.")
    return got
