"""The reference implementation's own test cases (wsolevaluation ``evaluation_test.py``) against cirlib.

Each case keeps the reference's inputs and expected values; they are facts of the protocol. The
mask cases read the reference's test masks (``tests/data/wsolevaluation_masks``, MIT licence).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cirlib.data.transforms import reference_eval_boxes
from cirlib.metrics import (
    BoxEvaluator,
    PxAPEvaluator,
    best_ious,
    box_iou_inclusive,
    boxacc_curves,
    reference_boxes,
    resize_bbox,
    scoremap_to_boxes,
)
from cirlib.scoring import load_reference_mask

MASKS = Path(__file__).parent / "data" / "wsolevaluation_masks"


# ------------------------------------------------------------------- EvalUtilTest
def test_calculate_multiple_iou_shape_type_degenerate_zero():
    ious = box_iou_inclusive(np.zeros((3, 4), dtype=np.int64), np.zeros((5, 4), dtype=np.int64))
    assert isinstance(ious, np.ndarray) and ious.dtype == np.float64 and ious.shape == (3, 5)
    assert (ious == 1.0).all()


def test_calculate_multiple_iou_box_convention():
    with pytest.raises(ValueError, match=r"boxes_a\[0\].*x1 >= x0"):
        box_iou_inclusive(np.array([[1, 1, 0, 0]]), np.array([[1, 1, 2, 2]]))
    with pytest.raises(ValueError, match=r"boxes_b\[0\].*non-negative"):  # the reference rejects these too
        box_iou_inclusive(np.array([[1, 1, 2, 2]]), np.array([[-1, 1, 2, 2]]))


def test_calculate_multiple_iou_eye_boxes():
    boxes = np.array([[1, 1, 3, 3], [4, 4, 5, 5]])
    assert (box_iou_inclusive(boxes, boxes) == np.eye(2)).all()


def test_calculate_multiple_iou_realistic_values():
    iou = box_iou_inclusive(np.array([[1, 2, 5, 6]]), np.array([[3, 1, 4, 5]]))
    assert iou[0, 0] == pytest.approx(8.0 / 27, abs=1e-6)


def test_resize_bbox_case():
    assert resize_bbox((1, 2, 4, 3), (10, 20), (35, 10)).tolist() == [[3, 1, 14, 1]]


def test_resize_bbox_degenerate():
    assert resize_bbox((1, 2, 1, 2), (3, 3), (3, 3)).tolist() == [[1, 2, 1, 2]]


def test_resize_bbox_rejects_what_the_reference_rejects():
    with pytest.raises(ValueError, match="x1 >= x0"):
        resize_bbox((4, 2, 1, 3), (10, 20), (35, 10))
    with pytest.raises(ValueError, match="non-negative"):
        resize_bbox((-1, 2, 4, 3), (10, 20), (35, 10))


def test_dataset_eval_boxes_are_resize_bbox():
    # (H, W) order in the dataset helper: the reference's case, a 10 (W) x 20 (H) image resized to 35 x 10
    got = reference_eval_boxes(torch.tensor([[1.0, 2.0, 4.0, 3.0]]), (20, 10), (10, 35))
    assert got.tolist() == [[3, 1, 14, 1]]
    float_geometry = torch.tensor([[3.5, 1.0, 16.5, 1.0]])  # what the training transforms give
    assert reference_eval_boxes(torch.tensor([[1.0, 2.0, 4.0, 3.0]]), (20, 10), (10, 35), float_geometry).tolist() \
        == [[3, 1, 14, 1]]
    cropped = torch.tensor([[0.0, 0.0, 8.0, 1.0]])  # boxes moved by more than a resize can: refused
    with pytest.raises(ValueError, match="resize of the whole image"):
        reference_eval_boxes(torch.tensor([[1.0, 2.0, 4.0, 3.0]]), (20, 10), (10, 35), cropped)


THRESHOLDS = np.arange(0, 1, 0.2)


def _boxes_all_ways(scoremap: np.ndarray) -> list[list[int]]:
    """Single-contour boxes at each threshold from the per-threshold port and the public helper."""
    ref = [b[0].tolist() for b in reference_boxes(scoremap, THRESHOLDS)]
    helper = [scoremap_to_boxes(scoremap, t)[0].tolist() for t in THRESHOLDS]
    assert ref == helper
    return ref


def _fast_ious_match(scoremap: np.ndarray, boxes: list[list[int]]) -> None:
    """The fast sweep gives, at each threshold, the IoU of the reference's box with a probe GT box."""
    for gt in ([0, 0, 2, 2], [1, 1, 4, 3], [2, 3, 3, 3]):
        gt = np.array([gt])
        want = np.array([box_iou_inclusive(np.array([b]), gt)[0, 0] for b in boxes])
        np.testing.assert_array_equal(best_ious(scoremap, gt, THRESHOLDS, ("single",))["single"], want)


