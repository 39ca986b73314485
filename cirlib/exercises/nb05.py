"""Exercise checkers of notebook 05: spatial self-attention (SSAM)."""

from __future__ import annotations

from typing import Any


from cirlib.exercises._checking import _as_float, _verdict, checker

__all__ = ['check_05_attention_bytes', 'check_05_gate_factor', 'check_05_received_mean']


@checker
def check_05_attention_bytes(answer: Any, height: int, width: int, bytes_per_value: int = 4) -> None:
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


@checker
def check_05_received_mean(answer: Any) -> None:
    r"""Exercise 05.2: the mean over positions of the attention received, :math:`\frac1N \sum_j \sum_i S_{ij}`."""
    value = _as_float(answer, "answer_2")
    return _verdict(
        abs(value - 1.0) < 1e-6,
        "Each of the N rows sums to 1, so all entries sum to N and the mean received attention is exactly 1: "
        "that is why the gate is 1 + beta (g - 1).",
        "sum all entries of S row by row first: each row is a softmax.",
    )


@checker
def check_05_gate_factor(answer: Any, beta: float = 0.5, received: float = 3.0) -> None:
    """Exercise 05.3: the gate factor ``1 + beta (g - 1)`` of a position that receives ``g``."""
    value = _as_float(answer, "answer_3")
    expected = 1.0 + beta * (received - 1.0)
    return _verdict(
        abs(value - expected) < 1e-9,
        f"The factor is {expected:g}: positions that many queries attend to are amplified, the others damped, "
        "and nothing moves across positions.",
        "SSAM's gate mode multiplies F_j by 1 + beta (g_j - 1).",
    )
