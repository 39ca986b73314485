r"""Streaming evaluators: BoxAcc / MaxBoxAcc(V2) / Top-k Loc and PxAP, fed batch by batch.

Both hold O(1) score maps: each batch is reduced to per-threshold counters (boxes) or score
histograms (pixels) and dropped. Torch tensors on any device and NumPy arrays are accepted.
Definitions: ``docs/metrics.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cirlib.metrics._inputs import as_box_list, as_numpy, as_thresholds, check_score_map
from cirlib.metrics.boxacc import MODES, _best_ious

__all__ = ["BoxEvaluator", "PxAPEvaluator"]


def _as_batch(scoremaps: Any) -> np.ndarray:
    a = as_numpy(scoremaps)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"scoremaps has shape {tuple(a.shape)}; expected (B, H, W) at image resolution.")
    return a


def _as_flags(x: Any, b: int, name: str) -> np.ndarray | None:
    if x is None:
        return None
    a = as_numpy(x).reshape(-1).astype(bool)
    if a.shape[0] != b:
        raise ValueError(f"{name} has {a.shape[0]} entries for a batch of {b} maps; pass one bool per map.")
    return a


class BoxEvaluator:
    r"""MaxBoxAcc, MaxBoxAccV2 and Top-1 / Top-5 / GT-known Loc over a stream of score maps.

    For each CAM threshold :math:`t` and IoU threshold :math:`\delta` it counts the images whose
    best box reaches :math:`\mathrm{IoU} \ge \delta/100`, in both contour modes, plus (for
    :math:`\delta = 50`, multi-contour) those whose top-1 / top-5 prediction is also correct.

    Args:
        cam_thresholds: CAM thresholds; default ``numpy.arange(0, 1, 0.01)``.
        iou_thresholds: IoU thresholds in percent; must contain 50 for the Loc metrics.
    """

    def __init__(self, cam_thresholds: Sequence[float] | np.ndarray | None = None,
                 iou_thresholds: Sequence[int] = (30, 50, 70)) -> None:
        self.cam_thresholds = as_thresholds(
            np.arange(0, 1, 0.01) if cam_thresholds is None else cam_thresholds, "cam_thresholds")
        self.iou_thresholds = tuple(int(d) if float(d).is_integer() else float(d) for d in iou_thresholds)
        if not self.iou_thresholds:
            raise ValueError("iou_thresholds must not be empty, e.g. (30, 50, 70).")
        self.reset()

    def reset(self) -> None:
        """Forget every accumulated map."""
        n_t = len(self.cam_thresholds)
        self.num_images = 0
        self._correct = {m: np.zeros((len(self.iou_thresholds), n_t), dtype=np.int64) for m in MODES}
        self._top1 = np.zeros(n_t, dtype=np.int64)
        self._top5 = np.zeros(n_t, dtype=np.int64)
        self._n_top1 = 0
        self._n_top5 = 0

    def update(self, scoremaps: Any, gt_boxes: Any, top1_correct: Any = None,
               top5_correct: Any = None) -> None:
        """Accumulate a batch.

        Args:
            scoremaps: ``(B, H, W)`` maps in [0, 1] at image resolution (tensor or array).
            gt_boxes: list of B ``(k_i, 4)`` boxes, x0 y0 x1 y1 inclusive.
            top1_correct: optional ``(B,)`` bools, top-1 class prediction correct.
            top5_correct: optional ``(B,)`` bools, GT class among the top-5 predictions.

        Raises:
            ValueError: on maps outside [0, 1] / with NaN (naming the global map index), or
                mismatched lengths.
        """
        maps = _as_batch(scoremaps)
        b = maps.shape[0]
        boxes = as_box_list(gt_boxes, b)
        t1 = _as_flags(top1_correct, b, "top1_correct")
        t5 = _as_flags(top5_correct, b, "top5_correct")
        maps64 = [check_score_map(maps[i], self.num_images + i) for i in range(b)]
        for i in range(b):
            best = _best_ious(maps64[i], boxes[i], self.cam_thresholds, MODES)
            for mode in MODES:
                for j, delta in enumerate(self.iou_thresholds):
                    self._correct[mode][j] += best[mode] >= (delta / 100)
            ok50 = best["multi"] >= 0.5
            if t1 is not None:
                self._top1 += ok50 & t1[i]
            if t5 is not None:
                self._top5 += ok50 & t5[i]
        self._n_top1 += b if t1 is not None else 0
        self._n_top5 += b if t5 is not None else 0
        self.num_images += b

    def curves(self, multi_contour: bool = True) -> np.ndarray:
        """BoxAcc curves in percent, ``(len(iou_thresholds), len(cam_thresholds))``."""
        mode = "multi" if multi_contour else "single"
        return self._correct[mode] * 100.0 / max(self.num_images, 1)

    def compute(self) -> dict[str, Any]:
        """All metrics as a JSON-serialisable dict (percent).

        Returns:
            ``maxboxacc`` (multi-contour, per IoU), ``maxboxacc_v2`` (their mean),
            ``maxboxacc_single``, ``best_threshold`` (per IoU, multi), ``gt_known_loc``,
            ``top1_loc`` / ``top5_loc`` (``None`` when never given), ``curves``
            (``{"multi": {...}, "single": {...}, "cam_thresholds": [...]}``), ``num_images``.

        Raises:
            RuntimeError: when no map was accumulated.
        """
        if self.num_images == 0:
            raise RuntimeError("BoxEvaluator.compute() called before any update(); feed it score maps first.")
        multi, single = self.curves(True), self.curves(False)
        keys = [str(d) for d in self.iou_thresholds]
        best_idx = multi.argmax(axis=1)  # first maximum, as numpy / the reference
        out: dict[str, Any] = {
            "maxboxacc": {k: float(multi[j].max()) for j, k in enumerate(keys)},
            "maxboxacc_single": {k: float(single[j].max()) for j, k in enumerate(keys)},
            "best_threshold": {k: float(self.cam_thresholds[best_idx[j]]) for j, k in enumerate(keys)},
            "best_threshold_single": {k: float(self.cam_thresholds[single[j].argmax()]) for j, k in enumerate(keys)},
        }
        out["maxboxacc_v2"] = float(np.mean(list(out["maxboxacc"].values())))
        if 50 in self.iou_thresholds:
            j50 = self.iou_thresholds.index(50)
            t50 = int(best_idx[j50])
            out["gt_known_loc"] = float(multi[j50, t50])
            out["top1_loc"] = float(self._top1[t50] * 100.0 / self._n_top1) if self._n_top1 else None
            out["top5_loc"] = float(self._top5[t50] * 100.0 / self._n_top5) if self._n_top5 else None
        else:
            out["gt_known_loc"] = out["top1_loc"] = out["top5_loc"] = None
        out["curves"] = {
            "cam_thresholds": [float(t) for t in self.cam_thresholds],
            "iou_thresholds": list(self.iou_thresholds),
            "multi": {k: multi[j].tolist() for j, k in enumerate(keys)},
            "single": {k: single[j].tolist() for j, k in enumerate(keys)},
        }
        out["num_images"] = int(self.num_images)
        return out


class PxAPEvaluator:
    r"""Pixel average precision (PxAP) from score histograms, as wsolevaluation's ``MaskEvaluator``.

    Scores are binned with right edges ``[t_0, ..., t_{n-1}, 1, 2, 3]`` (``numpy.histogram``), so
    bin counts of GT-foreground and GT-background pixels give, for each threshold from the top,
    :math:`TP, FP` and

    .. math::
        P_i = \frac{TP_i}{TP_i + FP_i},\quad R_i = \frac{TP_i}{N_+},\quad
        \mathrm{PxAP} = 100 \sum_{i \ge 1} P_i (R_i - R_{i-1}).

    Where :math:`TP_i + FP_i = 0` (no pixel above the threshold) we set :math:`P_i = 1` instead of
    wsolevaluation's NaN (only the first, top-most bin, which carries no recall, is affected).

    Args:
        cam_thresholds: bin edges; default ``numpy.arange(0, 1, 0.01)`` (wsolevaluation).
    """

    def __init__(self, cam_thresholds: Sequence[float] | np.ndarray | None = None) -> None:
        thr = as_thresholds(np.arange(0, 1, 0.01) if cam_thresholds is None else cam_thresholds,
                            "cam_thresholds")
        if (np.diff(thr) <= 0).any():
            raise ValueError("cam_thresholds for PxAP must be strictly increasing.")
        self.cam_thresholds = thr
        self._edges = np.append(thr.astype(np.float64), [1.0, 2.0, 3.0])
        self.reset()

    def reset(self) -> None:
        """Forget every accumulated map."""
        self._pos = np.zeros(len(self._edges) - 1, dtype=np.int64)
        self._neg = np.zeros(len(self._edges) - 1, dtype=np.int64)
        self.num_images = 0

    def update(self, scoremaps: Any, masks: Any, ignore: Any = None) -> None:
        """Accumulate a batch.

        Args:
            scoremaps: ``(B, H, W)`` maps in [0, 1].
            masks: ``(B, H, W)`` bool GT object masks.
            ignore: optional ``(B, H, W)`` bool region excluded from both classes.
        """
        maps = _as_batch(scoremaps)
        m = as_numpy(masks)
        m = m[None] if m.ndim == 2 else m
        if m.shape != maps.shape:
            raise ValueError(f"masks have shape {tuple(m.shape)} but scoremaps {tuple(maps.shape)}; "
                             "masks must be (B, H, W) at the score-map resolution.")
        m = m.astype(bool)
        ig = None
        if ignore is not None:
            ig = as_numpy(ignore)
            ig = (ig[None] if ig.ndim == 2 else ig).astype(bool)
            if ig.shape != maps.shape:
                raise ValueError(f"ignore has shape {tuple(ig.shape)} but scoremaps {tuple(maps.shape)}.")
        for i in range(maps.shape[0]):
            s = check_score_map(maps[i], self.num_images + i)
            keep = ~ig[i] if ig is not None else np.ones(s.shape, dtype=bool)
            self._pos += np.histogram(s[m[i] & keep], bins=self._edges)[0]
            self._neg += np.histogram(s[~m[i] & keep], bins=self._edges)[0]
        self.num_images += maps.shape[0]

    def merge(self, other: "PxAPEvaluator") -> "PxAPEvaluator":
        """Add the histograms of ``other`` (same thresholds), e.g. from another process; returns ``self``."""
        if not np.array_equal(self._edges, other._edges):
            raise ValueError("PxAPEvaluator.merge: the two evaluators use different cam_thresholds.")
        self._pos += other._pos
        self._neg += other._neg
        self.num_images += other.num_images
        return self

    def compute(self) -> dict[str, Any]:
        """``{"pxap": percent, "precision": [...], "recall": [...], "thresholds": [...]}``.

        The lists run from the highest threshold down; ``thresholds`` holds each bin's left edge.

        Raises:
            RuntimeError: when no GT-foreground pixel was seen.
        """
        n_pos = int(self._pos.sum())
        if n_pos == 0:
            raise RuntimeError("PxAPEvaluator: no positive (mask) pixel accumulated; check the masks.")
        tp = np.cumsum(self._pos[::-1]).astype(np.float64)
        fp = np.cumsum(self._neg[::-1]).astype(np.float64)
        denom = tp + fp
        precision = np.divide(tp, denom, out=np.ones_like(tp), where=denom > 0)
        recall = tp / n_pos
        pxap = float((precision[1:] * np.diff(recall)).sum() * 100.0)
        return {
            "pxap": pxap,
            "precision": precision.tolist(),
            "recall": recall.tolist(),
            "thresholds": self._edges[:-1][::-1].tolist(),
            "num_images": int(self.num_images),
        }