def test_compute_bboxes_from_scoremaps_degenerate():
    scoremap = np.zeros((3, 3))
    boxes = _boxes_all_ways(scoremap)
    assert boxes == [[0, 0, 0, 0]] * 5
    _fast_ious_match(scoremap, boxes)


def test_compute_bboxes_from_scoremaps_unimodal():
    scoremap = np.array([[0.0, 0.0, 0.0, 0.0, 0.0],
                         [0.0, 0.4, 0.4, 0.4, 0.6],
                         [0.0, 0.4, 1.0, 0.8, 0.6],
                         [0.0, 0.4, 0.4, 0.4, 0.6]])
    boxes = _boxes_all_ways(scoremap)
    assert boxes == [[1, 1, 4, 3], [1, 1, 4, 3], [2, 1, 4, 3], [2, 2, 4, 3], [2, 2, 3, 3]]
    _fast_ious_match(scoremap, boxes)


def test_compute_bboxes_from_scoremaps_multimodal():
    scoremap = np.array([[0.4, 0.0, 0.2, 0.2, 0.2],
                         [0.4, 0.4, 0.0, 0.4, 0.0],
                         [0.0, 0.0, 0.0, 0.4, 0.0],
                         [1.0, 0.6, 0.8, 0.2, 0.2]])
    boxes = _boxes_all_ways(scoremap)
    assert boxes == [[0, 0, 4, 3], [0, 0, 2, 2], [0, 3, 3, 3], [2, 3, 3, 3], [0, 3, 1, 3]]
    _fast_ious_match(scoremap, boxes)


