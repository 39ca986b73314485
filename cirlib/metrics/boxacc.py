r"""Fast, exact BoxAcc curves.

The reference protocol calls ``cv2.findContours`` once per CAM threshold (1000 times per map at
interval 0.001). This module gives the same numbers with far less work (see ``docs/metrics.md``):

1. **Shared cut-offs.** After uint8 quantisation the binary image at threshold ``t`` is
   :math:`F_L = \{q \ge L\}` with :math:`L = \lfloor t \cdot \max q \rfloor + 1`. Only levels
   ``L`` whose value occurs in ``q`` change :math:`F_L`, so every threshold is mapped to the
   smallest present value :math:`\ge L` and each distinct binary image is solved once.
2. **Union-find level sweeps** (:mod:`cirlib.metrics._sweep`, compiled with numba): the boxes of
   every contour (outer: 8-connected components; holes: 4-connected background components off the
   border, multi mode only) of every level, and the largest contour by ``contourArea`` from exact
   cell-count areas and per-component Euler numbers (which say whether a component encloses holes).
3. **Everything else** (single mode, levels where a holed component ties for the largest exact
   area, so OpenCV's contour order decides) calls ``cv2.findContours`` on
   the crop of :math:`F_L`'s bounding box (translation keeps contours, their order and their
   areas) and ranks the contours by exact shoelace areas, as ``cv2.contourArea``.

The independent oracle of the tests is :mod:`cirlib.metrics.reference` (the protocol as written:
one ``cv2.findContours`` per threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from cirlib.metrics._inputs import as_box_list, as_numpy, as_score_maps, as_thresholds, check_score_map
from cirlib.metrics.boxes import box_iou_inclusive, quantize_scoremap

from cirlib.metrics._sweep import level_sweep, quantize_checked

__all__ = ["boxacc_curves", "best_ious", "MODES"]

MODES = ("single", "multi")


def _level_bboxes(q: np.ndarray) -> np.ndarray:
    """Bounding box (xmin, ymin, xmax, ymax) of ``q >= L`` for L = 0..255 (garbage when empty)."""
    colmax = q.max(axis=0).astype(np.int64)
    rowmax = q.max(axis=1).astype(np.int64)
    levels = np.arange(256)
    out = np.empty((256, 4), dtype=np.int64)
    for k, (m, flip) in enumerate(((colmax, False), (rowmax, False), (colmax, True), (rowmax, True))):
        seq = m[::-1] if flip else m
        first = np.searchsorted(np.maximum.accumulate(seq), levels, side="left")
        out[:, k] = (len(m) - 1 - first) if flip else first
    return out


def _contour_boxes(q: np.ndarray, level: int, bbox: np.ndarray, want_single: bool,
                   want_multi: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """findContours on the crop of ``q >= level``; returns (single box, multi boxes) in full-frame
    coordinates before clipping (x0, y0, x + w, y + h)."""
    x0, y0, x1, y1 = (int(v) for v in bbox)
    crop = q[y0:y1 + 1, x0:x1 + 1]
    binary = (crop >= level).view(np.uint8)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    k = len(contours)
    if k == 1:
        pts = contours[0].reshape(-1, 2)
        mn, mx = pts.min(0), pts.max(0)
        box = np.array([[mn[0] + x0, mn[1] + y0, mx[0] + 1 + x0, mx[1] + 1 + y0]], dtype=np.int64)
        return box, box
    lengths = np.fromiter((len(c) for c in contours), dtype=np.int64, count=k)
    pts = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    mn_x = np.minimum.reduceat(pts[:, 0], starts)
    mn_y = np.minimum.reduceat(pts[:, 1], starts)
    mx_x = np.maximum.reduceat(pts[:, 0], starts)
    mx_y = np.maximum.reduceat(pts[:, 1], starts)
    boxes = np.stack([mn_x + x0, mn_y + y0, mx_x + 1 + x0, mx_y + 1 + y0], axis=1)
    single = None
    if want_single:
        # shoelace areas per contour (exact integers, the same ranking as cv2.contourArea)
        nxt = np.arange(1, len(pts) + 1)
        ends = starts + lengths
        nxt[ends - 1] = starts
        cross = pts[:, 0] * pts[nxt, 1] - pts[nxt, 0] * pts[:, 1]
        area2 = np.abs(np.add.reduceat(cross, starts))
        single = boxes[int(np.argmax(area2))][None]
    return single, (boxes if want_multi else None)


def best_ious(scoremap: Any, gt_boxes: Any, cam_thresholds: Sequence[float] | np.ndarray,
              modes: Sequence[str] = MODES) -> dict[str, np.ndarray]:
    """Best IoU with the GT boxes of the protocol's box(es) at each CAM threshold, per mode.

    Uses the compiled union-find level sweep (:func:`cirlib.metrics._sweep.level_sweep`), with a
    cropped ``cv2.findContours`` for the largest contour where the sweep's area bounds leave it open.

    Args:
        scoremap: ``(H, W)`` float map in [0, 1] (NumPy or torch).
        gt_boxes: ``(k, 4)`` GT boxes, inclusive corners.
        cam_thresholds: 1-D thresholds.
        modes: subset of ``("single", "multi")``.

    Returns:
        ``{mode: (len(cam_thresholds),) float64}``; "single" is the IoU of the largest contour's box,
        "multi" the best IoU over every contour's box. Identical to the reference implementation.

    Raises:
        ValueError: for a map with NaN or values outside [0, 1], or a box that breaks the convention,
            as the reference does.
    """
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"best_ious: modes must be among {MODES}, got {sorted(unknown)}.")
    return _quantized_best_ious(_quantized(as_numpy(scoremap), 0, "scoremap"), as_box_list([gt_boxes])[0],
                                as_thresholds(cam_thresholds, "cam_thresholds"), modes)


def _quantized(scoremap: np.ndarray, index: int, name: str) -> np.ndarray:
    """``quantize_scoremap(check_score_map(scoremap))``; float maps take one compiled pass that checks
    and quantises (the result is then a reused buffer, valid until the next call)."""
    if scoremap.ndim == 2 and scoremap.size and scoremap.dtype in (np.float32, np.float64):
        q = quantize_checked(scoremap)
        if q is not None:
            return q
    return np.ascontiguousarray(quantize_scoremap(check_score_map(scoremap, index, name=name)))


def _best_ious(scoremap: np.ndarray, gt_boxes: np.ndarray, cam_thresholds: np.ndarray,
               modes: Sequence[str]) -> dict[str, np.ndarray]:
    """:func:`best_ious` on a map (checked here) with boxes and thresholds already checked."""
    return _quantized_best_ious(_quantized(scoremap, 0, "scoremap"), gt_boxes, cam_thresholds, modes)


def _quantized_best_ious(q: np.ndarray, gt_boxes: np.ndarray, cam_thresholds: np.ndarray,
                         modes: Sequence[str]) -> dict[str, np.ndarray]:
    """:func:`best_ious` on the uint8 map ``q`` (C-contiguous)."""
    h, w = q.shape
    gt = np.ascontiguousarray(np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4))
    thr = np.ascontiguousarray(cam_thresholds, dtype=np.float64)
    levels_per_thr, multi, single, single_ok = level_sweep(q, gt, thr, "single" in modes, "multi" in modes)
    out: dict[str, np.ndarray] = {}
    if "single" in modes:
        todo = np.flatnonzero(~single_ok)
        if len(todo):
            bboxes = _level_bboxes(q)
            for level in todo:
                box = _contour_boxes(q, int(level), bboxes[level], True, False)[0].copy()
                box[:, 2] = np.minimum(box[:, 2], w - 1)
                box[:, 3] = np.minimum(box[:, 3], h - 1)
                single[level] = box_iou_inclusive(box, gt).max()
        out["single"] = single[levels_per_thr]
    if "multi" in modes:
        out["multi"] = multi[levels_per_thr]
    return out


def boxacc_curves(scoremaps: Any, gt_boxes: Any, cam_thresholds: Sequence[float] | np.ndarray,
                  iou_thresholds: Sequence[float] = (30, 50, 70),
                  multi_contour: bool = False) -> np.ndarray:
    r"""BoxAcc (percent) at every CAM threshold, for each IoU threshold.

    .. math::
        \mathrm{BoxAcc}(t, \delta) = \frac{100}{N} \sum_{n=1}^{N}
        \mathbb{1}\big[\max_{b \in B_n(t)} \max_{g \in G_n} \mathrm{IoU}(b, g) \ge \delta / 100\big]

    with :math:`B_n(t)` the protocol's boxes of map :math:`n` at threshold :math:`t` (largest
    contour, or every contour when ``multi_contour``). Exactly equal to
    :func:`cirlib.metrics.reference.reference_boxacc_curves`, much faster.

    Args:
        scoremaps: float ``(N, H, W)`` array or tensor in [0, 1], or an iterable of ``(H, W)`` maps.
        gt_boxes: list of N ``(k_i, 4)`` arrays, x0 y0 x1 y1 inclusive.
        cam_thresholds: 1-D CAM thresholds, e.g. ``numpy.arange(0, 1, 0.001)``.
        iou_thresholds: IoU thresholds in percent.
        multi_contour: every contour's box (MaxBoxAccV2) instead of the largest contour's.

    Returns:
        ``(len(iou_thresholds), len(cam_thresholds))`` float64 array in percent.

    Raises:
        ValueError: on maps outside [0, 1] or with NaN (naming the map index), or malformed boxes.
    """
    thr = as_thresholds(cam_thresholds, "cam_thresholds")
    ious = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    mode = "multi" if multi_contour else "single"
    correct = np.zeros((len(ious), len(thr)))
    gts = as_box_list(gt_boxes)
    n = 0
    for m in as_score_maps(scoremaps):
        if n >= len(gts):
            raise ValueError(f"more score maps than gt_boxes entries ({len(gts)}); pass one (k, 4) array per map.")
        best = _quantized_best_ious(_quantized(m, n, "scoremaps"), gts[n], thr, (mode,))[mode]
        for j, delta in enumerate(ious):
            correct[j] += best >= (delta / 100)
        n += 1
    if n != len(gts):
        raise ValueError(f"got {n} score maps but {len(gts)} entries in gt_boxes; pass one per map.")
    return correct * 100.0 / max(n, 1)
