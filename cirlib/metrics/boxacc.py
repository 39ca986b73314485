r"""Fast, exact BoxAcc curves.

The reference protocol calls ``cv2.findContours`` once per CAM threshold (1000 times per map at
interval 0.001). This module gives the same numbers with far less work (see ``docs/metrics.md``):

1. **Shared cut-offs.** After uint8 quantisation the binary image at threshold ``t`` is
   :math:`F_L = \{q \ge L\}` with :math:`L = \lfloor t \cdot \max q \rfloor + 1`. Only levels
   ``L`` whose value occurs in ``q`` change :math:`F_L`, so every threshold is mapped to the
   smallest present value :math:`\ge L` and each distinct binary image is solved once.
2. **Union-find level sweeps** (:mod:`cirlib.metrics._sweep`, compiled with numba): the boxes of
   every contour (outer: 8-connected components; holes: 4-connected background components off the
   border) of every level in two passes, and the largest contour by ``contourArea`` from exact
   cell-count areas wherever bounds decide it.
3. **Everything else** (single mode, levels the bounds leave open) calls ``cv2.findContours`` on
   the crop of :math:`F_L`'s bounding box (translation keeps contours, their order and their
   areas) and ranks the contours by exact shoelace areas, as ``cv2.contourArea``.

Without numba, :func:`best_ious_opencv` (an Euler-number one-contour certificate, else one cropped
``findContours`` per distinct level) gives the same numbers more slowly:

- the Euler number :math:`E(L) = C(L) - H(L)` (8-connected foreground, 4-connected holes) from 2x2
  bit-quad counts, :math:`4E = n(Q_1) - n(Q_3) - 2n(Q_D)` (Gray, 1971), and an upper bound
  :math:`G(L) \ge C(L)`: the number of regional-maximum plateaus with value :math:`\ge L`. Where
  :math:`G(L) = 1` and :math:`E(L) = 1` the image has exactly one contour, whose box is the
  bounding box of :math:`F_L`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from cirlib.metrics._inputs import as_box_list, as_score_maps, as_thresholds, check_score_map
from cirlib.metrics.boxes import box_iou_inclusive, quantize_scoremap

try:  # the compiled sweep needs numba; without it the exact OpenCV path runs
    from cirlib.metrics._sweep import level_sweep
except ImportError:  # pragma: no cover - numba is a declared dependency
    level_sweep = None

__all__ = ["boxacc_curves", "best_ious", "best_ious_opencv", "MODES"]

MODES = ("single", "multi")


def _threshold_levels(qmax: int, present: np.ndarray, cam_thresholds: np.ndarray) -> np.ndarray:
    """Canonical level (smallest present value >= cut-off + 1; 256 = empty) for each threshold."""
    cutoff = (cam_thresholds * np.uint8(qmax)).astype(np.int64)  # int(t * max), as the reference
    level = np.clip(cutoff + 1, 0, 256)
    # next_present[L] = smallest present value >= L (256 when none)
    cand = np.where(present, np.arange(256), 256)
    next_present = np.append(np.minimum.accumulate(cand[::-1])[::-1], 256)
    return next_present[level]


def _euler_numbers(q: np.ndarray) -> np.ndarray:
    """4 x Euler number (8-connectivity) of ``q >= L`` for L = 0..256, via 2x2 bit-quads."""
    p = np.full((q.shape[0] + 1 + 1, q.shape[1] + 1 + 1), -1, dtype=np.int16)
    p[1:-1, 1:-1] = q
    a, b, c, d = p[:-1, :-1].ravel(), p[:-1, 1:].ravel(), p[1:, :-1].ravel(), p[1:, 1:].ravel()
    lo1, hi1 = np.minimum(a, b), np.maximum(a, b)
    lo2, hi2 = np.minimum(c, d), np.maximum(c, d)
    s0, s3 = np.minimum(lo1, lo2), np.maximum(hi1, hi2)
    m1, m2 = np.maximum(lo1, lo2), np.minimum(hi1, hi2)
    s1, s2 = np.minimum(m1, m2), np.maximum(m1, m2)
    n = 258
    # a level L is "inside (lo, hi]" when lo < L <= hi: +w at lo+1, -w at hi+1
    diff = (np.bincount(s2 + 1, minlength=n) - np.bincount(s3 + 1, minlength=n)   # Q1: one pixel
            - np.bincount(s0 + 1, minlength=n) + np.bincount(s1 + 1, minlength=n))  # Q3: three
    ad_lo, ad_hi = np.minimum(a, d), np.maximum(a, d)
    bc_lo, bc_hi = np.minimum(b, c), np.maximum(b, c)
    for top_lo, other_hi in ((ad_lo, bc_hi), (bc_lo, ad_hi)):  # QD: the two top pixels diagonal
        sel = top_lo > other_hi
        if sel.any():
            diff -= 2 * np.bincount(other_hi[sel] + 1, minlength=n)
            diff += 2 * np.bincount(top_lo[sel] + 1, minlength=n)
    return np.cumsum(diff)[:257]


def _max_groups(q: np.ndarray) -> np.ndarray:
    """G(L) for L = 0..256: the number of regional-maximum plateaus of ``q`` with value >= L.

    A regional maximum is an 8-connected plateau of equal values whose neighbours are all lower.
    Every 8-component of ``q >= L`` contains one whole such plateau, so G(L) >= C(L).
    """
    h, w = q.shape
    p = np.pad(q.astype(np.int16), 1, constant_values=-1)
    shifts = [(dy, dx) for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    nb = p[0:h, 0:w]
    for dy, dx in shifts:
        nb = np.maximum(nb, p[dy:dy + h, dx:dx + w])
    centre = p[1:-1, 1:-1]
    weak = centre >= nb  # weak local maxima: no higher neighbour
    n, labels = cv2.connectedComponents(weak.view(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(257, dtype=np.int64)
    # a group whose plateau continues into a pixel with a higher neighbour is not a regional max
    not_weak = np.pad(~weak, 1, constant_values=False)
    leaks = np.zeros_like(weak)
    for dy, dx in shifts:
        leaks |= (p[dy:dy + h, dx:dx + w] == centre) & not_weak[dy:dy + h, dx:dx + w]
    leaks &= weak
    values = np.full(n, -1, dtype=np.int64)
    values[labels[weak]] = q[weak]
    values[labels[leaks]] = -1
    values = values[1:]
    hist = np.bincount(values[values >= 0], minlength=256)
    return np.append(np.cumsum(hist[::-1])[::-1], 0)


def _level_bboxes(q: np.ndarray) -> np.ndarray:
    """Bounding box (xmin, ymin, xmax, ymax) of ``q >= L`` for L = 0..255 (garbage when empty)."""
    colmax = q.max(axis=0).astype(np.int64)
    rowmax = q.max(axis=1).astype(np.int64)
    levels = np.arange(256)
    out = np.empty((256, 4), dtype=np.int64)
    for k, (m, flip) in enumerate(((colmax, False), (rowmax, False), (colmax, True), (rowmax, True))):
        seq = m[::-1] if flip else m
        first = np.searchsorted(np.maximum.accumulate(seq), levels, side="left")
        out[:, k] = (len(m) - 1 - first) if flip else first
    return out


def _contour_boxes(q: np.ndarray, level: int, bbox: np.ndarray, want_single: bool,
                   want_multi: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """findContours on the crop of ``q >= level``; returns (single box, multi boxes) in full-frame
    coordinates before clipping (x0, y0, x + w, y + h)."""
    x0, y0, x1, y1 = (int(v) for v in bbox)
    crop = q[y0:y1 + 1, x0:x1 + 1]
    binary = (crop >= level).view(np.uint8)
    contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
    k = len(contours)
    if k == 1:
        pts = contours[0].reshape(-1, 2)
        mn, mx = pts.min(0), pts.max(0)
        box = np.array([[mn[0] + x0, mn[1] + y0, mx[0] + 1 + x0, mx[1] + 1 + y0]], dtype=np.int64)
        return box, box
    lengths = np.fromiter((len(c) for c in contours), dtype=np.int64, count=k)
    pts = np.concatenate(contours).reshape(-1, 2).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    mn_x = np.minimum.reduceat(pts[:, 0], starts)
    mn_y = np.minimum.reduceat(pts[:, 1], starts)
    mx_x = np.maximum.reduceat(pts[:, 0], starts)
    mx_y = np.maximum.reduceat(pts[:, 1], starts)
    boxes = np.stack([mn_x + x0, mn_y + y0, mx_x + 1 + x0, mx_y + 1 + y0], axis=1)
    single = None
    if want_single:
        # shoelace areas per contour (exact integers, the same ranking as cv2.contourArea)
        nxt = np.arange(1, len(pts) + 1)
        ends = starts + lengths
        nxt[ends - 1] = starts
        cross = pts[:, 0] * pts[nxt, 1] - pts[nxt, 0] * pts[:, 1]
        area2 = np.abs(np.add.reduceat(cross, starts))
        single = boxes[int(np.argmax(area2))][None]
    return single, (boxes if want_multi else None)


def best_ious(scoremap: np.ndarray, gt_boxes: np.ndarray, cam_thresholds: np.ndarray,
              modes: Sequence[str] = MODES) -> dict[str, np.ndarray]:
    """Best IoU with the GT boxes of the protocol's box(es) at each CAM threshold, per mode.

    Uses the compiled union-find level sweep (:func:`cirlib.metrics._sweep.level_sweep`) when numba
    is installed, else the OpenCV-per-level path (:func:`best_ious_opencv`); both are exact.

    Args:
        scoremap: validated ``(H, W)`` float map in [0, 1].
        gt_boxes: ``(k, 4)`` GT boxes, inclusive corners.
        cam_thresholds: 1-D thresholds.
        modes: subset of ``("single", "multi")``.

    Returns:
        ``{mode: (len(cam_thresholds),) float64}``; "single" is the IoU of the largest contour's box,
        "multi" the best IoU over every contour's box. Identical to the reference implementation.
    """
    if level_sweep is None:
        return best_ious_opencv(scoremap, gt_boxes, cam_thresholds, modes)
    q = np.ascontiguousarray(quantize_scoremap(scoremap))
    h, w = q.shape
    hist = np.bincount(q.ravel(), minlength=256)
    present = hist > 0
    qmax = int(np.flatnonzero(present)[-1])
    levels_per_thr = _threshold_levels(qmax, present, cam_thresholds)
    levels = np.unique(levels_per_thr)
    need = np.zeros(256, dtype=bool)
    need[levels[levels < 256]] = True
    gt = np.ascontiguousarray(np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4))
    multi, single, single_ok = level_sweep(q, gt, need)
    empty_iou = float(box_iou_inclusive(np.zeros((1, 4), dtype=np.int64), gt).max())
    multi = np.append(multi, empty_iou)  # index 256: empty image, box [0, 0, 0, 0]
    single = np.append(single, empty_iou)
    out: dict[str, np.ndarray] = {}
    if "single" in modes:
        todo = np.flatnonzero(need & ~single_ok)
        if len(todo):
            bboxes = _level_bboxes(q)
            for level in todo:
                box = _contour_boxes(q, int(level), bboxes[level], True, False)[0].copy()
                box[:, 2] = np.minimum(box[:, 2], w - 1)
                box[:, 3] = np.minimum(box[:, 3], h - 1)
                single[level] = box_iou_inclusive(box, gt).max()
        out["single"] = single[levels_per_thr]
    if "multi" in modes:
        out["multi"] = multi[levels_per_thr]
    return out


def best_ious_opencv(scoremap: np.ndarray, gt_boxes: np.ndarray, cam_thresholds: np.ndarray,
                     modes: Sequence[str] = MODES) -> dict[str, np.ndarray]:
    """:func:`best_ious` without numba: a certificate or one cropped ``findContours`` per level.

    Same arguments and results as :func:`best_ious`; slower on maps with many components.
    """
    q = quantize_scoremap(scoremap)
    h, w = q.shape
    hist = np.bincount(q.ravel(), minlength=256)
    present = hist > 0
    qmax = int(np.flatnonzero(present)[-1])
    levels_per_thr = _threshold_levels(qmax, present, cam_thresholds)
    levels, inverse = np.unique(levels_per_thr, return_inverse=True)
    want_single, want_multi = "single" in modes, "multi" in modes

    nonempty_levels = levels[levels < 256]
    one_contour = np.zeros(257, dtype=bool)
    if len(nonempty_levels):
        euler4 = _euler_numbers(q)
        groups = _max_groups(q)
        one_contour = (euler4 == 4) & (groups == 1)
        bboxes = _level_bboxes(q)

    # per level: (n_boxes) boxes (x0, y0, x + w, y + h) before clipping, for each mode
    nlev = len(levels)
    base = np.zeros((nlev, 4), dtype=np.int64)  # empty image -> [0, 0, 0, 0]
    fallback = np.zeros(nlev, dtype=bool)
    ne = levels < 256
    if ne.any():
        bb = bboxes[levels[ne]]
        base[ne] = bb + np.array([0, 0, 1, 1])
        fallback[ne] = ~one_contour[levels[ne]]
    single = {i: None for i in np.flatnonzero(fallback)}
    multi = dict(single)
    for i in single:
        single[i], multi[i] = _contour_boxes(q, int(levels[i]), bboxes[levels[i]], want_single, want_multi)

    gt = np.asarray(gt_boxes)
    out: dict[str, np.ndarray] = {}
    for mode, extra in (("single", single), ("multi", multi)):
        if mode not in modes:
            continue
        if extra:
            boxes = [extra[i] if i in extra else base[i:i + 1] for i in range(nlev)]
            counts = np.fromiter((len(b) for b in boxes), dtype=np.int64, count=nlev)
            allb = np.concatenate(boxes)
        else:
            counts, allb = None, base.copy()
        allb[:, 2] = np.minimum(allb[:, 2], w - 1)
        allb[:, 3] = np.minimum(allb[:, 3], h - 1)
        iou = box_iou_inclusive(allb, gt).max(1)
        if counts is not None:
            iou = np.maximum.reduceat(iou, np.concatenate(([0], np.cumsum(counts)[:-1])))
        out[mode] = iou[inverse]
    return out


def boxacc_curves(scoremaps: Any, gt_boxes: Any, cam_thresholds: Sequence[float] | np.ndarray,
                  iou_thresholds: Sequence[float] = (30, 50, 70),
                  multi_contour: bool = False) -> np.ndarray:
    r"""BoxAcc (percent) at every CAM threshold, for each IoU threshold.

    .. math::
        \mathrm{BoxAcc}(t, \delta) = \frac{100}{N} \sum_{n=1}^{N}
        \mathbb{1}\big[\max_{b \in B_n(t)} \max_{g \in G_n} \mathrm{IoU}(b, g) \ge \delta / 100\big]

    with :math:`B_n(t)` the protocol's boxes of map :math:`n` at threshold :math:`t` (largest
    contour, or every contour when ``multi_contour``). Exactly equal to
    :func:`cirlib.metrics.reference.reference_boxacc_curves`, much faster.

    Args:
        scoremaps: float ``(N, H, W)`` array or tensor in [0, 1], or an iterable of ``(H, W)`` maps.
        gt_boxes: list of N ``(k_i, 4)`` arrays, x0 y0 x1 y1 inclusive.
        cam_thresholds: 1-D CAM thresholds, e.g. ``numpy.arange(0, 1, 0.001)``.
        iou_thresholds: IoU thresholds in percent.
        multi_contour: every contour's box (MaxBoxAccV2) instead of the largest contour's.

    Returns:
        ``(len(iou_thresholds), len(cam_thresholds))`` float64 array in percent.

    Raises:
        ValueError: on maps outside [0, 1] or with NaN (naming the map index), or malformed boxes.
    """
    thr = as_thresholds(cam_thresholds, "cam_thresholds")
    ious = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    mode = "multi" if multi_contour else "single"
    correct = np.zeros((len(ious), len(thr)))
    gts = as_box_list(gt_boxes)
    n = 0
    for m in as_score_maps(scoremaps):
        if n >= len(gts):
            raise ValueError(f"more score maps than gt_boxes entries ({len(gts)}); pass one (k, 4) array per map.")
        m = check_score_map(m, n)
        best = best_ious(m, gts[n], thr, (mode,))[mode]
        for j, delta in enumerate(ious):
            correct[j] += best >= (delta / 100)
        n += 1
    if n != len(gts):
        raise ValueError(f"got {n} score maps but {len(gts)} entries in gt_boxes; pass one per map.")
    return correct * 100.0 / max(n, 1)