def test_compute_bboxes_from_scoremaps_nan():
    scoremap = np.full((3, 3), np.nan)
    gt = np.array([[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="NaN"):
        reference_boxes(scoremap, THRESHOLDS)
    with pytest.raises(ValueError, match="NaN"):
        best_ious(scoremap, gt, THRESHOLDS)
    with pytest.raises(ValueError, match="NaN"):
        scoremap_to_boxes(scoremap, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        boxacc_curves(scoremap[None], [gt], THRESHOLDS)


def test_gt_boxes_with_negative_coordinates_are_rejected_everywhere():
    scoremap = np.zeros((4, 4))
    bad = np.array([[-1, 0, 2, 2]])
    with pytest.raises(ValueError, match="non-negative"):
        best_ious(scoremap, bad, THRESHOLDS)
    with pytest.raises(ValueError, match=r"gt_boxes\[0\].*non-negative"):
        boxacc_curves(scoremap[None], [bad], THRESHOLDS)
    with pytest.raises(ValueError, match=r"gt_boxes\[0\].*non-negative"):
        BoxEvaluator(cam_thresholds=THRESHOLDS).update(scoremap[None], [bad])


# --------------------------------------------------------------- MaskEvaluatorTest
# The masks of the OpenImages val metadata (localization.txt) for the reference test's image ids: its
# evaluator reads them from there.
IGNORE_PATHS = {
    "val/0bt_c3/1cd9ac0169ec7df0.jpg": "val/0bt_c3/1cd9ac0169ec7df0_ignore.png",
    "val/0bt_c3/3a29f0b33894d4a6.jpg": "val/0bt_c3/3a29f0b33894d4a6_ignore.png",
    "val/0bt_c3/3b3b9931325d65c9.jpg": "val/0bt_c3/3b3b9931325d65c9_ignore.png",
    "val/0by6g/490365f63135f3e0.jpg": "val/0by6g/490365f63135f3e0_ignore.png",
    "val/0by6g/b4d953e7105da1d8.jpg": "val/0by6g/b4d953e7105da1d8_ignore.png",
}
MASK_PATHS = {
    "val/0bt_c3/1cd9ac0169ec7df0.jpg": ["val/0bt_c3/1cd9ac0169ec7df0_m0bt_c3_6932e993.png"],
    "val/0bt_c3/3a29f0b33894d4a6.jpg": ["val/0bt_c3/3a29f0b33894d4a6_m0bt_c3_3581e3ae.png",
                                        "val/0bt_c3/3a29f0b33894d4a6_m0bt_c3_d2422806.png"],
    "val/0bt_c3/3b3b9931325d65c9.jpg": ["val/0bt_c3/3b3b9931325d65c9_m0bt_c3_d4e2e136.png"],
    "val/0by6g/490365f63135f3e0.jpg": ["val/0by6g/490365f63135f3e0_m0by6g_4f9ded4f.png"],
    "val/0by6g/b4d953e7105da1d8.jpg": ["val/0by6g/b4d953e7105da1d8_m0by6g_9f8621ff.png"],
}
TEST_IMAGE_IDS = ("val/0bt_c3/1cd9ac0169ec7df0.jpg", "val/0bt_c3/3a29f0b33894d4a6.jpg",
                  "val/0bt_c3/3b3b9931325d65c9.jpg")
ZERO_GT, ONE_GT = "val/0by6g/490365f63135f3e0.jpg", "val/0by6g/b4d953e7105da1d8.jpg"
MASK_THRESHOLDS = np.arange(0, 1, 0.01)


def _mask(image_id: str) -> np.ndarray:
    return load_reference_mask(MASKS, MASK_PATHS[image_id], IGNORE_PATHS[image_id])


def _pxap(scoremap: np.ndarray, mask: np.ndarray) -> float:
    ev = PxAPEvaluator(cam_thresholds=MASK_THRESHOLDS)
    ev.update(scoremap[None], (mask == 1)[None], ignore=(mask == 255)[None])
    return ev.compute()["pxap"]


@pytest.mark.parametrize("image_id", TEST_IMAGE_IDS)
@pytest.mark.parametrize("ignore_score", [0.0, 1.0])
def test_mask_evaluator_masks_perfect_scoremap(image_id, ignore_score):
    mask = _mask(image_id)
    scoremap = mask.astype(np.float64)
    scoremap[mask == 255] = ignore_score
    assert _pxap(scoremap, mask) == 100.0


@pytest.mark.parametrize("index, positives, negatives", [(0, 43031, 7145), (1, 833, 49342), (2, 347, 13909)])
@pytest.mark.parametrize("value", [0.0, 0.5, 1.0])
def test_mask_evaluator_masks_constant_scoremap(index, positives, negatives, value):
    mask = _mask(TEST_IMAGE_IDS[index])
    assert mask.shape == (224, 224)
    got = _pxap(np.full((224, 224), value), mask)
    assert got == pytest.approx(100.0 * positives / (positives + negatives), abs=0.1)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_mask_evaluator_masks_constant_scoremap_zero_gt(value):
    with pytest.raises(RuntimeError):
        _pxap(np.full((224, 224), value), _mask(ZERO_GT))


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_mask_evaluator_masks_constant_scoremap_one_gt(value):
    assert _pxap(np.full((224, 224), value), _mask(ONE_GT)) == pytest.approx(100.0, abs=0.1)


def test_mask_evaluator_masks_nan_scoremap():
    with pytest.raises(ValueError, match="NaN"):
        _pxap(np.full((224, 224), np.nan), _mask(ONE_GT))
