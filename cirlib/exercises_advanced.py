r"""Checkers for the exercises of notebooks 04-07 (CAAM, SSAM, fusion loss, results).

Same pattern as :mod:`cirlib.exercises` (notebooks 00-03): each exercise is a markdown question, a
``solution``-tagged cell assigning ``answer_N`` (student copies set it to ``None``) and a checker cell
calling one ``check_<notebook>_<what>`` function below. A checker computes the expected value from
first principles or from the library, never from the answer, prints a friendly line when the answer
is right and raises ``AssertionError`` with a hint (not the answer) when it is wrong.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = [
    "check_04_caam_entries",
    "check_04_danet_energy",
    "check_04_uniform_attention",
    "check_05_attention_bytes",
    "check_05_gate_factor",
    "check_05_received_mean",
    "check_06_full_map_kinds",
    "check_06_forward_passes",
    "check_06_stitched_target",
    "check_07_best_method",
    "check_07_maxboxacc_from_curve",
    "check_07_sample_std",
]


def _require(answer: Any, name: str) -> None:
    if answer is None:
        raise AssertionError(
            f"{name} is still None: write your answer in the solution cell above (replace the "
            f"'{name} = None' line), run it, then run this checker again."
        )


def _as_float(answer: Any, name: str) -> float:
    _require(answer, name)
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise AssertionError(f"{name} must be a number, got {type(answer).__name__} {answer!r}.") from None
    if math.isnan(value):
        raise AssertionError(f"{name} is NaN; check for a division by zero.")
    return value


def _as_tensor(answer: Any, name: str, shape: tuple[int, ...]):
    import torch

    _require(answer, name)
    got = torch.as_tensor(np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer)).float()
    if tuple(got.shape) != tuple(shape):
        raise AssertionError(f"Not quite. Hint: the result has shape {tuple(shape)}, yours is {tuple(got.shape)}.")
    return got


def _verdict(ok: bool, praise: str, hint: str) -> bool:
    if not ok:
        raise AssertionError("Not quite. Hint: " + hint)
    print("Correct! " + praise)
    return True


# ----------------------------------------------------------------------------- 04: CAAM


def check_04_caam_entries(answer: Any, channels: int) -> bool:
    """Exercise 04.1: the number of entries of one image's CAAM matrix ``Q_x`` (``channels`` x ``channels``)."""
    _require(answer, "answer_1")
    expected = int(channels) ** 2
    return _verdict(
        answer == expected,
        f"Q_x is {channels} x {channels} = {expected} numbers per image and direction, whatever the image "
        "size: CAAM's cost grows with C^2 N, not N^2.",
        "Q_x relates every channel of one branch to every channel of the other: C rows, C columns.",
    )


def check_04_uniform_attention(answer: Any, f1: Any, f2: Any, gamma: float = 0.3) -> bool:
    r"""Exercise 04.2: :math:`F^c_x` when every row of :math:`Q_x` is :math:`1/C`."""
    import torch

    f1 = torch.as_tensor(f1).float()
    f2 = torch.as_tensor(f2).float()
    got = _as_tensor(answer, "answer_2", tuple(f1.shape))
    c = f1.shape[1]
    q = torch.full((f1.shape[0], c, c), 1.0 / c)
    expected = f1 + gamma * torch.bmm(q, f2.reshape(f1.shape[0], c, -1)).reshape(f1.shape)
    return _verdict(
        bool(torch.allclose(got, expected, atol=1e-5)),
        "With uniform rows every channel receives the same thing, the channel-average of the other branch: "
        "CAAM then carries no channel-specific information.",
        "Q_x X2 with Q_x = 1/C everywhere averages X2 over its channel axis (dim=1) at every position; "
        "add gamma times that to f1.",
    )


def check_04_danet_energy(answer: Any) -> bool:
    """Exercise 04.3: the ``caam_energy`` value that favours the least correlated channels."""
    from cirlib.models.attention import CAAM_ENERGIES

    _require(answer, "answer_3")
    return _verdict(
        str(answer).strip().lower() == "danet",
        "softmax(max(E) - E) is largest where E is smallest: DANet's channel attention favours the least "
        "correlated channels, the opposite of softmax(E).",
        f"the valid values are {CAAM_ENERGIES}; which one turns the largest energy into the smallest weight?",
    )


# ----------------------------------------------------------------------------- 05: SSAM


def check_05_attention_bytes(answer: Any, height: int, width: int, bytes_per_value: int = 4) -> bool:
    """Exercise 05.1: bytes of one image's float32 SSAM attention on an ``height x width`` feature map."""
    value = _as_float(answer, "answer_1")
    n = int(height) * int(width)
    expected = float(n * n * bytes_per_value)
    return _verdict(
        value == expected,
        f"N = {n} positions, N^2 = {n * n} weights, {expected / 2**20:.2f} MiB per image: it grows as the fourth "
        "power of the feature-map side.",
        "S is N x N with N = h * w positions, and a float32 takes 4 bytes.",
    )


