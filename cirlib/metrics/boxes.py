"""Box helpers of the wsolevaluation protocol: quantisation, thresholding, IoU."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from cirlib.metrics._inputs import as_numpy, check_score_map

__all__ = ["binary_map_boxes", "check_box_convention", "quantize_scoremap", "box_iou_inclusive", "resize_bbox",
           "scoremap_to_boxes"]


def check_box_convention(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    """Reject boxes the protocol rejects (wsolevaluation ``check_box_convention``, ``x0y0x1y1``).

    Boxes must be ``(4,)`` or ``(k, 4)``, with non-negative coordinates, ``x1 >= x0`` and ``y1 >= y0``.

    Returns:
        The boxes as a ``(k, 4)`` array.

    Raises:
        ValueError: naming ``name``, the offending box and the rule.
    """
    a = np.asarray(boxes)
    a = a[None] if a.ndim == 1 else a
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{name} has shape {tuple(np.shape(boxes))}; boxes must be (4,) or (k, 4): x0, y0, x1, y1.")
    bad = np.flatnonzero(~np.isfinite(a).all(axis=1) | (a < 0).any(axis=1) | (a[:, 2] < a[:, 0]) | (a[:, 3] < a[:, 1]))
    if len(bad):
        raise ValueError(
            f"{name}[{int(bad[0])}] = {a[bad[0]].tolist()} breaks the x0, y0, x1, y1 convention of the protocol: "
            "coordinates must be finite and non-negative, with x1 >= x0 and y1 >= y0."
        )
    return a


def resize_bbox(boxes: Any, image_size: tuple[float, float], resize_size: tuple[float, float]) -> np.ndarray:
    r"""Boxes of an image of ``image_size = (W, H)`` in the frame of the image resized to ``resize_size = (W', H')``.

    The reference protocol's ``resize_bbox``: each of the four inclusive corners is scaled and
    truncated to an integer,

    .. math:: x' = \big\lfloor x \cdot W' / W \big\rfloor, \qquad y' = \big\lfloor y \cdot H' / H \big\rfloor

    (computed in float64 as ``x * W' / W``). The far corner is scaled like the near one, so a box
    loses up to one output pixel on its far side compared with scaling pixel extents. Example (the
    reference's test case): ``(1, 2, 4, 3)`` in a 10 x 20 image resized to 35 x 10 gives ``(3, 1, 14, 1)``.

    Args:
        boxes: ``(4,)`` or ``(k, 4)`` boxes ``x0, y0, x1, y1``, non-negative, ``x1 >= x0``, ``y1 >= y0``.
        image_size: ``(width, height)`` of the original image (wsolevaluation's ``image_sizes.txt``).
        resize_size: ``(width, height)`` of the resized image, e.g. ``(224, 224)``.

    Returns:
        ``(k, 4)`` int64 boxes.
    """
    a = check_box_convention(as_numpy(boxes), "boxes").astype(np.float64)
    width, height = (float(v) for v in image_size)
    new_width, new_height = (float(v) for v in resize_size)
    if min(width, height, new_width, new_height) <= 0:
        raise ValueError(f"resize_bbox: sizes must be positive, got image_size={image_size}, resize_size={resize_size}.")
    scale = np.array([new_width, new_height, new_width, new_height])
    size = np.array([width, height, width, height])
    return np.trunc(a * scale / size).astype(np.int64)


def quantize_scoremap(scoremap: np.ndarray) -> np.ndarray:
    r"""Quantise a [0, 1] map to uint8 exactly as the reference: ``(float64(map) * 255).astype(uint8)``.

    That is :math:`q = \lfloor 255\, s \rfloor` (truncation), computed in float64.
    """
    return (np.asarray(scoremap).astype(np.float64) * 255).astype(np.uint8)


def box_iou_inclusive(boxes_a: Any, boxes_b: Any) -> np.ndarray:
    r"""Pairwise IoU of ``x0, y0, x1, y1`` boxes with inclusive corners (pixel counts, +1).

    .. math::
        \mathrm{IoU}(a, b) = \frac{|a \cap b|}{|a| + |b| - |a \cap b|},\quad
        |a| = (x_1 - x_0 + 1)(y_1 - y_0 + 1),

    and 0 where the denominator is not positive (wsolevaluation's ``calculate_multiple_iou``). Like the
    reference, boxes with a negative coordinate or ``x1 < x0`` / ``y1 < y0`` are rejected.

    Args:
        boxes_a: ``(n, 4)`` boxes.
        boxes_b: ``(m, 4)`` boxes.

    Returns:
        ``(n, m)`` float64 IoU matrix.

    Raises:
        ValueError: for a box that breaks the convention (:func:`check_box_convention`).
    """
    a = check_box_convention(as_numpy(boxes_a).reshape(-1, 4), "boxes_a")[:, None, :]
    b = check_box_convention(as_numpy(boxes_b).reshape(-1, 4), "boxes_b")[None, :, :]
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        a, b = a.astype(np.int64), b.astype(np.int64)
    else:
        a, b = a.astype(np.float64), b.astype(np.float64)
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    den = area_a + area_b - inter
    deg = den <= 0
    iou = inter / np.where(deg, 1, den)
    iou[deg] = 0.0
    return iou


def scoremap_to_boxes(scoremap: Any, threshold: float, multi_contour: bool = False) -> np.ndarray:
    """The boxes the protocol draws on one map at one CAM threshold.

    The map is quantised (:func:`quantize_scoremap`), binarised at ``int(threshold * max(q))``
    (``q > cutoff``), contours are found with OpenCV (``RETR_TREE``, ``CHAIN_APPROX_SIMPLE``); the
    largest contour by ``cv2.contourArea`` (or every contour when ``multi_contour``) gives
    ``boundingRect`` boxes ``x, y, min(x + w, W - 1), min(y + h, H - 1)``. No contour gives ``[0, 0, 0, 0]``.

    Args:
        scoremap: ``(H, W)`` map in [0, 1] (NumPy or torch).
        threshold: CAM threshold in [0, 1).
        multi_contour: every contour instead of the largest one.

    Returns:
        ``(k, 4)`` int64 boxes ``x0, y0, x1, y1``.
    """
    m = check_score_map(as_numpy(scoremap), 0, name="scoremap")
    q = quantize_scoremap(m)
    return binary_map_boxes(q, int(np.float64(threshold) * np.max(q)), multi_contour)


def binary_map_boxes(quantized: np.ndarray, cutoff: int, multi_contour: bool = False) -> np.ndarray:
    """Boxes of the contours of ``quantized > cutoff`` (the OpenCV step of the protocol).

    Args:
        quantized: ``(H, W)`` uint8 map (:func:`quantize_scoremap`).
        cutoff: the integer cut-off ``int(threshold * max(quantized))``.
        multi_contour: every contour instead of the largest one by ``cv2.contourArea``.

    Returns:
        ``(k, 4)`` int64 boxes ``x0, y0, x1, y1``; ``[[0, 0, 0, 0]]`` when there is no contour.
    """
    h, w = quantized.shape[:2]
    _, binary = cv2.threshold(quantized, cutoff, 255, cv2.THRESH_BINARY)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    if len(contours) == 0:
        return np.zeros((1, 4), dtype=np.int64)
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    out = []
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        out.append([x, y, min(x + bw, w - 1), min(y + bh, h - 1)])
    return np.asarray(out, dtype=np.int64)
