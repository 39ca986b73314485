"""Exercise checkers of notebook 00: WSOL and the dataset."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from cirlib.exercises._checking import _as_float, _close, _verdict, checker

__all__ = ['check_00_bigger_head', 'check_00_head_box_iou']


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


def bigger_head_box_accuracy(dataset: Any, factor: float = 2.0, n: int = 100, iou: float = 0.5) -> float:
    """The share of ``n`` images whose head box reaches ``iou`` when the head's radius is ``factor`` times larger.

    The images are rendered anew by the same generator (same seed, split and knobs) with
    ``head_radius`` scaled by ``factor``.
    """
    from cirlib.analysis import head_box_ious
    from cirlib.data import SyntheticWSOL

    knobs = {**asdict(dataset.spec), "head_radius": dataset.spec.head_radius * factor}
    bigger = SyntheticWSOL(dataset.split, size=n, image_size=dataset.image_size, num_classes=dataset.num_classes,
                           seed=dataset.seed, **knobs)
    return float(np.mean(head_box_ious(bigger, n) >= iou))


@checker
def check_00_bigger_head(answer: Any, dataset: Any, factor: float = 2.0, n: int = 100) -> None:
    """Exercise 00.1 (predict): with a head ``factor`` times wider, how often does its box reach IoU 0.5?

    Renders ``n`` images with the larger head (:func:`bigger_head_box_accuracy`) and compares the
    prediction, a fraction in [0, 1], with what happens (within 0.1).
    """
    value = _as_float(answer, "answer_1")
    if value > 1.0:
        raise AssertionError("Not quite. Hint: give a fraction of the images in [0, 1], not a percentage.")
    actual = bigger_head_box_accuracy(dataset, factor, n)
    _verdict(
        _close(value, actual, 0.1),
        f"With a head {factor:g}x wider, its box reaches IoU 0.5 in {actual:.0%} of {n} images: the head's "
        f"box grows {factor ** 2:g}x in area, but the object's box is still far larger.",
        f"a {factor:g}x wider head has a {factor ** 2:g}x larger box, so its IoU with the object's box grows "
        f"about {factor ** 2:g}x at most: multiply the mean IoU of section 4 by {factor ** 2:g}. Above 0.5?",
    )
