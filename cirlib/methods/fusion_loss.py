r"""Attention-based fusion loss: tie the two branches' attention maps together (reconstruction).

The paper names an "Attention-based Fusion Loss" that uses the two classifiers' attention
maps; its formula is not available to us. We offer three kinds, selected by name:

* ``"stitched"``: each branch saw only its own region, so stitch the two maps with
  the complementary mask, :math:`A_s = m A_1 + (1 - m) A_2` (:math:`m` the fraction of each
  feature cell visible in :math:`I_1`), and teach the full-image map with it,
  :math:`L = \operatorname{mean} |A_{full} - \operatorname{sg}(A_s)|`.
* ``"consistency"``: the two branches' maps should agree, :math:`L = \operatorname{mean}|A_1 - A_2|`
  (no full-image pass needed; both maps receive gradients).
* ``"max"`` (default, :data:`DEFAULT_FUSION_LOSS`): max-fusion target,
  :math:`L = \operatorname{mean}|A_{full} - \operatorname{sg}(\max(A_1, A_2))|`: the full-image map should
  cover what either branch found. Notebook 06 trains every kind; ``docs/reconstruction.md`` says why
  ``"max"`` is the default.

:math:`\operatorname{sg}` is stop-gradient. Every map is the ground-truth-class map at
feature resolution, min-max normalised per image (:func:`cirlib.models.heads.minmax_normalize`) before the
comparison (the stitched / max target is renormalised the same way), so the loss is scale-free, lies in :math:`[0, 1]`, is 0 when the maps agree and
positive otherwise.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

from cirlib.models.heads import minmax_normalize
from cirlib.utils.choices import validate_choice

__all__ = [
    "DEFAULT_FUSION_LOSS",
    "FUSION_LOSSES",
    "attention_fusion_loss",
    "downsample_mask",
    "needs_full_map",
]

#: Valid fusion-loss kinds.
FUSION_LOSSES = ("stitched", "consistency", "max")
#: The kind the ``full`` method uses (``cirlib.methods.build_model``).
DEFAULT_FUSION_LOSS = "max"
_NEEDS_FULL = {"stitched": True, "consistency": False, "max": True}

FusionKind = Literal["stitched", "consistency", "max"]


def _check_kind(kind: str) -> str:
    return validate_choice("kind", kind, FUSION_LOSSES, prefix="Unknown fusion loss: ",
                           suffix=" (see docs/reconstruction.md, 'Attention-based fusion loss').")


def needs_full_map(kind: str) -> bool:
    """Whether ``kind`` needs the map of a third, full-image pass."""
    return _NEEDS_FULL[_check_kind(kind)]


def downsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Fraction of each feature cell visible in ``I1``: ``(B, 1, H, W)`` bool -> ``(B, h, w)`` float.

    Uses adaptive average pooling (area interpolation), so a cell straddling the patch grid
    gets the fraction of its pixels that branch 1 saw.
    """
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(
            f"downsample_mask: expected a (B, 1, H, W) or (B, H, W) mask, got shape {tuple(mask.shape)}."
        )
    return F.adaptive_avg_pool2d(mask.float(), size).squeeze(1)


def attention_fusion_loss(
    kind: str,
    full_map: torch.Tensor | None,
    map1: torch.Tensor,
    map2: torch.Tensor,
    mask: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> torch.Tensor:
    """The attention-based fusion loss of ``kind`` (see the module docstring for the formulas).

    Args:
        kind: ``"stitched"``, ``"consistency"`` or ``"max"``.
        full_map: ``(B, h, w)`` GT-class map of the full image (raw, not normalised); required
            by ``"stitched"`` and ``"max"``, ignored by ``"consistency"``.
        map1: ``(B, h, w)`` GT-class map of branch 1 (image ``I1``).
        map2: ``(B, h, w)`` GT-class map of branch 2 (image ``I2``).
        mask: ``(B, 1, H, W)`` bool, True where ``I1`` shows the image; required by
            ``"stitched"`` (any resolution: it is area-downsampled to ``(h, w)``).
        eps: min-max normalisation guard.

    Returns:
        A scalar float32 tensor in ``[0, 1]``.

    Raises:
        ValueError: unknown kind, a missing input the kind needs, or mismatched shapes.
    """
    _check_kind(kind)
    if map1.shape != map2.shape or map1.dim() != 3:
        raise ValueError(
            f"attention_fusion_loss: map1 and map2 must be (B, h, w) of the same shape, got "
            f"{tuple(map1.shape)} and {tuple(map2.shape)}."
        )
    a1 = minmax_normalize(map1, eps)
    a2 = minmax_normalize(map2, eps)
    if kind == "consistency":
        return (a1 - a2).abs().mean()
    if full_map is None:
        raise ValueError(f"attention_fusion_loss: kind={kind!r} needs full_map (a full-image pass).")
    if full_map.shape != map1.shape:
        raise ValueError(
            f"attention_fusion_loss: full_map has shape {tuple(full_map.shape)}, the branch maps "
            f"{tuple(map1.shape)}."
        )
    a_full = minmax_normalize(full_map, eps)
    if kind == "stitched":
        if mask is None:
            raise ValueError("attention_fusion_loss: kind='stitched' needs the complementary mask.")
        m = downsample_mask(mask, tuple(map1.shape[-2:])).to(a1.device)
        target = m * a1 + (1.0 - m) * a2
    else:  # "max"
        target = torch.maximum(a1, a2)
    # The target is renormalised too, so that the loss compares shapes only and is 0 exactly
    # when the full map is (an affine copy of) the target.
    target = minmax_normalize(target.detach(), eps)
    return (a_full - target).abs().mean()
