"""The straightforward per-threshold implementation of the BoxAcc protocol.

A line-by-line port of wsolevaluation's ``compute_bboxes_from_scoremaps`` +
``calculate_multiple_iou`` + ``BoxEvaluator.accumulate`` (Choe et al., CVPR 2020): one OpenCV
``threshold`` + ``findContours`` per CAM threshold. It is the baseline the fast path
(:func:`cirlib.metrics.boxacc_curves`) is tested and benchmarked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from cirlib.metrics._inputs import as_box_list, as_score_maps, as_thresholds, check_score_map
from cirlib.metrics.boxes import box_iou_inclusive, quantize_scoremap

__all__ = ["reference_boxes", "reference_boxacc_curves"]


def reference_boxes(scoremap: np.ndarray, cam_thresholds: np.ndarray,
                    multi_contour: bool = False) -> list[np.ndarray]:
    """Boxes at every CAM threshold, one ``cv2.findContours`` call per threshold."""
    h, w = scoremap.shape
    image = np.expand_dims(quantize_scoremap(scoremap), 2)
    out = []
    for t in cam_thresholds:
        _, binary = cv2.threshold(image, int(t * np.max(image)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            out.append(np.asarray([[0, 0, 0, 0]]))
            continue
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        boxes = []
        for c in contours:
            x, y, bw, bh = cv2.boundingRect(c)
            boxes.append([x, y, min(x + bw, w - 1), min(y + bh, h - 1)])
        out.append(np.asarray(boxes))
    return out


def reference_boxacc_curves(scoremaps: Any, gt_boxes: Any, cam_thresholds: Sequence[float],
                            iou_thresholds: Sequence[float] = (30, 50, 70),
                            multi_contour: bool = False) -> np.ndarray:
    """BoxAcc curves (percent), ``(len(iou_thresholds), len(cam_thresholds))``, the slow way."""
    thr = as_thresholds(cam_thresholds, "cam_thresholds")
    maps = list(as_score_maps(scoremaps))
    gts = as_box_list(gt_boxes, len(maps))
    correct = np.zeros((len(iou_thresholds), len(thr)))
    for i, (m, gt) in enumerate(zip(maps, gts)):
        m = check_score_map(m, i)
        boxes = reference_boxes(m, thr, multi_contour)
        counts = [len(b) for b in boxes]
        iou = box_iou_inclusive(np.concatenate(boxes), gt).max(1)
        starts = np.cumsum([0] + counts[:-1])
        best = np.maximum.reduceat(iou, starts)
        for j, delta in enumerate(iou_thresholds):
            correct[j] += best >= (delta / 100)
    return correct * 100.0 / max(len(maps), 1)
