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


#: Words a prediction may use for "it goes up", "it goes down" and "it stays the same".
_UP = ("up", "higher", "increase", "more", "rise", "grow", "larger", "bigger")
_DOWN = ("down", "lower", "decrease", "less", "fall", "drop", "smaller", "shrink")
_SAME = ("same", "unchanged", "identical", "no change", "not change", "equal", "no difference", "does not change")


def _direction(answer: Any, name: str) -> int:
    """A predicted direction in any usual form: +1 (``"up"``, ``"higher"``, a positive number), -1, or 0 (``"same"``)."""
    _require(answer, name)
    if isinstance(answer, (int, float, np.number)) and not isinstance(answer, bool):
        return int(np.sign(float(answer)))
    text = str(answer).strip().lower()
    for words, sign in ((_SAME, 0), (_UP, 1), (_DOWN, -1)):
        if any(w in text for w in words):
            return sign
    raise AssertionError(f"{name} should say a direction: 'up', 'down' or 'same' (or +1 / -1 / 0), got {answer!r}.")


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


@checker
def check_explanation(answer: Any, key_ideas: dict[str, tuple[str, ...]], name: str = "answer") -> None:
    """An "explain" exercise: the student's explanation, in words, against the key ideas of the solution.

    Prose cannot be graded by a program, so this never fails: it lists which key ideas the answer
    names (any of an idea's keywords, case-insensitive) and which it might add, then points to the
    collapsed solution to compare with.

    Args:
        answer: the student's explanation, a string.
        key_ideas: ``{"the idea, in words": ("keyword", "other wording", ...)}``.
        name: the answer's variable, for the message.
    """
    _require(answer, name)
    if not isinstance(answer, str) or not answer.strip():
        print(f"{name} should be your explanation in a few sentences, as a string.")
        return
    text = answer.lower()
    named = [idea for idea, words in key_ideas.items() if any(w.lower() in text for w in words)]
    missing = [idea for idea in key_ideas if idea not in named]
    print(f"Your explanation names {len(named)} of the {len(key_ideas)} key ideas.")
    for idea in named:
        print(f"  + {idea}")
    for idea in missing:
        print(f"  ? does it account for: {idea}")
    print("Compare with the solution (the collapsed cell above, or the toggle on the site).")
