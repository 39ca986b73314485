"""Input conversion and validation shared by the metrics modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["as_numpy", "as_score_maps", "as_box_list", "check_score_map", "as_thresholds"]

_FIX = "call cirlib.metrics.normalize_cam(...) on the maps first (per-map min-max to [0, 1])"


def as_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array; torch tensors on any device are detached and moved to CPU."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def check_score_map(scoremap: np.ndarray, index: int, name: str = "scoremaps") -> np.ndarray:
    """Validate one (H, W) score map and return it as float64.

    Raises:
        ValueError: if the map is not 2-D, not real-valued, contains NaN/inf or leaves [0, 1].
    """
    if scoremap.ndim != 2:
        raise ValueError(
            f"{name}[{index}] has shape {tuple(scoremap.shape)}; expected a 2-D (H, W) map "
            "(pass (N, H, W) arrays or an iterable of (H, W) maps)."
        )
    if not (np.issubdtype(scoremap.dtype, np.floating) or np.issubdtype(scoremap.dtype, np.integer)
            or scoremap.dtype == np.bool_):
        raise ValueError(f"{name}[{index}] has dtype {scoremap.dtype}; expected real numbers in [0, 1].")
    m = scoremap.astype(np.float64, copy=False)
    if m.size == 0:
        raise ValueError(f"{name}[{index}] is empty (shape {tuple(scoremap.shape)}).")
    if not np.isfinite(m).all():
        raise ValueError(
            f"{name}[{index}] contains NaN or infinite values; {_FIX} "
            "(normalize_cam turns NaN or constant maps into zeros)."
        )
    lo, hi = float(m.min()), float(m.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name}[{index}] has values outside [0, 1] (min {lo:.6g}, max {hi:.6g}); {_FIX}."
        )
    return m


def as_score_maps(scoremaps: Any) -> Iterable[np.ndarray]:
    """Yield (H, W) NumPy maps from an (N, H, W) array/tensor or an iterable of (H, W) maps."""
    if hasattr(scoremaps, "ndim") and hasattr(scoremaps, "shape"):
        arr = as_numpy(scoremaps)
        if arr.ndim == 2:
            raise ValueError(
                f"scoremaps has shape {tuple(arr.shape)}; expected (N, H, W). "
                "Wrap a single map as scoremaps[None]."
            )
        if arr.ndim != 3:
            raise ValueError(f"scoremaps has shape {tuple(arr.shape)}; expected (N, H, W).")
        return (arr[i] for i in range(arr.shape[0]))
    return (as_numpy(m) for m in scoremaps)


def as_box_list(gt_boxes: Any, n: int | None = None) -> list[np.ndarray]:
    """Convert per-image GT boxes to a list of float64 ``(k_i, 4)`` arrays (x0, y0, x1, y1 inclusive)."""
    if hasattr(gt_boxes, "ndim") and getattr(gt_boxes, "ndim", 0) == 3:
        gt_boxes = [gt_boxes[i] for i in range(gt_boxes.shape[0])]
    out: list[np.ndarray] = []
    for i, b in enumerate(gt_boxes):
        a = as_numpy(b).astype(np.float64)
        if a.ndim == 1 and a.shape[0] == 4:
            a = a[None]
        if a.ndim != 2 or a.shape[1] != 4 or a.shape[0] == 0:
            raise ValueError(
                f"gt_boxes[{i}] has shape {tuple(a.shape)}; expected (k, 4) with k >= 1 boxes "
                "x0, y0, x1, y1 (inclusive pixel corners)."
            )
        if not np.isfinite(a).all() or (a < 0).any() or (a[:, 2] < a[:, 0]).any() or (a[:, 3] < a[:, 1]).any():
            raise ValueError(
                f"gt_boxes[{i}] = {a.tolist()} is not a box of the protocol: x0, y0, x1, y1 must be finite and "
                "non-negative with x1 >= x0, y1 >= y0; convert (x, y, w, h) boxes as the loaders do (CUB, "
                "wsolevaluation): x1 = x + w, y1 = y + h."
            )
        out.append(a)
    if n is not None and len(out) != n:
        raise ValueError(f"got {n} score maps but {len(out)} entries in gt_boxes; pass one (k, 4) array per map.")
    return out


def as_thresholds(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """Return a 1-D finite array of thresholds (keeps a floating dtype, as the reference does)."""
    a = as_numpy(values)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {tuple(a.shape)}.")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return a
