"""Exercise checkers of notebook 01: the CAM baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from cirlib.exercises._checking import _as_float, _close, _direction, _require, _verdict, checker

__all__ = ['check_01_cam_from_features', 'check_01_iou', 'check_01_single_contour']

@checker
def check_01_iou(answer: Any) -> None:
    """Exercise 01.3: the inclusive IoU of the boxes ``[0, 0, 9, 9]`` and ``[5, 5, 14, 14]``."""
    value = _as_float(answer, "answer_3")
    expected = 25.0 / 175.0  # 5x5 overlap, two 10x10 boxes
    _verdict(
        _close(value, expected, 1e-4),
        f"IoU = 25 / 175 = {expected:.4f}.",
        "with inclusive corners a box [0, 0, 9, 9] is 10 x 10 pixels; the overlap is [5, 5, 9, 9]; "
        "IoU = overlap / (area_a + area_b - overlap).",
    )


@checker
def check_01_single_contour(answer: Any, metrics: dict, iou: str = "50", fast: bool = False) -> None:
    """Exercise 01.1 (predict): MaxBoxAcc with the largest contour's box only, against every contour's.

    Args:
        answer: "higher", "lower" or "the same" (any wording).
        metrics: the run's test metrics (``"maxboxacc"``: multi contour, ``"maxboxacc_single"``).
        iou: the IoU threshold asked about.
        fast: a FAST run: the barely trained model's scores are shown, not judged.
    """
    said = _direction(answer, "answer_1")
    multi, single = metrics["maxboxacc"][iou], metrics["maxboxacc_single"][iou]
    actual = 0 if abs(single - multi) < 0.05 else (1 if single > multi else -1)
    if fast:
        print(f"FAST run: single contour {single:.1f} %, multi contour {multi:.1f} %; a barely trained "
              "model's scores mean nothing, so the prediction is not judged.")
        return
    _verdict(
        said == actual,
        f"Single contour {single:.1f} %, multi contour {multi:.1f} % at IoU {iou}. "
        + ("The same: beside one large region, a thresholded CAM of these images has only small specks "
           "(the little dashed boxes of section 3's figure), so the largest contour's box is always the best "
           "match." if actual == 0 else
           "Multi contour can only help: it also tries the largest contour's box."),
        "multi contour tries every contour's box, the largest one's included, so it is never worse. Does "
        "a thresholded CAM of these images split into several regions (section 3's toy map did)?",
    )


@checker
def check_01_cam_from_features(answer: Any, features: Any, weight: Any, label: int) -> None:
    r"""Exercise 01.4: the CAM :math:`M_k = \sum_c w_{k,c} F_c` of class ``label`` for one image.

    Args:
        answer: ``(h, w)`` tensor or array.
        features: ``(C, h, w)`` features of the image.
        weight: ``(K, C)`` or ``(K, C, 1, 1)`` classifier weights.
        label: the class :math:`k`.
    """
    import torch

    _require(answer, "answer_4")
    f = torch.as_tensor(features).float()
    w = torch.as_tensor(weight).float().reshape(torch.as_tensor(weight).shape[0], -1)
    expected = torch.einsum("c,chw->hw", w[label], f)
    got = torch.as_tensor(np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer)).float()
    if tuple(got.shape) != tuple(expected.shape):
        raise AssertionError(
            f"Not quite. Hint: the map of one class for one image has shape {tuple(expected.shape)}, "
            f"yours is {tuple(got.shape)}; sum over the channel axis only."
        )
    _verdict(
        bool(torch.allclose(got, expected, atol=1e-4, rtol=1e-4)),
        "That is the class activation map: one weighted sum of feature channels per position.",
        "weight row `label` holds one weight per channel; multiply each channel map by its weight and "
        "sum over channels (no bias, no ReLU, no normalisation).",
    )
