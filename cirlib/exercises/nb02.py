"""Exercise checkers of notebook 02: Hide-and-Seek."""

from __future__ import annotations

import math
from typing import Any


from cirlib.exercises._checking import _require, _as_float, _verdict, _close, checker

__all__ = ['check_02_head_hidden_probability', 'check_02_num_patches', 'check_02_scaled_patch_sizes']


@checker
def check_02_num_patches(answer: Any, height: int = 48, width: int = 64, patch_size: int = 13) -> None:
    """Exercise 02.1: number of grid patches on an ``height x width`` image with side ``patch_size``."""
    _require(answer, "answer_1")
    expected = math.ceil(height / patch_size) * math.ceil(width / patch_size)
    _verdict(
        answer == expected,
        f"{math.ceil(height / patch_size)} rows x {math.ceil(width / patch_size)} columns = {expected} patches "
        "(the last row and column are cut at the border).",
        "the grid starts at the top-left corner and the border patches are cut, so count "
        "ceil(H / s) rows and ceil(W / s) columns.",
    )


@checker
def check_02_scaled_patch_sizes(answer: Any, image_size: int = 64) -> None:
    """Exercise 02.2: the HaS patch sides (0, 16, 32, 44, 56) at 224 px scaled to ``image_size``."""
    from cirlib.methods import scale_patch_sizes

    _require(answer, "answer_2")
    expected = scale_patch_sizes(image_size=image_size)
    try:
        got = tuple(int(v) for v in answer)
    except TypeError:
        raise AssertionError("answer_2 must be a sequence of five integers, e.g. (0, 1, 2, 3, 4).") from None
    _verdict(
        got == expected,
        f"{expected}: the same fractions of the image as HaS's sides at 224 px.",
        f"scale each side by {image_size}/224 and round half up; 0 ('hide nothing') stays 0.",
    )


@checker
def check_02_head_hidden_probability(answer: Any, hide_prob: float = 0.5, num_sizes: int = 5) -> None:
    """Exercise 02.3: the chance that HaS hides the head in a training image.

    The head lies inside one patch; one of the ``num_sizes`` patch sides is 0 (nothing hidden).
    """
    value = _as_float(answer, "answer_3")
    expected = (num_sizes - 1) / num_sizes * hide_prob
    _verdict(
        _close(value, expected, 1e-6),
        f"P = {num_sizes - 1}/{num_sizes} x {hide_prob} = {expected:.2f}: in that share of the steps the "
        "network must classify from the body.",
        "two independent events: the batch's patch side is not 0 (one of the five sides is 0), and the "
        "head's patch is hidden (probability p).",
    )
