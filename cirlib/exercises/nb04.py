"""Exercise checkers of notebook 04: channel-assisted attention (CAAM)."""

from __future__ import annotations

from typing import Any


from cirlib.exercises._checking import _require, _verdict, _as_tensor, checker

__all__ = ['check_04_caam_entries', 'check_04_unbounded_scale', 'check_04_uniform_attention']


@checker
def check_04_caam_entries(answer: Any, channels: int) -> None:
    """Exercise 04.1: the number of entries of one image's CAAM matrix ``Q_x`` (``channels`` x ``channels``)."""
    _require(answer, "answer_1")
    expected = int(channels) ** 2
    return _verdict(
        answer == expected,
        f"Q_x is {channels} x {channels} = {expected} numbers per image and direction, whatever the image "
        "size: CAAM's cost grows with C^2 N, not N^2.",
        "Q_x relates every channel of one branch to every channel of the other: C rows, C columns.",
    )


@checker
def check_04_uniform_attention(answer: Any, f1: Any, f2: Any, gamma: float = 0.3) -> None:
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


@checker
def check_04_unbounded_scale(answer: Any) -> None:
    r"""Exercise 04.3: the ``attention_scale`` value under which :math:`|\gamma|` can exceed 1."""
    from cirlib.models.attention import SCALES

    _require(answer, "answer_3")
    return _verdict(
        str(answer).strip().strip("'\"").lower() == "linear",
        "With 'linear' gamma is the raw parameter itself, unbounded (the literal DANet reading); 'tanh' keeps it in "
        "(-1, 1). The `literal` row of results/results.md trains the full method with 'linear'.",
        f"the valid values are {SCALES}; which one applies no squashing function to the raw parameter?",
    )
