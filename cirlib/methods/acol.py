r"""ACoL, Adversarial Complementary Learning (Zhang et al., CVPR 2018).

Two classifiers :math:`A` and :math:`B` (1x1-conv CAM heads) share the backbone features
:math:`F`. In training, the class map :math:`M^A_{c^\ast}` of the GT class is min-max normalised
per image, the locations above the erasing threshold :math:`\delta` are zeroed in the features fed
to :math:`B`, and both classifiers learn the label:

.. math::

    \bar M = \frac{M^A_{c^\ast} - \min M^A_{c^\ast}}{\max M^A_{c^\ast} - \min M^A_{c^\ast}}, \qquad
    F^B = F \odot [\bar M \le \delta], \qquad
    \mathcal{L} = \mathrm{CE}(y^A, c^\ast) + \mathrm{CE}(y^B, c^\ast).

At test time nothing is erased; the localization map of class :math:`k` is the element-wise max of
the two min-max normalised maps, :math:`\max(\bar M^A_k, \bar M^B_k)` (the paper's fusion), and the
logits are those of :math:`A`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cirlib.methods.base import WSOLModel
from cirlib.models.heads import CAMHead, minmax_normalize, select_class_maps

__all__ = ["ACoLModel", "erase_mask"]


def erase_mask(class_maps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Keep-mask ``(B, 1, h, w)`` of ACoL: 0 where the normalised map ``(B, h, w)`` exceeds ``threshold``."""
    return (minmax_normalize(class_maps) <= threshold).unsqueeze(1).to(class_maps.dtype)


class ACoLModel(WSOLModel):
    """Backbone + two CAM heads; head B sees the features with A's most discriminative region erased.

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone`.
        num_classes: number of classes :math:`K`.
        erase_threshold: :math:`\\delta` in ``[0, 1]``; locations of A's normalised GT map above it
            are erased for B (the paper's choice: 0.6).
    """

    method = "acol"

    def __init__(self, backbone: nn.Module, num_classes: int, erase_threshold: float = 0.6) -> None:
        super().__init__(backbone, num_classes)
        if not 0.0 <= float(erase_threshold) <= 1.0:
            raise ValueError(f"ACoLModel: erase_threshold must be in [0, 1], got {erase_threshold!r}.")
        self.erase_threshold = float(erase_threshold)
        self.head_a = CAMHead(backbone.out_channels, self.num_classes)
        self.head_b = CAMHead(backbone.out_channels, self.num_classes)

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of A ``(B, K)`` and the fused maps ``max(norm(M^A), norm(M^B))`` ``(B, K, h, w)``."""
        features = self.backbone(x)
        logits, maps_a = self.head_a.forward_with_maps(features)
        maps_b = self.head_b.maps(features)
        return logits, torch.maximum(minmax_normalize(maps_a), minmax_normalize(maps_b))

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        """``CE(A) + CE(B on erased features)``: ``{"loss", "logits", "loss_a", "loss_b", "erased_fraction"}``."""
        features = self.backbone(images)
        logits_a, maps_a = self.head_a.forward_with_maps(features)
        # The mask is a hard threshold (no gradient through it), as in the paper.
        keep = erase_mask(select_class_maps(maps_a.detach(), labels), self.erase_threshold)
        logits_b = self.head_b(features * keep)
        loss_a = F.cross_entropy(logits_a, labels)
        loss_b = F.cross_entropy(logits_b, labels)
        return {
            "loss": loss_a + loss_b,
            "logits": logits_a.detach(),
            "loss_a": float(loss_a.detach()),
            "loss_b": float(loss_b.detach()),
            "erased_fraction": float(1.0 - keep.mean()),
        }

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, erase_threshold={self.erase_threshold}"
