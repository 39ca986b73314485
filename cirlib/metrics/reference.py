"""The straightforward per-threshold implementation of the BoxAcc protocol.

A line-by-line port of wsolevaluation's ``compute_bboxes_from_scoremaps`` +
``calculate_multiple_iou`` + ``BoxEvaluator.accumulate`` (Choe et al., CVPR 2020): one OpenCV
``threshold`` + ``findContours`` per CAM threshold. It is the baseline the fast path
(:func:`cirlib.metrics.boxacc_curves`) is tested and benchmarked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cirlib.metrics._inputs import as_box_list, as_numpy, as_score_maps, as_thresholds, check_score_map
from cirlib.metrics.boxes import binary_map_boxes, box_iou_inclusive, quantize_scoremap

__all__ = ["reference_boxes", "reference_boxacc_curves"]


def reference_boxes(scoremap: np.ndarray, cam_thresholds: np.ndarray,
                    multi_contour: bool = False) -> list[np.ndarray]:
    """Boxes at every CAM threshold, one ``cv2.findContours`` call per threshold.

    Raises:
        ValueError: for a map with NaN or values outside [0, 1] (the reference's ``check_scoremap_validity``).
    """
    image = quantize_scoremap(check_score_map(as_numpy(scoremap), 0, name="scoremap"))
    peak = np.max(image)
    return [binary_map_boxes(image, int(t * peak), multi_contour) for t in cam_thresholds]


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
