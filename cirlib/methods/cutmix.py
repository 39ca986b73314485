r"""CutMix (Yun et al., ICCV 2019) on a CAM model.

With probability ``cutmix_prob`` a training batch is mixed: :math:`\lambda \sim
\mathrm{Beta}(\beta, \beta)`, a box of sides :math:`H\sqrt{1-\lambda}` by :math:`W\sqrt{1-\lambda}`
centred uniformly in the image and clipped to it is pasted from a shuffled copy of the batch, and
the label weight is recomputed from the clipped box:

.. math::

    \lambda' = 1 - \frac{|\text{box}|}{H W}, \qquad
    \mathcal{L} = \lambda'\,\mathrm{CE}(y, c_a) + (1 - \lambda')\,\mathrm{CE}(y, c_b).

Heights and widths are kept apart, so non-square images are handled (the reference code names
``size[2]`` ``W``, which swaps the sides when :math:`H \ne W`). At test time nothing is mixed: the
model is a plain :class:`~cirlib.methods.cam.CAMModel`. Draws use PyTorch's global RNG (seeded by
:func:`cirlib.utils.seed_everything`): ``torch.distributions.Beta`` takes no generator.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cirlib.methods.cam import CAMModel

__all__ = ["CutMixModel", "cutmix_box", "paste_box"]


def cutmix_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """A random box ``(top, bottom, left, right)`` (end-exclusive) of area ratio ``1 - lam`` before clipping."""
    ratio = (1.0 - float(lam)) ** 0.5
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy = int(torch.randint(height, ()))
    cx = int(torch.randint(width, ()))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return top, bottom, left, right


def paste_box(images: torch.Tensor, perm: torch.Tensor, box: tuple[int, int, int, int]) -> tuple[torch.Tensor, float]:
    """``images`` with ``box`` copied from ``images[perm]``, and the weight ``1 - box area / image area``."""
    top, bottom, left, right = box
    mixed = images.clone()
    mixed[:, :, top:bottom, left:right] = images[perm, :, top:bottom, left:right]
    height, width = images.shape[-2:]
    return mixed, 1.0 - (bottom - top) * (right - left) / (height * width)


class CutMixModel(CAMModel):
    """A CAM model trained on CutMix batches.

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone`.
        num_classes: number of classes.
        beta: :math:`\\beta > 0` of the Beta distribution of :math:`\\lambda` (paper: 1.0).
        cutmix_prob: probability that a batch is mixed (paper on ImageNet: 1.0).

    Attributes:
        last_weight: :math:`\\lambda'` of the latest training batch (1.0 when it was not mixed).
    """

    method = "cutmix"

    def __init__(self, backbone: nn.Module, num_classes: int, beta: float = 1.0, cutmix_prob: float = 1.0) -> None:
        super().__init__(backbone, num_classes)
        if not float(beta) > 0.0:
            raise ValueError(f"CutMixModel: beta must be > 0, got {beta!r}.")
        if not 0.0 <= float(cutmix_prob) <= 1.0:
            raise ValueError(f"CutMixModel: cutmix_prob must be in [0, 1], got {cutmix_prob!r}.")
        self.beta = float(beta)
        self.cutmix_prob = float(cutmix_prob)
        self.last_weight = 1.0

    def mix(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(mixed_images, perm, weight)`` of one batch; ``weight`` 1.0 (and images as given) when not mixed."""
        perm = torch.arange(images.shape[0])
        if float(torch.rand(())) >= self.cutmix_prob:
            return images, perm, 1.0
        lam = float(torch.distributions.Beta(self.beta, self.beta).sample())
        perm = torch.randperm(images.shape[0])
        box = cutmix_box(*images.shape[-2:], lam)
        mixed, weight = paste_box(images, perm.to(images.device), box)
        return mixed, perm, weight

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        """Label-mixed cross-entropy: ``{"loss", "logits", "loss_cls", "mix_weight"}``."""
        mixed, perm, weight = self.mix(images)
        self.last_weight = weight
        logits = self.head(self.features(mixed))
        loss = weight * F.cross_entropy(logits, labels) + (1.0 - weight) * F.cross_entropy(logits, labels[perm.to(labels.device)])
        return {"loss": loss, "logits": logits.detach(), "loss_cls": float(loss.detach()), "mix_weight": weight}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, beta={self.beta}, cutmix_prob={self.cutmix_prob}"
