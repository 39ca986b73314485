"""Exercise checkers of notebook 06: the fusion loss and the full method."""

from __future__ import annotations

from typing import Any


from cirlib.exercises._checking import _SAME, _direction, _require, _verdict, checker

__all__ = ['check_06_fusion_weight_at_inference']

#: The key ideas of exercise 06's explanation: why longer training concentrates the map on the head.
SHORT_TRAINING_IDEAS = {
    "the head is the most discriminative part (its colour names the class)":
        ("discriminative", "colour", "color", "tells the class"),
    "early in training the classifier uses any evidence, the whole object included, so the map spreads":
        ("still learning", "early", "whole object", "spread", "shape"),
    "cross-entropy rewards the most reliable evidence: the class weights concentrate on the head features":
        ("cross-entropy", "loss", "weights", "reliable"),
    "once the head alone classifies, the loss saturates and nothing pushes the map onto the body":
        ("saturat", "nothing pushes", "no gradient", "100 %", "already correct"),
}


@checker
def check_06_fusion_weight_at_inference(answer: Any, maps_default: Any, maps_changed: Any) -> None:
    """Exercise 06 (predict): do a trained model's maps change when its ``fusion_weight`` is set to 0?

    Args:
        answer: ``"same"`` or ``"different"`` (any form: ``"unchanged"``, ``"they change"``, ...).
        maps_default, maps_changed: the localization maps with the trained weight and with 0.
    """
    import torch

    _require(answer, "answer_1")
    text = str(answer).strip().lower()
    if any(word in text for word in _SAME):
        predicted_same = True
    elif any(word in text for word in ("differ", "change")):
        predicted_same = False
    else:  # "up", "down", a number: a change
        predicted_same = _direction(answer, "answer_1") == 0
    same = bool(torch.allclose(torch.as_tensor(maps_default), torch.as_tensor(maps_changed), atol=1e-6))
    return _verdict(
        predicted_same == same,
        "The maps are identical: lambda only weighs the fusion term of the training loss, so it acts on the "
        "weights training finds, never on a trained model's forward pass. Its effect can only be measured by "
        "training again (the 'None' run of the ablation is lambda = 0).",
        "look for fusion_weight in the model's code: which method reads it, training_loss or forward_maps?",
    )
