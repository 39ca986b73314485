"""Exercise checkers of notebook 06: the fusion loss and the full method."""

from __future__ import annotations

from typing import Any


from cirlib.exercises._checking import _require, _verdict, _as_tensor, checker

__all__ = ['check_06_forward_passes', 'check_06_full_map_kinds', 'check_06_stitched_target']


@checker
def check_06_forward_passes(answer: Any) -> None:
    """Exercise 06.1: network passes per training image of the full method with its max-fusion loss."""
    _require(answer, "answer_1")
    return _verdict(
        answer == 3,
        "Three passes: I1, I2 and the full image, whose map the max-fusion target max(A1, A2) teaches; that third "
        "pass is part of what the full method costs per step beyond the plain complementary model.",
        "count the two branches, then look at which map the max-fusion loss compares with max(A1, A2).",
    )


@checker
def check_06_stitched_target(answer: Any, a1: Any, a2: Any, mask: Any) -> None:
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


@checker
def check_06_full_map_kinds(answer: Any) -> None:
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
