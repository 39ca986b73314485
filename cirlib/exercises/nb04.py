"""Exercise checkers of notebook 04: channel-assisted attention (CAAM)."""

from __future__ import annotations

from typing import Any, Sequence

from cirlib.exercises._checking import _as_tensor, _require, _verdict, checker

__all__ = ["check_04_attended_map", "check_04_uniform_attention"]

#: The key ideas of exercise 04's explanation: why the full model learns a negative gamma.
NEGATIVE_GAMMA_IDEAS = {
    "gamma is one free scalar fitted by the loss; 'assisted' names the module, it does not fix the sign":
        ("loss", "free", "learn", "gradient", "fit", "optimi"),
    "Q X_2 is non-negative (ReLU features, rows summing to 1): gamma < 0 subtracts the other branch's "
    "dominant channel from every channel instead of adding it": ("subtract", "non-negative", "nonnegative", "relu",
                                                                  "remove", "minus"),
    "what differs from the caam model is SSAM in the same sum, F^t = (F^c + F^s) / 2":
        ("ssam", "spatial", "gate", "f^s"),
    "the evaluated map is read before CAAM (cam_from='backbone'): the sign acts on it only through training":
        ("backbone", "cam_from", "before caam", "through training"),
}

_FLAT = ("flat", "same", "unchanged", "not change", "no change", "constant", "does not move", "doesn't")
_MOVES = ("change", "move", "vary", "varies", "depend", "differ", "yes", "up", "down", "higher", "lower")


@checker
def check_04_uniform_attention(answer: Any, f1: Any, f2: Any, gamma: float = 0.3) -> None:
    r"""Exercise 04: :math:`F^c_x` when every row of :math:`Q_x` is :math:`1/C`."""
    import torch

    f1 = torch.as_tensor(f1).float()
    f2 = torch.as_tensor(f2).float()
    got = _as_tensor(answer, "answer_1", tuple(f1.shape))
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
def check_04_attended_map(answer: Any, model: Any, images: Any, labels: Any, boxes: Any, pair: Any,
                          gammas: Sequence[float] = (-0.9, 0.0, 0.9), fast: bool = False) -> None:
    """Exercise 04 (predict): with ``cam_from="attended"``, does the map's mass in the GT box still stay flat in gamma?

    Runs :func:`cirlib.analysis.caam_gamma_sweep` with the maps read from the attended features, then
    restores the model's ``cam_from``.

    Args:
        answer: ``"flat"`` / ``"same"``, or ``"changes"`` / ``"moves"`` (any usual wording).
        model, images, labels, boxes, pair: as :func:`~cirlib.analysis.caam_gamma_sweep` takes them.
        gammas: the values swept.
        fast: a FAST run: the barely trained model's effect is shown, not judged.
    """
    from cirlib.analysis import caam_gamma_sweep

    _require(answer, "answer_2")
    text = str(answer).strip().lower()
    predicted = 0 if any(w in text for w in _FLAT) else 1 if any(w in text for w in _MOVES) else None
    if predicted is None:
        raise AssertionError(f"answer_2 should say 'flat' or 'changes', got {answer!r}.")
    saved = model.cam_from
    model.cam_from = "attended"
    try:
        inside = caam_gamma_sweep(model, images, labels, boxes, pair, gammas)["mass_in_box"]
    finally:
        model.cam_from = saved
    spread = max(inside) - min(inside)
    measured = "mass inside the GT box " + ", ".join(f"{m:.3f} at gamma {g:+.1f}" for g, m in zip(gammas, inside))
    if fast:
        print(f"FAST run: {measured}; a barely trained model's effect means nothing, so it is not judged.")
        return None
    return _verdict(
        predicted == (1 if spread > 0.005 else 0),
        f"{measured}. Read from F^t = (F + F^c) / 2, the map contains gamma Q X_2, so gamma now moves it: the "
        "flat curve of section 4 is a property of cam_from='backbone', not of CAAM.",
        "with cam_from='attended' the classifier's map is computed from F^t, and F^t contains gamma Q X_2.",
    )
