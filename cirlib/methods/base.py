"""The base class of every WSOL model: the model contract of ``docs/architecture.md``.

A :class:`WSOLModel` has

* ``forward(x, labels=None, return_cam=False)``: logits ``(B, K)`` on the full image, or
  ``(logits, cams)`` with ``cams`` ``(B, h, w)`` the (un-normalised, feature-resolution) class
  activation map of ``labels`` (GT-known) or of the top-1 prediction when ``labels`` is ``None``;
* ``training_loss(images, labels) -> dict`` with ``"loss"`` (to backpropagate), ``"logits"``
  ``(B, K)`` and float logs;
* ``param_groups(lr, new_layer_lr_mult=10.0)``: the backbone at ``lr``, new layers at
  ``lr * new_layer_lr_mult``;
* attributes ``num_classes`` and ``method``.

Subclasses implement :meth:`WSOLModel.forward_maps` (logits and all-class maps of the full image)
and :meth:`WSOLModel.training_loss`; the base class does the CAM selection and the parameter groups.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cirlib.models.heads import select_class_maps

__all__ = ["WSOLModel"]


class WSOLModel(nn.Module):
    """Base class for WSOL models (see the module docstring for the contract).

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone` (``early``/``late``, ``out_channels``,
            ``new_layer_names``).
        num_classes: number of classes :math:`K`.

    Attributes:
        method: the registry name of the method (set by subclasses / ``build_model``).
        needs_boxes: the training loss needs the batch's ground-truth boxes: the trainer then calls
            ``training_loss(images, labels, boxes=boxes)``, ``boxes`` a list of ``B`` float tensors
            ``(k_i, 4)`` with inclusive pixel corners ``x0, y0, x1, y1`` (the dataset contract of
            ``docs/architecture.md``). Weak supervision has no boxes: only a baseline that trains
            on a few boxed images (``data.train_per_class``) sets it to True.
    """

    method: str = "base"
    needs_boxes: bool = False

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
        self.backbone = backbone
        self.num_classes = int(num_classes)

    # -- to implement ---------------------------------------------------------------------------
    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` and class maps ``(B, K, h, w)`` of the full images ``x`` (no hiding)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward_maps(x).")

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        """``{"loss": tensor, "logits": (B, K), ...float logs}`` for one training batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement training_loss(images, labels).")

    # -- contract -------------------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, return_cam: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Inference on the full image.

        Args:
            x: images ``(B, 3, H, W)``.
            labels: ``(B,)`` class indices whose CAM to return (GT-known); ``None`` = top-1 class.
            return_cam: also return the CAMs.

        Returns:
            ``logits`` ``(B, K)``, or ``(logits, cams)`` with ``cams`` ``(B, h, w)`` float, not
            normalised, at feature resolution.
        """
        logits, maps = self.forward_maps(x)
        if not return_cam:
            return logits
        return logits, self.select_cams(maps, logits, labels)

    @staticmethod
    def select_cams(
        maps: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``maps[b, labels[b]]`` (or of the top-1 class when ``labels`` is ``None``), ``(B, h, w)``, float."""
        if labels is None:
            labels = logits.argmax(dim=1)
        return select_class_maps(maps, labels).float()

    def new_parameter_names(self) -> set[str]:
        """Names of parameters trained with the new-layer learning rate.

        Everything outside ``self.backbone`` (heads, attention modules, ...) plus the backbone's
        own ``new_layer_names``.
        """
        backbone_new = {f"backbone.{n}" for n in getattr(self.backbone, "new_layer_names", ())}
        return {
            name for name, _ in self.named_parameters()
            if not name.startswith("backbone.") or name in backbone_new
        }

    def param_groups(self, lr: float, new_layer_lr_mult: float = 10.0) -> list[dict[str, Any]]:
        """Optimizer parameter groups: pretrained layers at ``lr``, new layers at ``lr * mult``.

        Frozen parameters (``requires_grad=False``) are left out; empty groups are omitted. Each
        group has a ``"name"`` (``"backbone"`` or ``"new_layers"``), which ``torch.optim`` keeps.
        """
        new = self.new_parameter_names()
        old_params, new_params = [], []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (new_params if name in new else old_params).append(param)
        groups = []
        if old_params:
            groups.append({"params": old_params, "lr": float(lr), "name": "backbone"})
        if new_params:
            groups.append({"params": new_params, "lr": float(lr) * float(new_layer_lr_mult), "name": "new_layers"})
        return groups

    def extra_repr(self) -> str:
        return f"method={self.method!r}, num_classes={self.num_classes}"
