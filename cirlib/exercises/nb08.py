"""Exercise checkers of notebook 08: other WSOL methods."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from cirlib.exercises._checking import _require, _as_float, _verdict, checker

__all__ = ['check_08_acol_erased_fraction', 'check_08_cutmix_weight', 'check_08_fewshot_margin']


@checker
def check_08_cutmix_weight(answer: Any, height: int, width: int, box: tuple[int, int, int, int]) -> None:
    r"""Exercise 08.1: CutMix's label weight :math:`\lambda' = 1 - |\text{box}| / (HW)` of a pasted box.

    Args:
        answer: the student's weight of the image's own label.
        height, width: image size.
        box: ``(top, bottom, left, right)``, end-exclusive, as :func:`cirlib.methods.cutmix.cutmix_box` returns.
    """
    from cirlib.methods.cutmix import paste_box

    value = _as_float(answer, "answer_1")
    _, expected = paste_box(torch.zeros(2, 1, height, width), torch.tensor([1, 0]), box)
    return _verdict(
        abs(value - expected) < 1e-9,
        f"lambda' = {expected:.4f}: the loss weights the image's own label by the share of its pixels it kept.",
        "the own label keeps the weight of the pixels that were NOT pasted over: 1 - (box area) / (image area).",
    )


@checker
def check_08_acol_erased_fraction(answer: Any, class_map: torch.Tensor, threshold: float) -> None:
    """Exercise 08.2: the share of locations ACoL erases for classifier B (normalised map above ``threshold``)."""
    from cirlib.methods.acol import erase_mask

    value = _as_float(answer, "answer_2")
    expected = float(1.0 - erase_mask(torch.as_tensor(class_map, dtype=torch.float32)[None], threshold).mean())
    return _verdict(
        abs(value - expected) < 1e-6,
        f"{expected:.4f} of the locations are erased: only where the min-max normalised map exceeds {threshold}.",
        "min-max normalise the map first ((M - min) / (max - min)), then count the locations strictly above the "
        "threshold and divide by the number of locations.",
    )


@checker
def check_08_fewshot_margin(answer: Any, v2_by_method: dict[str, float], wsol_methods: Sequence[str]) -> None:
    """Exercise 08.3: few-shot MaxBoxAccV2 minus the best WSOL method's, in points (this run)."""
    _require(answer, "answer_3")
    value = _as_float(answer, "answer_3")
    best = max(wsol_methods, key=lambda m: v2_by_method[m])
    expected = float(v2_by_method["fewshot"] - v2_by_method[best])
    verdict = "ahead of" if expected > 0 else "behind"
    return _verdict(
        abs(value - expected) < 1e-6,
        f"{expected:+.2f} points: the few-shot baseline is {verdict} the best WSOL method of this run ({best}).",
        "take the largest MaxBoxAccV2 among the WSOL methods (not the few-shot row) and subtract it from the "
        "few-shot value.",
    )
