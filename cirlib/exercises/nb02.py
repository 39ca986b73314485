"""Exercise checkers of notebook 02: Hide-and-Seek."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cirlib.exercises._checking import _as_float, _close, _require, _verdict, checker

__all__ = ['check_02_head_hidden_probability', 'check_02_headless_top1', 'check_02_whole_head_hidden']


@checker
def check_02_whole_head_hidden(answer: Any, dataset: Any, sizes: tuple[int, int] = (5, 16),
                               hide_prob: float = 0.5) -> None:
    """Exercise 02.1 (predict): which patch side of ``sizes`` hides the whole head more often?

    Args:
        answer: a side of ``sizes``, or "small" / "large" (any wording: "smaller", "bigger", ...).
        dataset: a synthetic split (head masks from ``render``).
    """
    _require(answer, "answer_1")
    from cirlib.analysis import fully_hidden_share

    heads = np.stack([dataset.render(i)["head_mask"] for i in range(min(200, len(dataset)))])
    rates = {s: fully_hidden_share(heads, s, hide_prob, draws=8) for s in sizes}
    best = max(rates, key=rates.get)
    words = str(answer).strip().lower().replace(",", " ").split()
    large = any(w.startswith(("large", "big")) or w == str(max(sizes)) for w in words)
    small = any(w.startswith("small") or w == str(min(sizes)) for w in words)
    if large == small:
        raise AssertionError(f"Not quite. Hint: answer with one of the sides {sizes}, or 'small' / 'large'.")
    said = max(sizes) if large else min(sizes)
    _verdict(
        said == best,
        f"The whole head is hidden in {rates[min(sizes)]:.0%} of the masks with s = {min(sizes)} and "
        f"{rates[max(sizes)]:.0%} with s = {max(sizes)}: a head that spans several small patches is hidden "
        "only when every one of them is, and each is hidden independently.",
        "the head is a disc about 10 px wide. How many patches does it overlap with each side, and what is "
        "the chance that all of them are hidden when each is hidden with probability p?",
    )


def headless_top1(model: torch.nn.Module, dataset: Any, n: int = 200) -> float:
    """Top-1 (%) of ``model`` on the first ``n`` synthetic images with the head filled by the mean (0)."""
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    heads = torch.as_tensor(np.stack([dataset.render(i)["head_mask"] for i in range(len(items))]))
    x = torch.stack([it["image"] for it in items]) * ~heads[:, None]
    device = next(model.parameters()).device
    with torch.no_grad():
        predicted = model.eval()(x.to(device)).argmax(dim=1).cpu()
    return float((predicted == torch.tensor([it["label"] for it in items])).float().mean()) * 100


@checker
def check_02_headless_top1(answer: Any, models: dict[str, torch.nn.Module], dataset: Any, n: int = 200,
                           predicted: str = "has", fast: bool = False) -> None:
    """Exercise 02.2 (predict): the top-1 (%) of model ``predicted`` when every test head is hidden.

    The prediction counts as right within 12 points of the measured top-1 (:func:`headless_top1`).

    Args:
        answer: the predicted top-1 in %.
        models: ``{name: model}``, e.g. CAM and HaS; every one is measured and shown.
        dataset: the synthetic test split (head masks from ``render``).
        predicted: the model the prediction is about.
        fast: a FAST run: the barely trained models' top-1 is shown, not judged.
    """
    value = _as_float(answer, "answer_2")
    if 0.0 < value <= 1.0:
        raise AssertionError("Not quite. Hint: give the top-1 in percent (0 to 100), not a fraction.")
    top1 = {m: headless_top1(model, dataset, n) for m, model in models.items()}
    if fast:
        print("FAST run: top-1 with the heads hidden " + ", ".join(f"{m} {v:.1f} %" for m, v in top1.items())
              + "; barely trained models mean nothing, so the prediction is not judged.")
        return
    bound = 100.0 / dataset.spec.classes_per_group
    _verdict(
        _close(value, top1[predicted], 12.0),
        "Top-1 with the heads hidden: " + ", ".join(f"{m} {v:.1f} %" for m, v in top1.items())
        + f"; chance is {100 / dataset.num_classes:.0f} %, a perfect body reader {bound:.0f} %. Without its head "
        "an object is still told apart up to its group: the body was learned, not only the head.",
        f"with the head gone only the body is left, and {dataset.spec.classes_per_group} classes share each "
        "body texture: what can a perfect body reader reach, and what does chance give?",
    )


@checker
def check_02_head_hidden_probability(answer: Any, hide_prob: float = 0.5, num_sizes: int = 5) -> None:
    """Exercise 02.4: the chance that HaS hides the head in a training image.

    The head lies inside one patch; one of the ``num_sizes`` patch sides is 0 (nothing hidden).
    """
    value = _as_float(answer, "answer_4")
    expected = (num_sizes - 1) / num_sizes * hide_prob
    _verdict(
        _close(value, expected, 1e-6),
        f"P = {num_sizes - 1}/{num_sizes} x {hide_prob} = {expected:.2f}: in that share of the steps the "
        "network must classify from the body.",
        "two independent events: the batch's patch side is not 0 (one of the five sides is 0), and the "
        "head's patch is hidden (probability p).",
    )
