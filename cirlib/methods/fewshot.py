r"""A few-shot, fully supervised baseline (Choe et al., CVPR 2020: "Evaluating WSOL Right").

The reference benchmark's lesson: the few images with boxes a WSOL method needs to tune its
hyper-parameters can instead *train* a localizer, and a handful per class already beats WSOL. This
model is the CAM network (same backbone, same 1x1 classifier head, evaluated exactly like
:class:`~cirlib.methods.cam.CAMModel`: the GT-class map) trained on few images with their boxes.
Its loss adds to the cross-entropy a per-location box loss on the GT-class map :math:`M_{c^\ast}`,
read as logits at feature resolution, against the union of the image's GT boxes rasterised at
that resolution, :math:`T \in [0, 1]^{h \times w}`:

.. math::

    \mathcal{L} = \mathrm{CE}(y, c^\ast) + \lambda_{box}\,\frac{1}{hw} \sum_{i,j}
    \mathrm{BCE}\bigl(\sigma(M_{c^\ast, ij}),\, T_{ij}\bigr).

How the boxes become :math:`T` (``box_target``): ``"area"`` (default) is the fraction of each
feature cell's pixels inside a box (the pixel mask average-pooled to :math:`h \times w`, exact for
any image and feature size); ``"center"`` is 1 where the cell's centre pixel is inside a box.
Boxes are inclusive pixel corners ``x0, y0, x1, y1`` (the dataset contract).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cirlib.methods.cam import CAMModel
from cirlib.models.heads import select_class_maps
from cirlib.utils.choices import validate_choice

__all__ = ["BOX_TARGETS", "FewShotBoxModel", "box_mask", "box_target"]

#: Ways to turn boxes into the per-location target at feature resolution (see the module docstring).
BOX_TARGETS: tuple[str, ...] = ("area", "center")


def box_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Float mask ``(height, width)``: 1 on the pixels of the union of ``boxes`` ``(k, 4)`` (inclusive corners).

    Corners are rounded to whole pixels and clipped to the image; ``k = 0`` gives an all-zero mask.
    """
    mask = torch.zeros(height, width, device=boxes.device)
    for x0, y0, x1, y1 in boxes.reshape(-1, 4).round().long().tolist():
        x0, y0 = max(x0, 0), max(y0, 0)
        mask[y0:max(y1 + 1, y0), x0:max(x1 + 1, x0)] = 1.0
    return mask


def box_target(
    boxes: Sequence[torch.Tensor], image_size: tuple[int, int], map_size: tuple[int, int], mode: str = "area"
) -> torch.Tensor:
    """Per-location targets ``(B, h, w)`` in ``[0, 1]`` from each image's boxes.

    Args:
        boxes: one float tensor ``(k, 4)`` per image, inclusive pixel corners of the input image.
        image_size: ``(H, W)`` of the input images.
        map_size: ``(h, w)`` of the class maps.
        mode: ``"area"`` (fraction of each cell inside a box) or ``"center"`` (the cell centre's pixel).
    """
    validate_choice("mode", mode, BOX_TARGETS, prefix="box_target: ")
    (height, width), (h, w) = image_size, map_size
    masks = torch.stack([box_mask(b, height, width) for b in boxes]).unsqueeze(1)
    if mode == "area":
        return F.adaptive_avg_pool2d(masks, (h, w)).squeeze(1)
    # Centre pixel of cell (i, j) of an h x w grid over H x W pixels.
    ys = ((torch.arange(h, device=masks.device) + 0.5) * height / h).long().clamp_max(height - 1)
    xs = ((torch.arange(w, device=masks.device) + 0.5) * width / w).long().clamp_max(width - 1)
    return masks[:, 0][:, ys][:, :, xs]


class FewShotBoxModel(CAMModel):
    """The CAM network trained with full supervision: cross-entropy plus a box loss on the GT-class map.

    Train it on few images per class (``data.train_per_class``, 5 in the benchmark's lesson); the
    Trainer passes the batch's boxes because ``needs_boxes`` is True. Inference is CAM's.

    Args:
        backbone: a :class:`~cirlib.models.backbones.Backbone`.
        num_classes: number of classes :math:`K`.
        box_loss_weight: :math:`\\lambda_{box}` (1.0: both terms start at a similar scale, about
            :math:`\\log K` and :math:`\\log 2`).
        box_target: how boxes become the target, one of :data:`BOX_TARGETS` (default ``"area"``).
    """

    method = "fewshot"
    needs_boxes = True

    def __init__(
        self, backbone: nn.Module, num_classes: int, box_loss_weight: float = 1.0, box_target: str = "area"
    ) -> None:
        super().__init__(backbone, num_classes)
        if not float(box_loss_weight) >= 0.0:
            raise ValueError(f"FewShotBoxModel: box_loss_weight must be >= 0, got {box_loss_weight!r}.")
        validate_choice("box_target", box_target, BOX_TARGETS, prefix="FewShotBoxModel: ")
        self.box_loss_weight = float(box_loss_weight)
        self.box_target = box_target

    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, boxes: Sequence[torch.Tensor] | None = None
    ) -> dict[str, Any]:
        """``CE + box_loss_weight * BCE(GT-class map, box target)``: ``{"loss", "logits", "loss_cls", "loss_box"}``.

        Raises:
            ValueError: ``boxes`` is missing or does not have one entry per image.
        """
        if boxes is None:
            raise ValueError(
                "FewShotBoxModel.training_loss needs boxes=[one (k, 4) tensor per image] (the batch's "
                "'boxes'); the Trainer passes them to models with needs_boxes = True."
            )
        if len(boxes) != images.shape[0]:
            raise ValueError(f"FewShotBoxModel: got {len(boxes)} box tensors for a batch of {images.shape[0]} images.")
        logits, maps = self.head.forward_with_maps(self.features(images))
        gt_maps = select_class_maps(maps, labels)
        target = box_target(boxes, tuple(images.shape[-2:]), tuple(gt_maps.shape[-2:]), self.box_target)
        loss_cls = F.cross_entropy(logits, labels)
        loss_box = F.binary_cross_entropy_with_logits(gt_maps.float(), target.to(gt_maps.device))
        loss = loss_cls + self.box_loss_weight * loss_box
        return {"loss": loss, "logits": logits.detach(), "loss_cls": float(loss_cls.detach()),
                "loss_box": float(loss_box.detach())}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, box_loss_weight={self.box_loss_weight}, box_target={self.box_target!r}"
