"""Exercise checkers of notebook 01: the CAM baseline."""

from __future__ import annotations

from typing import Any

import numpy as np

from cirlib.exercises._checking import _require, _as_float, _verdict, _close, checker

__all__ = ['check_01_cam_from_features', 'check_01_iou', 'check_01_maxboxacc_v2']


@checker
def check_01_iou(answer: Any) -> None:
    """Exercise 01.1: the inclusive IoU of the boxes ``[0, 0, 9, 9]`` and ``[5, 5, 14, 14]``."""
    value = _as_float(answer, "answer_1")
    expected = 25.0 / 175.0  # 5x5 overlap, two 10x10 boxes
    _verdict(
        _close(value, expected, 1e-4),
        f"IoU = 25 / 175 = {expected:.4f}.",
        "with inclusive corners a box [0, 0, 9, 9] is 10 x 10 pixels; the overlap is [5, 5, 9, 9]; "
        "IoU = overlap / (area_a + area_b - overlap).",
    )


@checker
def check_01_maxboxacc_v2(answer: Any, metrics: dict) -> None:
    """Exercise 01.2: MaxBoxAccV2 from the per-IoU MaxBoxAcc of this run.

    Args:
        answer: the student's value in percent.
        metrics: the run's test metrics (``metrics["maxboxacc"]`` maps ``"30"/"50"/"70"`` to percent).
    """
    value = _as_float(answer, "answer_2")
    expected = float(np.mean([metrics["maxboxacc"][k] for k in ("30", "50", "70")]))
    _verdict(
        _close(value, expected, 1e-6 + 1e-9 * abs(expected)),
        f"MaxBoxAccV2 = {expected:.2f} %, the mean over IoU 30, 50 and 70.",
        "MaxBoxAccV2 averages MaxBoxAcc over the IoU thresholds 30, 50 and 70 (each in percent, multi-contour).",
    )


@checker
def check_01_cam_from_features(answer: Any, features: Any, weight: Any, label: int) -> None:
    r"""Exercise 01.3: the CAM :math:`M_k = \sum_c w_{k,c} F_c` of class ``label`` for one image.

    Args:
        answer: ``(h, w)`` tensor or array.
        features: ``(C, h, w)`` features of the image.
        weight: ``(K, C)`` or ``(K, C, 1, 1)`` classifier weights.
        label: the class :math:`k`.
    """
    import torch

    _require(answer, "answer_3")
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
