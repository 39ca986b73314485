"""Exercise checkers of notebook 08: other WSOL methods."""

from __future__ import annotations

from typing import Any

import torch

from cirlib.evidence import compare
from cirlib.exercises._checking import _require, _as_float, _verdict, checker

__all__ = ['check_08_acol_erased_fraction', 'check_08_cutmix_weight', 'check_08_fewshot_top1']


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


#: Key ideas of exercise 08.4 (explain: what the few-shot baseline beating every WSOL method means).
FEWSHOT_IDEAS = {
    "WSOL needs some boxed images anyway, to choose its CAM threshold and hyper-parameters":
        ("threshold", "hyper", "tune", "choose", "select", "validation"),
    "the same few boxes, used for training, localize better than every label-only method":
        ("train", "supervis", "box loss", "use them", "directly"),
    "so a WSOL method must be compared with that baseline at the same box budget": ("baseline", "budget", "compar", "fair"),
    "classification and localization are different tasks (few-shot's top-1 is lower)":
        ("classif", "top-1", "top1", "accuracy"),
}

_LOWER = ("lower", "below", "worse", "down", "less", "decrease", "drop", "smaller")
_HIGHER = ("higher", "above", "better", "up", "more", "increase", "larger")
_SAME = ("same", "equal", "no difference", "not different", "similar", "unchanged", "tie")


def _direction(answer: Any, name: str) -> str:
    """``"worse"``, ``"better"`` or ``"not different"`` from a word, a sign or a number (negative: lower)."""
    _require(answer, name)
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return "worse" if answer < 0 else "better" if answer > 0 else "not different"
    text = str(answer).lower()
    for words, kind in ((_SAME, "not different"), (_LOWER, "worse"), (_HIGHER, "better")):
        if any(w in text for w in words):
            return kind
    raise AssertionError(f"{name}: answer 'higher', 'lower' or 'the same' (or a signed number); got {answer!r}.")


@checker
def check_08_fewshot_top1(answer: Any, stored: Any) -> None:
    """Exercise 08.3 (predict): is the few-shot model's top-1 higher, lower or not different from CAM's?

    Judged over the seeds of ``make results`` with the evidence rule of notebook 07.

    Args:
        answer: the prediction: "higher", "lower", "the same" (or a signed number of points).
        stored: :func:`cirlib.runs.results.load_results` of ``results/`` (``None``: not run yet).
    """
    predicted = _direction(answer, "answer_3")
    if stored is None or not {"fewshot", "cam"} <= set(stored.summary):
        print("No 3-seed rows of fewshot and cam in results/results.json: run `make results`, then this cell again.")
        return
    mean, std = (lambda m: stored.summary[m]["mean"]["top1"]), (lambda m: stored.summary[m]["std"]["top1"] or 0.0)
    c = compare(mean("fewshot"), mean("cam"), std("fewshot"), std("cam"))
    said = f"top-1 over seeds, few-shot against CAM: {c}"
    return _verdict(
        predicted == c.verdict,
        f"{said}. Five images per class teach the box loss where objects are, but are too few to learn the "
        "classes well; MaxBoxAcc scores the GT class's map, so the poorer classifier still localizes best.",
        f"{said}. The few-shot model trains on 5 images per class, the WSOL methods on 200: which task needs "
        "many images, classifying or finding the object?",
    )
