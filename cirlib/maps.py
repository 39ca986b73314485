r"""The one map pipeline from a model's class activation maps to the maps the metrics score.

Every score map cirlib evaluates, saves or analyses goes through these functions, in this order:

1. :func:`fuse` (two-classifier models only): each classifier's map at feature resolution is
   min-max normalised, and the maps are combined by their pixel-wise maximum (ACoL's rule),
   :math:`A = \max_j \hat A_j`;
2. :func:`upsample`: the map is resized to the image with OpenCV's bicubic interpolation,
   exactly as the wsolevaluation reference's ``inference.py`` does
   (``cv2.resize(cam, (W, H), interpolation=cv2.INTER_CUBIC)`` on float64: the reference's ``t2n``
   casts the model's CAMs to ``np.float`` first);
3. :func:`normalize`: the reference's ``normalize_scoremap``,
   :math:`\hat A = (A - \min A) / \max(A - \min A)`, with a map containing NaN or a constant map
   turned into zeros.

:func:`localization_maps` is steps 2 and 3. This module imports only NumPy, PyTorch and OpenCV, so
the evaluation engine, the analysis helpers and the models can all use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

__all__ = ["fuse", "localization_maps", "normalize", "upsample"]


def upsample(cams: Any, size: tuple[int, int]) -> np.ndarray:
    r"""Resize each map to ``size = (H, W)`` with bicubic interpolation, as the reference does.

    Per map, ``cv2.resize(cam, (W, H), interpolation=cv2.INTER_CUBIC)`` on float64, as the
    reference (its ``t2n`` casts CAMs to ``np.float``; OpenCV takes the size as width, height). Bicubic interpolation can overshoot slightly below the minimum and
    above the maximum of the map; :func:`normalize` maps the result back to [0, 1].

    Args:
        cams: ``(h, w)`` or ``(B, h, w)`` maps, a ``torch.Tensor`` (any device) or a NumPy array.
        size: the target ``(H, W)``, usually the network's input size.

    Returns:
        float64 NumPy array ``(H, W)`` or ``(B, H, W)``.
    """
    a = cams.detach().cpu().double().numpy() if isinstance(cams, torch.Tensor) else np.asarray(cams, np.float64)
    if a.ndim not in (2, 3):
        raise ValueError(f"upsample expects (h, w) or (B, h, w) maps, got shape {a.shape}.")
    height, width = int(size[0]), int(size[1])
    batch = a[None] if a.ndim == 2 else a
    out = np.empty((len(batch), height, width), dtype=np.float64)
    for i, cam in enumerate(batch):
        out[i] = cv2.resize(np.ascontiguousarray(cam), (width, height), interpolation=cv2.INTER_CUBIC)
    return out[0] if a.ndim == 2 else out


def normalize(maps: Any) -> Any:
    r"""Min-max normalise each map to [0, 1]: the reference's ``normalize_scoremap``.

    For a map :math:`A`: :math:`\hat A = (A - \min A) / \max(A - \min A)`, computed in the maps'
    own float type, so float64 maps give the reference's values bit for bit. A map that
    contains NaN, or is constant, becomes all zeros, as in the reference; so does a map with an
    infinite value (the reference would return NaN for it).

    Args:
        maps: a ``torch.Tensor`` or NumPy array ``(..., H, W)``; every ``(H, W)`` slice is one map.

    Returns:
        The same type (and torch device), shape and float type (integers become float32 / float64).
    """
    if isinstance(maps, torch.Tensor):
        x = maps.detach()
        if x.ndim < 2:
            raise ValueError(f"normalize expects (..., H, W) maps, got shape {tuple(x.shape)}.")
        if not torch.is_floating_point(x):
            x = x.float()
        flat = x.reshape(-1, x.shape[-2] * x.shape[-1])
        shifted = flat - flat.amin(dim=1, keepdim=True)
        top = shifted.amax(dim=1, keepdim=True)
        zero = ~torch.isfinite(flat).all(dim=1) | ~(top[:, 0] > 0)
        out = shifted / torch.where(zero[:, None], torch.ones_like(top), top)
        out = torch.where(zero[:, None], torch.zeros_like(out), out)
        return out.reshape(x.shape)
    a = np.asarray(maps)
    if a.ndim < 2:
        raise ValueError(f"normalize expects (..., H, W) maps, got shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    flat = a.reshape(-1, a.shape[-2] * a.shape[-1])
    with np.errstate(invalid="ignore"):
        shifted = flat - flat.min(axis=1, keepdims=True)
        top = shifted.max(axis=1, keepdims=True)
        zero = ~np.isfinite(flat).all(axis=1) | ~(top[:, 0] > 0)
        out = shifted / np.where(zero[:, None], 1, top).astype(a.dtype)
    out[zero] = 0
    return out.reshape(a.shape)


def fuse(maps_per_classifier: Sequence[Any], rule: str = "max") -> Any:
    r"""Combine several classifiers' maps of the same images: normalise each, then max (or mean).

    .. math:: A = \max_j \hat A_j \quad\text{(ACoL's rule)}, \qquad
              A = \tfrac{1}{n} \sum_j \hat A_j \quad\text{(rule = "mean")},

    with :math:`\hat A_j` = :func:`normalize` of classifier :math:`j`'s map, at the resolution it
    is given (feature resolution for the complementary model), so that a classifier with larger
    raw activations does not dominate.

    Args:
        maps_per_classifier: one ``(..., h, w)`` tensor or array per classifier, all the same shape
            (e.g. ``(B, K, h, w)`` class maps).
        rule: ``"max"`` or ``"mean"``.

    Returns:
        ``(..., h, w)`` maps in [0, 1], of the inputs' type.
    """
    if rule not in ("max", "mean"):
        raise ValueError(f"fuse: rule must be 'max' or 'mean', got {rule!r}.")
    if len(maps_per_classifier) == 0:
        raise ValueError("fuse: give at least one classifier's maps.")
    normed = [normalize(m) for m in maps_per_classifier]
    shapes = {tuple(m.shape) for m in normed}
    if len(shapes) != 1:
        raise ValueError(f"fuse: every classifier's maps must have the same shape, got {sorted(shapes)}.")
    if isinstance(normed[0], torch.Tensor):
        stacked = torch.stack(normed)
        return stacked.amax(0) if rule == "max" else stacked.mean(0)
    stacked = np.stack(normed)
    return stacked.max(0) if rule == "max" else stacked.mean(0)


def localization_maps(cams: Any, size: tuple[int, int]) -> np.ndarray:
    """The maps the metrics score: :func:`upsample` to ``size`` then :func:`normalize`; float64 NumPy."""
    return normalize(upsample(cams, size))
