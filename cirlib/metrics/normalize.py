"""Per-map min-max normalisation of class activation maps."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["normalize_cam"]


def normalize_cam(cams: Any) -> Any:
    r"""Min-max normalise each map to [0, 1], as the wsolevaluation protocol does.

    For a map :math:`A`, the result is :math:`(A - \min A) / \max(A - \min A)`.
    A constant map, or a map containing NaN or infinite values, becomes all zeros.

    Args:
        cams: a ``torch.Tensor`` or ``numpy.ndarray`` of shape ``(h, w)`` or ``(B, h, w)``.

    Returns:
        The same type (and torch device) and shape, floating point.

    Raises:
        ValueError: if ``cams`` is not 2-D or 3-D.
    """
    if hasattr(cams, "detach") and hasattr(cams, "amin"):
        import torch

        x = cams.detach()
        if x.ndim not in (2, 3):
            raise ValueError(f"normalize_cam expects (h, w) or (B, h, w), got shape {tuple(x.shape)}.")
        if not torch.is_floating_point(x):
            x = x.float()
        flat = x.reshape(-1, x.shape[-2] * x.shape[-1]) if x.ndim == 3 else x.reshape(1, -1)
        bad = ~torch.isfinite(flat).all(dim=1)
        shifted = flat - flat.amin(dim=1, keepdim=True)
        rng = shifted.amax(dim=1, keepdim=True)
        bad = bad | ~(rng[:, 0] > 0)
        out = shifted / torch.where(bad[:, None], torch.ones_like(rng), rng)
        out = torch.where(bad[:, None], torch.zeros_like(out), out)
        return out.reshape(x.shape)
    a = np.asarray(cams)
    if a.ndim not in (2, 3):
        raise ValueError(f"normalize_cam expects (h, w) or (B, h, w), got shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    flat = a.reshape(-1, a.shape[-2] * a.shape[-1])
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(flat).all(axis=1)
        shifted = flat - flat.min(axis=1, keepdims=True)
        rng = shifted.max(axis=1, keepdims=True)
        bad |= ~(rng[:, 0] > 0)
        out = shifted / np.where(bad[:, None], 1, rng).astype(a.dtype)
    out[bad] = 0
    return out.reshape(a.shape)
