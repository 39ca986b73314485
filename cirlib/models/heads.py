r"""The CAM head: a 1x1 convolution to :math:`K` classes followed by global average pooling.

For features :math:`F \in \mathbb{R}^{C \times h \times w}` and classifier weights
:math:`w \in \mathbb{R}^{K \times C}`, bias :math:`b \in \mathbb{R}^K`, the class activation map of
class :math:`k` (Zhou et al., CVPR 2016) is

.. math::

    M_k(i, j) = \sum_{c=1}^{C} w_{k,c}\, F_c(i, j),

and the logits are its global average plus the bias:

.. math::

    y_k = \frac{1}{hw} \sum_{i,j} M_k(i, j) + b_k
        = \sum_c w_{k,c} \Big(\frac{1}{hw}\sum_{i,j} F_c(i,j)\Big) + b_k ,

i.e. exactly "GAP then a linear layer": both orders give the same logits because both operations
are linear. Computing the maps first costs the same and gives the CAM for free.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CAMHead", "class_activation_maps", "minmax_normalize", "select_class_maps"]


def minmax_normalize(maps: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    r"""Min-max normalise every map of ``(..., h, w)`` over its own locations, differentiably (float32):

    .. math:: \hat A = \frac{A - \min A}{\max A - \min A + \epsilon}.

    A constant map becomes zeros. The training-side normaliser (the fusion loss); inference and
    evaluation use the reference protocol's :func:`cirlib.maps.normalize` (no :math:`\epsilon`).

    Args:
        maps: maps with the two spatial dimensions last, e.g. ``(B, h, w)`` or ``(B, K, h, w)``.
        eps: guards the division for constant maps.
    """
    if maps.dim() < 2:
        raise ValueError(f"minmax_normalize: expected (..., h, w) maps, got shape {tuple(maps.shape)}.")
    flat = maps.float().flatten(-2)
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    return ((flat - lo) / (hi - lo + eps)).view(maps.shape)


def class_activation_maps(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Class activation maps :math:`M_k(i,j) = \sum_c w_{k,c} F_c(i,j)` (+ :math:`b_k` if given).

    Args:
        features: ``(B, C, h, w)`` feature maps :math:`F`.
        weight: classifier weights :math:`w`, ``(K, C)`` (a linear layer) or ``(K, C, 1, 1)`` (a 1x1 conv).
        bias: optional ``(K,)`` bias :math:`b`; when given it is added to every position, so
            ``maps.mean((2, 3))`` equals the logits. Without it, ``maps.mean((2, 3)) + bias`` does.

    Returns:
        ``(B, K, h, w)`` maps for every class.
    """
    if features.ndim != 4:
        raise ValueError(f"class_activation_maps: features must be (B, C, h, w), got {tuple(features.shape)}.")
    w = weight.reshape(weight.shape[0], -1) if weight.ndim == 4 else weight
    if w.ndim != 2 or w.shape[1] != features.shape[1]:
        raise ValueError(
            f"class_activation_maps: weight {tuple(weight.shape)} does not match {features.shape[1]} feature channels."
        )
    maps = torch.einsum("kc,bchw->bkhw", w.to(features.dtype), features)
    if bias is not None:
        maps = maps + bias.to(maps.dtype).view(1, -1, 1, 1)
    return maps


def select_class_maps(maps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pick one map per image: ``maps[b, labels[b]]`` -> ``(B, h, w)``."""
    labels = _checked_labels(labels, maps.shape[0], maps.shape[1], maps.device)
    return maps[torch.arange(maps.shape[0], device=maps.device), labels]


def _checked_labels(labels: torch.Tensor, batch: int, num_classes: int, device: torch.device) -> torch.Tensor:
    labels = torch.as_tensor(labels, device=device).long().view(-1)
    if labels.numel() != batch:
        raise ValueError(f"labels has {labels.numel()} entries for a batch of {batch}.")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got min {int(labels.min())}, max {int(labels.max())}.")
    return labels


class CAMHead(nn.Module):
    r"""1x1 convolution to :math:`K` classes (the CAM) + global average pooling.

    ``forward(features)`` returns logits ``(B, K)``; :meth:`maps` returns the bias-free class
    activation maps ``(B, K, h, w)``; :meth:`forward_with_maps` returns both from one pass, with
    ``maps.mean((2, 3)) + classifier.bias == logits``.

    Args:
        in_channels: feature channels :math:`C`.
        num_classes: number of classes :math:`K`.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"CAMHead: num_classes must be >= 1, got {num_classes}.")
        self.in_channels, self.num_classes = int(in_channels), int(num_classes)
        self.classifier = nn.Conv2d(in_channels, num_classes, kernel_size=1, bias=True)
        nn.init.kaiming_normal_(self.classifier.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.classifier.bias)

    def maps(self, features: torch.Tensor) -> torch.Tensor:
        r"""Bias-free CAMs :math:`M_k = \sum_c w_{k,c} F_c`, ``(B, K, h, w)``."""
        return class_activation_maps(features, self.classifier.weight)

    def label_maps(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        r"""The bias-free CAM of each image's own class, ``(B, h, w)``: :math:`M_{y_b}` for image :math:`b`.

        ``select_class_maps(self.maps(features), labels)`` up to float rounding, without computing
        the other :math:`K - 1` maps.
        """
        if features.ndim != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"CAMHead.label_maps: expected (B, {self.in_channels}, h, w) features, got {tuple(features.shape)}.")
        b, c, h, w = features.shape
        labels = _checked_labels(labels, b, self.num_classes, features.device)
        weight = self.classifier.weight.reshape(self.num_classes, c)[labels].to(features.dtype)
        return torch.bmm(weight.unsqueeze(1), features.reshape(b, c, h * w)).reshape(b, h, w)

    def forward_with_maps(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits (B, K), maps (B, K, h, w))`` with logits = GAP(maps) + bias."""
        maps = self.maps(features)
        logits = maps.mean(dim=(2, 3)) + self.classifier.bias.to(maps.dtype)
        return logits, maps

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)``: GAP then the linear classifier (cheaper than going through the maps)."""
        return self.classify(features.mean(dim=(2, 3)))

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K)`` of features already averaged over positions, ``(B, C)``."""
        weight = self.classifier.weight.reshape(self.num_classes, -1).to(pooled.dtype)
        return nn.functional.linear(pooled, weight, self.classifier.bias.to(pooled.dtype))
