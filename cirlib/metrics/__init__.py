"""Localization metrics of the wsolevaluation protocol (Choe et al., CVPR 2020), exact and fast.

See ``docs/metrics.md`` for the definitions and why the fast path is exact.
"""

from cirlib.metrics.boxacc import best_ious, boxacc_curves
from cirlib.metrics.boxes import box_iou_inclusive, quantize_scoremap, resize_bbox, scoremap_to_boxes
from cirlib.metrics.evaluators import BoxEvaluator, PxAPEvaluator
from cirlib.metrics.normalize import normalize_cam
from cirlib.metrics.reference import reference_boxacc_curves, reference_boxes

__all__ = [
    "BoxEvaluator",
    "PxAPEvaluator",
    "best_ious",
    "box_iou_inclusive",
    "boxacc_curves",
    "normalize_cam",
    "quantize_scoremap",
    "reference_boxacc_curves",
    "reference_boxes",
    "resize_bbox",
    "scoremap_to_boxes",
]
