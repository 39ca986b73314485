"""Exercise checkers of notebook 00: WSOL and the dataset."""

from __future__ import annotations

from typing import Any

import numpy as np

from cirlib.exercises._checking import _require, _as_float, _verdict, _close, checker

__all__ = ['check_00_head_box_iou', 'check_00_head_fraction', 'check_00_num_classes_per_group']


def head_fraction(dataset: Any, n: int = 50) -> float:
    r"""Mean over the first ``n`` images of :math:`|\text{head}| / |\text{object}|` (synthetic masks)."""
    fractions = []
    for i in range(min(n, len(dataset))):
        r = dataset.render(i)
        fractions.append(float(r["head_mask"].sum()) / float(max(r["mask"].sum(), 1)))
    return float(np.mean(fractions))


@checker
def check_00_head_fraction(answer: Any, dataset: Any, n: int = 50) -> None:
    r"""Exercise 00.1: the mean fraction of object pixels that belong to the head.

    Args:
        answer: the student's value, a fraction in [0, 1] (not percent).
        dataset: a :class:`~cirlib.data.SyntheticWSOL` split.
        n: number of images averaged (the first ``n``).
    """
    value = _as_float(answer, "answer_1")
    expected = head_fraction(dataset, n)
    if value > 1.0 and _close(value / 100.0, expected, 0.005):
        raise AssertionError("Not quite. Hint: give a fraction in [0, 1], not a percentage.")
    _verdict(
        _close(value, expected, 0.005),
        f"The head is only {expected:.1%} of the object's pixels: a detector that finds the head alone "
        "finds a tiny part of the object.",
        f"average, over the first {n} images, head_mask.sum() / mask.sum() from dataset.render(i) "
        "(the mask is the whole object, head included).",
    )


def _bbox_of(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.int64)


@checker
def check_00_head_box_iou(answer: Any, dataset: Any, index: int = 0) -> None:
    """Exercise 00.2: the IoU of the head's tight box with the object's GT box (inclusive pixels).

    Args:
        answer: the student's IoU in [0, 1].
        dataset: a :class:`~cirlib.data.SyntheticWSOL` split.
        index: the image.
    """
    from cirlib.metrics import box_iou_inclusive

    value = _as_float(answer, "answer_2")
    r = dataset.render(index)
    expected = float(box_iou_inclusive(_bbox_of(r["head_mask"])[None], r["box"][None])[0, 0])
    _verdict(
        _close(value, expected, 1e-3),
        f"IoU = {expected:.3f}: far below 0.5, so a box around the head alone counts as a miss at IoU 50.",
        "the head box is the tight box of render(i)['head_mask'] (min/max of its rows and columns); "
        "IoU counts pixels inclusively: width = x1 - x0 + 1. cirlib.metrics.box_iou_inclusive does it.",
    )


@checker
def check_00_num_classes_per_group(answer: Any, dataset: Any) -> None:
    """Exercise 00.3: how many classes share one body texture (a group)."""
    _require(answer, "answer_3")
    expected = int(dataset.spec.classes_per_group)
    _verdict(
        answer == expected,
        f"{expected} classes share each body texture, so the body alone narrows the class down to a "
        f"group but cannot tell the {expected} apart: only the head can.",
        "look at dataset.class_to_group (or dataset.spec): count the classes that map to group 0.",
    )
