r"""Hide-and-Seek (Singh & Lee, ICCV 2017): hide random patches while training a CAM model.

At every training batch a patch side :math:`s` is drawn uniformly from ``patch_sizes`` (one per
batch, as in HaS) and each :math:`s \times s` patch of the grid is hidden with probability :math:`p`:

.. math::

    \tilde I = M \odot I + (1 - M)\,\mu, \qquad
    \mathcal{L} = \mathrm{CE}\big(\mathrm{GAP}(w^\top f(\tilde I)) + b,\; y\big),

with :math:`\mu` the dataset mean (``0`` for normalised images; see :mod:`cirlib.methods.masks`).
Hiding the most discriminative part forces the network to find the rest of the object. At test
time nothing is hidden: the model is a plain :class:`~cirlib.methods.cam.CAMModel`.

The default ``patch_sizes`` is HaS's ``(0, 16, 32, 44, 56)`` at 224 px, scaled to the shorter side
of each training batch (``(0, 5, 9, 13, 16)`` at 64 px). Masks use PyTorch's global CPU generator
(seeded by :func:`cirlib.utils.seed_everything`) unless :attr:`HaSModel.generator` is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from cirlib.methods.cam import CAMModel
from cirlib.methods.masks import check_patch_options, hide_patches, patch_sizes_for, sample_patch_size

__all__ = ["HaSModel"]


class HaSModel(CAMModel):
    """A CAM model trained on images with randomly hidden patches.

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone`.
        num_classes: number of classes.
        patch_sizes: patch sides in pixels of the training images; ``None`` = the HaS set
            ``(0, 16, 32, 44, 56)`` scaled from 224 px to each batch's shorter side.
        hide_prob: probability :math:`p` that a patch is hidden (0.5 in HaS).
        fill: value of hidden pixels, a scalar or one per channel (the dataset mean: 0 after
            normalisation).

    Attributes:
        generator: optional CPU ``torch.Generator`` for the masks (``None``: the global generator).
        last_patch_size: the patch side used by the latest :meth:`training_loss` call.
    """

    method = "has"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        patch_sizes: Sequence[int] | None = None,
        hide_prob: float = 0.5,
        fill: float | Sequence[float] = 0.0,
    ) -> None:
        super().__init__(backbone, num_classes)
        self.patch_sizes: tuple[int, ...] | None
        self.patch_sizes, self.hide_prob = check_patch_options(patch_sizes, hide_prob, "HaSModel")
        self.fill = fill
        self.generator: torch.Generator | None = None
        self.last_patch_size: int | None = None

    def patch_sizes_for(self, height: int, width: int) -> tuple[int, ...]:
        """The candidate patch sides for ``height x width`` training images."""
        return patch_sizes_for(self.patch_sizes, height, width)

    def hide(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Hide patches of one batch: ``(hidden_images, visible_mask (B,1,H,W), patch_size)``."""
        size = sample_patch_size(self.patch_sizes_for(*images.shape[-2:]), generator=self.generator)
        fill = torch.as_tensor(self.fill, dtype=images.dtype)
        hidden, mask = hide_patches(images, size, self.hide_prob, fill=fill, generator=self.generator)
        return hidden, mask, size

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        """Cross-entropy on patch-hidden images.

        Returns:
            ``{"loss", "logits", "loss_cls", "patch_size", "hidden_fraction"}``.
        """
        hidden, mask, size = self.hide(images)
        self.last_patch_size = size
        out = self.classification_loss(hidden, labels)
        out["patch_size"] = float(size)
        out["hidden_fraction"] = float(1.0 - mask.float().mean())
        return out

    def extra_repr(self) -> str:
        sizes = "auto (HaS set scaled to the image)" if self.patch_sizes is None else self.patch_sizes
        return f"{super().extra_repr()}, patch_sizes={sizes}, hide_prob={self.hide_prob}, fill={self.fill}"
