"""Exercise checkers of notebook 03: complementary regions."""

from __future__ import annotations

from typing import Any


from cirlib.exercises._checking import _require, _as_float, _verdict, _close, checker

__all__ = ['check_03_backbone_passes', 'check_03_pair_sum', 'check_03_second_view_fraction']


@checker
def check_03_pair_sum(answer: Any, images: Any) -> None:
    r"""Exercise 03.1: :math:`I_1 + I_2` for normalised images (:math:`\mu = 0`) equals :math:`I`."""
    import torch

    _require(answer, "answer_1")
    got = torch.as_tensor(answer).float()
    images = torch.as_tensor(images).float()
    if tuple(got.shape) != tuple(images.shape):
        raise AssertionError(f"Not quite. Hint: I1 + I2 has the images' shape {tuple(images.shape)}, "
                             f"yours is {tuple(got.shape)}.")
    _verdict(
        bool(torch.allclose(got, images, atol=1e-6)),
        "I1 + I2 = I (+ mu, which is 0 after normalisation): together the two views lose no pixel.",
        "add the two images returned by complementary_pair for the same images and mask.",
    )


@checker
def check_03_second_view_fraction(answer: Any, hide_prob: float = 0.3) -> None:
    """Exercise 03.2: the expected fraction of pixels :math:`I_2` shows when patches hide with ``hide_prob``."""
    value = _as_float(answer, "answer_2")
    _verdict(
        _close(value, hide_prob, 1e-6),
        f"I2 shows exactly what I1 hides: a fraction p = {hide_prob} in expectation.",
        "I2 = (1 - M) * I + M * mu shows the pixels that M hides; each patch is hidden with probability p.",
    )


@checker
def check_03_backbone_passes(answer: Any) -> None:
    """Exercise 03.3: backbone forward passes per training image (two-branch model, no fusion loss)."""
    _require(answer, "answer_3")
    _verdict(
        answer == 2,
        "Two passes (one per complementary image), so a training step costs about twice a HaS step; "
        "inference is one pass on the full image.",
        "each branch sees its own image, I1 or I2, through the shared backbone.",
    )