def check_05_received_mean(answer: Any) -> bool:
    r"""Exercise 05.2: the mean over positions of the attention received, :math:`\frac1N \sum_j \sum_i S_{ij}`."""
    value = _as_float(answer, "answer_2")
    return _verdict(
        abs(value - 1.0) < 1e-6,
        "Each of the N rows sums to 1, so all entries sum to N and the mean received attention is exactly 1: "
        "that is why the gate is 1 + beta (g - 1).",
        "sum all entries of S row by row first: each row is a softmax.",
    )


def check_05_gate_factor(answer: Any, beta: float = 0.5, received: float = 3.0) -> bool:
    """Exercise 05.3: the gate factor ``1 + beta (g - 1)`` of a position that receives ``g``."""
    value = _as_float(answer, "answer_3")
    expected = 1.0 + beta * (received - 1.0)
    return _verdict(
        abs(value - expected) < 1e-9,
        f"The factor is {expected:g}: positions that many queries attend to are amplified, the others damped, "
        "and nothing moves across positions.",
        "SSAM's gate mode multiplies F_j by 1 + beta (g_j - 1).",
    )


# ----------------------------------------------------------------------------- 06: fusion loss


def check_06_forward_passes(answer: Any) -> bool:
    """Exercise 06.1: network passes per training image of the full method with the stitched loss."""
    _require(answer, "answer_1")
    return _verdict(
        answer == 3,
        "Three passes: I1, I2 and the full image whose map the stitched target teaches; that is why the full "
        "method costs about 1.5 times the plain complementary model per step.",
        "count the two branches, then look at which map the stitched loss compares with the stitched target.",
    )


def check_06_stitched_target(answer: Any, a1: Any, a2: Any, mask: Any) -> bool:
    r"""Exercise 06.2: the stitched target :math:`m A_1 + (1 - m) A_2` before renormalisation."""
    import torch

    a1 = torch.as_tensor(a1).float()
    a2 = torch.as_tensor(a2).float()
    m = torch.as_tensor(mask).float()
    got = _as_tensor(answer, "answer_2", tuple(a1.shape))
    expected = m * a1 + (1.0 - m) * a2
    return _verdict(
        bool(torch.allclose(got, expected, atol=1e-6)),
        "Each cell takes the map of the branch that saw it: the stitched map is the best guess of the whole "
        "object's map.",
        "where the mask is 1 (I1 saw the cell) take A1, elsewhere A2; with fractional cells blend linearly.",
    )


def check_06_full_map_kinds(answer: Any) -> bool:
    """Exercise 06.3: the fusion-loss kinds that need a third, full-image pass."""
    from cirlib.methods.fusion_loss import FUSION_LOSSES, needs_full_map

    _require(answer, "answer_3")
    try:
        got = {str(a).strip().lower() for a in answer}
    except TypeError:
        raise AssertionError("answer_3 must be a set (or list) of kind names, e.g. {'consistency'}.") from None
    expected = {k for k in FUSION_LOSSES if needs_full_map(k)}
    return _verdict(
        got == expected,
        f"{sorted(expected)} teach the full-image map, so they need its pass; 'consistency' only compares the "
        "two branches.",
        f"the kinds are {FUSION_LOSSES}; which ones have A_full in their formula?",
    )


# ----------------------------------------------------------------------------- 07: results


def check_07_best_method(answer: Any, v2_by_method: dict[str, float]) -> bool:
    """Exercise 07.1: the method with the highest MaxBoxAccV2 in this run."""
    _require(answer, "answer_1")
    best = max(v2_by_method, key=lambda k: v2_by_method[k])
    ties = [k for k, v in v2_by_method.items() if v == v2_by_method[best]]
    return _verdict(
        str(answer) in ties,
        f"{best} has the highest MaxBoxAccV2 in this run ({v2_by_method[best]:.1f}); one seed, so compare with "
        "the spread over seeds before calling it better.",
        "take the method whose maxboxacc_v2 is largest in the table of this run (a key of the dict).",
    )


def check_07_maxboxacc_from_curve(answer: Any, curve: Sequence[float]) -> bool:
    """Exercise 07.2: MaxBoxAcc at one IoU from its BoxAcc-vs-threshold curve."""
    value = _as_float(answer, "answer_2")
    expected = float(np.max(np.asarray(curve, dtype=float)))
    return _verdict(
        abs(value - expected) < 1e-6,
        f"MaxBoxAcc = {expected:.2f} %: the best point of the curve, i.e. the best single CAM threshold for the "
        "whole test set.",
        "MaxBoxAcc is the best BoxAcc over all CAM thresholds.",
    )


def check_07_sample_std(answer: Any, values: Sequence[float]) -> bool:
    r"""Exercise 07.3: the sample standard deviation :math:`s = \sqrt{\frac{1}{n-1}\sum (x_i - \bar x)^2}`."""
    value = _as_float(answer, "answer_3")
    expected = float(np.std(np.asarray(values, dtype=float), ddof=1))
    if abs(value - float(np.std(values))) < 1e-6 and abs(value - expected) > 1e-6:
        raise AssertionError("Not quite. Hint: that is the population std (divide by n); results.json uses n - 1.")
    return _verdict(
        abs(value - expected) < 1e-6,
        f"s = {expected:.3f}: with 3 seeds a difference smaller than about 2 s between two methods is not evidence.",
        "divide the sum of squared deviations from the mean by n - 1, then take the square root.",
    )
