r"""The CAM baseline (Zhou et al., CVPR 2016): backbone, 1x1-conv classifier, global average pooling.

Training minimises the cross-entropy of the full image,
:math:`\mathcal{L} = -\log \operatorname{softmax}(y)_{c^\ast}` with
:math:`y_k = \mathrm{GAP}(M_k) + b_k` and :math:`M_k = \sum_c w_{k,c} F_c` (see
:mod:`cirlib.models.heads`). The localization map of an image is :math:`M_{k}` of the GT class
(GT-known) or of the predicted class.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cirlib.methods.base import WSOLModel
from cirlib.models.heads import CAMHead, class_activation_maps

__all__ = ["CAMModel", "class_activation_maps"]


class CAMModel(WSOLModel):
    """Backbone + :class:`~cirlib.models.heads.CAMHead`, trained with cross-entropy.

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone`.
        num_classes: number of classes :math:`K`.
    """

    method = "cam"

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__(backbone, num_classes)
        self.head = CAMHead(backbone.out_channels, self.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``(B, C, h, w)``."""
        return self.backbone(x)

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` and bias-free CAMs ``(B, K, h, w)`` (``GAP(maps) + bias == logits``)."""
        return self.head.forward_with_maps(self.features(x))

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, return_cam: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """See :meth:`WSOLModel.forward`; without ``return_cam`` only GAP + linear is computed."""
        if not return_cam:
            return self.head(self.features(x))
        return super().forward(x, labels=labels, return_cam=True)

    def classification_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        """Cross-entropy on ``images`` as given (subclasses pass hidden images)."""
        logits = self.head(self.features(images))
        loss = F.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits.detach(), "loss_cls": float(loss.detach())}

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        """Cross-entropy of the full images: ``{"loss", "logits", "loss_cls"}``."""
        return self.classification_loss(images, labels)
