"""Exercise checkers of notebook 03: complementary regions."""

from __future__ import annotations

from typing import Any

import numpy as np

from cirlib.exercises._checking import _as_float, _direction, _verdict, checker

__all__ = ["check_03_patch_size_effect", "check_03_second_view_fraction"]

#: The key ideas of exercise 03's explanation: why using every pixel does not beat HaS.
NOT_BETTER_IDEAS = {
    "each classifier still learns from its own half of the image, as HaS's one network does":
        ("half", "each classifier", "each branch", "own view", "its own"),
    "classifier 2 gets a blank I2 whenever the side-0 patch is drawn (a fifth of its steps)":
        ("blank", "side 0", "empty", "20%", "fifth"),
    "the max fusion keeps the weaker classifier's activations: the fused map is below the better classifier":
        ("fusion", "max", "weaker"),
    "the branches never exchange information; nothing ties their maps together (notebooks 04-06 add that)":
        ("exchange", "tie", "attention", "fusion loss", "independent", "share"),
    "over three seeds the gap to HaS is inside the seed spread: no difference shown":
        ("spread", "seed", "evidence", "inside", "noise"),
}


def _region_masks(dataset: Any, count: int) -> np.ndarray:
    """The heads of the first ``count`` synthetic images, or their GT boxes on a dataset without part masks."""
    if hasattr(dataset, "render"):
        return np.stack([dataset.render(i)["head_mask"] for i in range(count)])
    masks = []
    for i in range(count):
        item = dataset[i]
        mask = np.zeros(tuple(item["image"].shape[-2:]), dtype=bool)
        for x0, y0, x1, y1 in np.asarray(item["boxes"]).reshape(-1, 4).astype(int).tolist():
            mask[y0:y1 + 1, x0:x1 + 1] = True
        masks.append(mask)
    return np.stack(masks)


@checker
def check_03_patch_size_effect(answer: Any, dataset: Any, small: int, large: int, count: int = 100,
                               seed: int = 0) -> None:
    """Exercise 03 (predict): does a larger patch side hide the whole head from ``I1`` more or less often?

    Args:
        answer: the predicted direction, ``"higher"``, ``"lower"`` or ``"same"`` (any usual form, or +1 / -1 / 0).
        dataset: the test split (synthetic: its heads; otherwise the GT boxes stand in for the part).
        small, large: the two patch sides compared.
        count: images measured.
        seed: seed of the patch masks.
    """
    from cirlib.analysis import fully_hidden_share

    predicted = _direction(answer, "answer_1")
    masks = _region_masks(dataset, min(count, len(dataset)))
    share_small, share_large = (fully_hidden_share(masks, s, 0.5, draws=20, seed=seed) for s in (small, large))
    change = share_large - share_small
    actual = 0 if abs(change) < 0.01 else (1 if change > 0 else -1)
    return _verdict(
        predicted == actual,
        f"With {small}-px patches I1 hides the whole head in {share_small:.0%} of the draws, with {large}-px patches "
        f"in {share_large:.0%}. A part that spans k patches is hidden whole with probability p^k, and a larger "
        "patch covers it with fewer patches: the larger the patches, the more often one branch must name the "
        "class without the head (and the other sees it whole).",
        "count how many patches a head of a few pixels spans at each side; each patch is hidden with probability "
        "p, independently.",
    )


@checker
def check_03_second_view_fraction(answer: Any, hide_prob: float = 0.3) -> None:
    """Exercise 03: the expected fraction of pixels :math:`I_2` shows when patches hide with ``hide_prob``."""
    value = _as_float(answer, "answer_2")
    return _verdict(
        abs(value - hide_prob) <= 1e-6,
        f"I2 shows exactly what I1 hides: a fraction p = {hide_prob} in expectation.",
        "I2 = (1 - M) * I + M * mu shows the pixels that M hides; each patch is hidden with probability p.",
    )
