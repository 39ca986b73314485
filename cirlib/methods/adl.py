r"""ADL, Attention-based Dropout Layer (Choe & Shim, CVPR 2019), on a CAM model.

After chosen backbone stages, the self-attention map is the channel mean of the feature map,
:math:`A = \frac1C\sum_c F_c`. In each training batch, with probability ``drop_rate`` the features
are multiplied by the drop mask, otherwise by the importance map:

.. math::

    M_{\mathrm{drop}} = [A < \gamma \max A], \qquad M_{\mathrm{imp}} = \sigma(A), \qquad
    \tilde F = F \odot M,

with :math:`\max A` per image. ADL has no parameters and is the identity in eval mode, so the test
model is a plain :class:`~cirlib.methods.cam.CAMModel`. The layers are forward hooks on the
backbone's ``early`` and/or ``late`` parts (``positions``), so ``backbones.py`` is unchanged.
The drop decision uses PyTorch's global CPU generator unless a layer's ``generator`` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cirlib.methods.cam import CAMModel

__all__ = ["ADL_POSITIONS", "ADLModel", "AttentionDropout", "adl_masks"]

#: Backbone parts after which ADL can be inserted.
ADL_POSITIONS: tuple[str, ...] = ("early", "late")


def adl_masks(features: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(drop_mask, importance_map)``, each ``(B, 1, h, w)``, of ``features`` ``(B, C, h, w)``."""
    attention = features.mean(dim=1, keepdim=True)
    peak = attention.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
    drop_mask = (attention < threshold * peak).to(features.dtype)
    return drop_mask, torch.sigmoid(attention)


class AttentionDropout(nn.Module):
    """One parameter-free ADL layer; :meth:`hook` applies it to a module's output.

    Args:
        drop_rate: probability of the drop mask in a training forward.
        threshold: :math:`\\gamma`, the drop threshold relative to the peak attention.

    Attributes:
        generator: optional CPU ``torch.Generator`` for the drop decision (``None``: global RNG).
        last_dropped: whether the latest training forward used the drop mask.
    """

    def __init__(self, drop_rate: float, threshold: float) -> None:
        super().__init__()
        self.drop_rate = float(drop_rate)
        self.threshold = float(threshold)
        self.generator: torch.Generator | None = None
        self.last_dropped: bool | None = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The identity in eval mode; ``features`` times the drop mask or the importance map in training."""
        if not self.training:
            return features
        # One draw per forward, as the reference layer does.
        self.last_dropped = bool(torch.rand((), generator=self.generator) < self.drop_rate)
        drop_mask, importance = adl_masks(features, self.threshold)
        return features * (drop_mask if self.last_dropped else importance)

    def hook(self, module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: replace ``module``'s output by ADL of it (a bound method, so deep copies rebind)."""
        return self(output)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}, threshold={self.threshold}"


class ADLModel(CAMModel):
    """A CAM model with attention-based dropout after the chosen backbone parts.

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone`.
        num_classes: number of classes.
        drop_rate: probability of the drop mask in a training batch (paper: 0.75).
        threshold: :math:`\\gamma` in ``(0, 1]``, the drop threshold relative to the peak attention
            (paper: 0.8 for VGG-GAP and ResNet50-SE, 0.9 for the others).
        positions: where ADL is inserted, a subset of :data:`ADL_POSITIONS` (default both: after
            the stages before the last block and after the last block).

    Attributes:
        adl: the :class:`AttentionDropout` layers by position (set their ``generator`` to seed them apart).
    """

    method = "adl"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        drop_rate: float = 0.75,
        threshold: float = 0.8,
        positions: Sequence[str] = ADL_POSITIONS,
    ) -> None:
        super().__init__(backbone, num_classes)
        if not 0.0 <= float(drop_rate) <= 1.0:
            raise ValueError(f"ADLModel: drop_rate must be in [0, 1], got {drop_rate!r}.")
        if not 0.0 < float(threshold) <= 1.0:
            raise ValueError(f"ADLModel: threshold must be in (0, 1], got {threshold!r}.")
        positions = tuple(positions)
        bad = [p for p in positions if p not in ADL_POSITIONS]
        if not positions or bad:
            raise ValueError(f"ADLModel: positions must be a non-empty subset of {ADL_POSITIONS}, got {positions!r}.")
        self.positions = positions
        self.adl = nn.ModuleDict({name: AttentionDropout(drop_rate, threshold) for name in positions})
        for name in positions:
            getattr(backbone, name).register_forward_hook(self.adl[name].hook)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, positions={self.positions}"
