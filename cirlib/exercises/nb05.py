"""Exercise checkers of notebook 05: spatial self-attention (SSAM)."""

from __future__ import annotations

from typing import Any


from cirlib.exercises._checking import _as_float, _direction, _verdict, checker

__all__ = ['check_05_cam_from', 'check_05_gate_factor']

#: The key ideas of exercise 05's explanation: why the attention collapses onto the head, yet the map improves.
COLLAPSE_IDEAS = {
    "the head is the most discriminative part (its colour names the class), so every query looks there":
        ("discriminative", "colour", "color", "class", "tells the class"),
    "the gate multiplies the head's features for the classifier: the classifier gets its head evidence there":
        ("gate", "amplif", "multipl", "factor"),
    "the evaluated map is the backbone's CAM (cam_from='backbone'), not the attention":
        ("backbone", "cam_from", "not the attention", "different map"),
    "the backbone's map is lower on the background, so a threshold keeps pixels on the object: tighter boxes":
        ("background", "tighter", "precision", "on the object"),
}


@checker
def check_05_cam_from(answer: Any, backbone: dict[str, float], attended: dict[str, float], fast: bool = False) -> None:
    """Exercise 05 (predict): the head share of the maps when they read the attended features.

    Args:
        answer: the predicted direction of the head share, ``"up"``, ``"down"`` or ``"same"`` (any form).
        backbone, attended: :func:`cirlib.analysis.region_activation` of the maps read from the backbone's
            features (the default) and from the attended ones (``cam_from="attended"``).
        fast: a FAST run: the barely trained model's effect is shown, not judged.
    """
    predicted = _direction(answer, "answer_1")
    change = attended["head_mass"] - backbone["head_mass"]
    actual = 0 if abs(change) < 0.01 else (1 if change > 0 else -1)
    measured = (f"head share {backbone['head_mass']:.1%} -> {attended['head_mass']:.1%}, mean on the body "
                f"{backbone['body']:.2f} -> {attended['body']:.2f}")
    if fast:
        print(f"FAST run: {measured}; a barely trained model's effect means nothing, so it is not judged.")
        return None
    return _verdict(
        predicted == actual,
        f"{measured}. The attended features carry the gate's factor, large on the head cells every query "
        "looks at and below 1 elsewhere: a map read from them collapses onto the head with the attention.",
        "the gate multiplies each position by 1 + beta (g - 1); where does g sit in this trained model?",
    )


@checker
def check_05_gate_factor(answer: Any, beta: float = 0.5, received: float = 3.0) -> None:
    """Exercise 05: the gate factor ``1 + beta (g - 1)`` of a position that receives ``g``."""
    value = _as_float(answer, "answer_3")
    expected = 1.0 + beta * (received - 1.0)
    return _verdict(
        abs(value - expected) < 1e-9,
        f"The factor is {expected:g}: positions that many queries attend to are amplified, the others damped, "
        "and nothing moves across positions.",
        "SSAM's gate mode multiplies F_j by 1 + beta (g_j - 1).",
    )
