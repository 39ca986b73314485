"""Image + box transforms on ``torchvision.transforms.v2`` with ``tv_tensors``.

Box conventions (read this once, it matters for every IoU):

* **Inclusive corners** (the dataset item contract and wsolevaluation): ``[x0, y0, x1, y1]`` names the
  first and the last pixel column/row the box covers, so its width is ``x1 - x0 + 1`` and IoU adds +1.
* **torchvision XYXY** (``tv_tensors.BoundingBoxes(format="XYXY")``): continuous coordinates where pixel
  ``i`` spans ``[i, i + 1)``, so the same box is ``[x0, y0, x1 + 1, y1 + 1]``.

:func:`inclusive_to_xyxy` adds 1 to the far corner before a transform and :func:`xyxy_to_inclusive`
subtracts it afterwards. This keeps flips exact: a horizontal flip of an image of width :math:`W` maps
the inclusive box :math:`[x_0, x_1]` to :math:`[W-1-x_1,\\ W-1-x_0]`, as it maps pixels. A resize by a
factor :math:`s` gives :math:`x_0' = s\\,x_0` and :math:`x_1' = s\\,(x_1 + 1) - 1` (floats, not rounded):
the *float geometry*, which training uses (random crops and flips move boxes with the pixels).

**Evaluation boxes follow the reference protocol instead** (:func:`reference_eval_boxes`, used by the
real datasets on their ``val``/``test`` splits): wsolevaluation's ``resize_bbox`` scales all four
inclusive corners and truncates, :math:`x' = \\lfloor s\\,x \\rfloor` (far corner included). The two
geometries differ by up to :math:`s` pixels on the far corner and by the truncation (below one pixel)
on the near one: on CUB's test boxes resized to 224, no box comes out identical, and MaxBoxAcc moves
by tenths of a point, so only the reference geometry gives numbers comparable with the literature.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: A transform takes ``(image, boxes, mask)`` -- a uint8 ``tv_tensors.Image`` (3, H, W), XYXY
#: ``tv_tensors.BoundingBoxes`` and a ``tv_tensors.Mask`` or ``None`` -- and returns the same triple with
#: the image as a normalised float tensor.
WSOLTransform = Callable[..., tuple]


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        pair = (size, size)
    else:
        pair = tuple(int(s) for s in size)
        if len(pair) != 2:
            raise ValueError(f"{name}={size!r}: give an int or a (height, width) pair.")
    if min(pair) < 1:
        raise ValueError(f"{name}={size!r}: sizes must be positive.")
    return pair  # type: ignore[return-value]


def inclusive_to_xyxy(boxes: torch.Tensor, canvas_size: tuple[int, int]) -> tv_tensors.BoundingBoxes:
    """Wrap inclusive-corner boxes ``(k, 4)`` as torchvision XYXY boxes (far corner + 1).

    Args:
        boxes: float tensor ``(k, 4)``, ``x0, y0, x1, y1`` inclusive.
        canvas_size: ``(H, W)`` of the image the boxes live on.
    """
    xyxy = boxes.to(torch.float32).reshape(-1, 4).clone()
    xyxy[:, 2:] += 1.0
    return tv_tensors.BoundingBoxes(xyxy, format="XYXY", canvas_size=tuple(canvas_size))


def xyxy_to_inclusive(boxes: torch.Tensor, canvas_size: tuple[int, int]) -> torch.Tensor:
    """Turn XYXY boxes back into inclusive corners, clipped to the canvas; empty boxes are dropped.

    Args:
        boxes: ``(k, 4)`` XYXY boxes (continuous coordinates).
        canvas_size: ``(H, W)`` of the transformed image.

    Returns:
        A plain float tensor ``(k', 4)`` with ``0 <= x0 <= x1 <= W - 1`` (likewise for y); boxes that a
        crop left with no area are removed (``k' <= k``, possibly 0).
    """
    h, w = canvas_size
    b = boxes.as_subclass(torch.Tensor).to(torch.float32).reshape(-1, 4).clone()
    b[:, 0::2] = b[:, 0::2].clamp(0, w)
    b[:, 1::2] = b[:, 1::2].clamp(0, h)
    keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    b = b[keep]
    b[:, 2:] -= 1.0
    b[:, 2] = torch.maximum(b[:, 2], b[:, 0])
    b[:, 3] = torch.maximum(b[:, 3], b[:, 1])
    return b


def reference_eval_boxes(boxes: torch.Tensor, image_size: tuple[int, int], resized_size: tuple[int, int],
                         transformed: torch.Tensor | None = None) -> torch.Tensor:
    """The evaluation boxes of the reference protocol: ``resize_bbox`` of the original boxes.

    :func:`cirlib.metrics.resize_bbox` (integer truncation of all four corners) from the original
    image of ``image_size = (H, W)`` to the evaluated image of ``resized_size = (H', W')``.

    Args:
        boxes: ``(k, 4)`` inclusive boxes in the original image, as the metadata gives them.
        image_size: ``(H, W)`` of the original image.
        resized_size: ``(H', W')`` of the transformed image.
        transformed: the same boxes moved by the evaluation transform (float geometry), or ``None``.
            When given, they must match the resize within the scale factor plus one pixel: the
            reference defines evaluation boxes for a resize of the whole image only.

    Returns:
        ``(k, 4)`` float32 tensor of integer-valued boxes.

    Raises:
        ValueError: when ``transformed`` shows that the transform did more than resize (a crop or flip).
    """
    from cirlib.metrics.boxes import resize_bbox

    (h, w), (new_h, new_w) = image_size, resized_size
    out = torch.from_numpy(resize_bbox(boxes.reshape(-1, 4).numpy(), (w, h), (new_w, new_h)).astype("float32"))
    if transformed is not None:
        slack = max(new_w / w, new_h / h, 1.0) + 1.0
        if transformed.shape != out.shape or bool(((transformed - out).abs() > slack).any()):
            raise ValueError(
                "The evaluation transform moved the boxes differently from a resize of the whole image "
                f"({boxes.reshape(-1, 4).tolist()} in a {w}x{h} image became {transformed.tolist()} in "
                f"{new_w}x{new_h}); the reference protocol evaluates resized images only. Use "
                "cirlib.data.build_transforms(train=False) (a resize) as the val/test transform."
            )
    return out


def to_normalized_float(mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """uint8 -> float in [0, 1] -> ``(x - mean) / std``; boxes and masks pass through unchanged."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))])


def build_transforms(
    train: bool,
    resize: int | Sequence[int] = 256,
    crop: int | Sequence[int] = 224,
    test_size: int | Sequence[int] = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """The reference benchmark's (wsolevaluation) transforms, with boxes and masks following the image.

    * train: resize to ``resize`` x ``resize`` (a square, as wsolevaluation does), random crop ``crop``,
      random horizontal flip, then to float and normalise.
    * test: resize to ``test_size`` x ``test_size``, then to float and normalise.

    The returned callable takes ``(image, boxes, mask)`` (see :data:`WSOLTransform`); use it as the
    ``transform=`` of any cirlib dataset. Randomness comes from ``torch``'s global generator, which
    DataLoader workers seed per worker.

    Args:
        train: training (random) or test (deterministic) pipeline.
        resize: side (or ``(H, W)``) of the training resize.
        crop: side (or ``(H, W)``) of the training random crop; must fit inside ``resize``.
        test_size: side (or ``(H, W)``) of the test resize.
        mean: per-channel mean for ``Normalize``.
        std: per-channel std for ``Normalize``.
    """
    resize_hw = _pair(resize, "resize")
    crop_hw = _pair(crop, "crop")
    test_hw = _pair(test_size, "test_size")
    if train and (crop_hw[0] > resize_hw[0] or crop_hw[1] > resize_hw[1]):
        raise ValueError(f"build_transforms: crop={crop!r} is larger than resize={resize!r}; the crop must fit.")
    tail = [to_normalized_float(mean, std)]
    if train:
        head = [v2.Resize(resize_hw, antialias=True), v2.RandomCrop(crop_hw), v2.RandomHorizontalFlip(0.5)]
    else:
        head = [v2.Resize(test_hw, antialias=True)]
    return v2.Compose(head + tail)


def apply_transform(
    transform: WSOLTransform,
    image: torch.Tensor,
    boxes: torch.Tensor,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run a WSOL transform on a uint8 image with inclusive boxes and an optional bool mask.

    Args:
        transform: a callable on ``(tv_tensors.Image, tv_tensors.BoundingBoxes, tv_tensors.Mask | None)``.
        image: uint8 tensor ``(3, H, W)``.
        boxes: inclusive boxes ``(k, 4)``.
        mask: bool tensor ``(H, W)`` or ``None``.

    Returns:
        ``(image, boxes, mask)``: the float image ``(3, H', W')``, inclusive boxes on the new canvas and
        the bool mask ``(H', W')`` (or ``None``).
    """
    h, w = image.shape[-2:]
    tv_image = tv_tensors.Image(image)
    tv_boxes = inclusive_to_xyxy(boxes, (h, w))
    tv_mask = None if mask is None else tv_tensors.Mask(mask.to(torch.uint8))
    out = transform(tv_image, tv_boxes, tv_mask)
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        raise TypeError(
            "A cirlib transform must take and return the triple (image, boxes, mask); got "
            f"{type(out).__name__}. Build one with cirlib.data.build_transforms(...)."
        )
    img, bxs, msk = out
    img = img.as_subclass(torch.Tensor)
    if not torch.is_floating_point(img):
        raise TypeError(
            f"The transform returned a {img.dtype} image; the item contract needs a normalised float image. "
            "End the pipeline with cirlib.data.transforms.to_normalized_float(mean, std)."
        )
    new_hw = tuple(img.shape[-2:])
    out_boxes = xyxy_to_inclusive(bxs, new_hw)
    out_mask = None if msk is None else msk.as_subclass(torch.Tensor).to(torch.bool).reshape(new_hw)
    return img.contiguous(), out_boxes, out_mask
