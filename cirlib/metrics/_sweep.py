r"""One-pass level sweeps (union-find) giving every contour box of every level, compiled with numba.

For a uint8 map :math:`q` and a level :math:`L`, OpenCV's ``findContours(q >= L, RETR_TREE)``
returns one *outer* contour per 8-connected foreground component and one *hole* contour per
4-connected background component that does not touch the image border. Their ``boundingRect``
boxes are (``x + w`` is one past the last pixel):

* outer contour of component :math:`C`: :math:`[x_0, y_0, x_1 + 1, y_1 + 1]`, with
  :math:`x_0..x_1, y_0..y_1` the pixel extent of :math:`C`;
* hole contour of hole :math:`h`: :math:`[x_0 - 1, y_0 - 1, x_1 + 2, y_1 + 2]` (the hole's border
  runs through the foreground pixels 4-adjacent to it, one pixel outside its extent).

Foreground components only merge as the level falls, and holes (background components) only merge
as it rises, so two union-find sweeps over the pixels sorted by value (counting sort, 256 values)
give the boxes of all levels in :math:`O(HW\,\alpha)` plus the per-level work on the live components.

**Single contour.** ``cv2.contourArea`` of the outer contour of :math:`C` equals the area of the
union of the 2x2 pixel cells of the *filled* component :math:`\bar C` (:math:`C` plus everything it
encloses), counting a cell with 4 pixels of :math:`\bar C` as 1 and with 3 as 1/2:

.. math:: A(C) = n_4(\bar C) + \tfrac12\, n_3(\bar C) \ge a(C) := n_4(C) + \tfrac12\, n_3(C).

Every cell with at least three foreground pixels lies in one component, so :math:`a(C)` is kept per
union-find root (in half units). A hole's polygon lies in the box of its contour, so
:math:`A(C) \le a(C) + \sum_h (w_h + 1)(h_h + 1)` (sum over all holes of the level). Hole contours
and components nested in holes are enclosed by an outer contour that precedes them in OpenCV's
order and has at least their area, so the largest contour is an outer one. The component
:math:`C^*` with the largest :math:`a` is *certified* the largest contour when no hole exists and its
:math:`a` is the unique maximum, or when :math:`a(C^*) > a(C') + \sum_h (w_h+1)(h_h+1)` for every
other :math:`C'`. Levels without a certificate are flagged for an exact OpenCV call by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["level_sweep"]


@njit(cache=True, inline="always")
def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


@njit(cache=True, inline="always")
def _best_iou(bx0: int, by0: int, bx1: int, by1: int, gt: np.ndarray) -> float:
    """max over GT boxes of the inclusive IoU, bit-identical to ``box_iou_inclusive``."""
    best = 0.0
    area_a = (bx1 - bx0 + 1) * (by1 - by0 + 1)
    for g in range(gt.shape[0]):
        iw = min(bx1, gt[g, 2]) - max(bx0, gt[g, 0]) + 1
        ih = min(by1, gt[g, 3]) - max(by0, gt[g, 1]) + 1
        if iw < 0:
            iw = 0
        if ih < 0:
            ih = 0
        inter = iw * ih
        den = area_a + (gt[g, 2] - gt[g, 0] + 1) * (gt[g, 3] - gt[g, 1] + 1) - inter
        iou = 0.0 if den <= 0 else inter / den
        if iou > best:
            best = iou
    return best


@njit(cache=True)
def _pixel_order(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counting sort: pixel indices grouped by value; ``start[v]:start[v + 1]`` holds value ``v``."""
    n = flat.shape[0]
    start = np.zeros(257, dtype=np.int64)
    for i in range(n):
        start[flat[i] + 1] += 1
    for v in range(256):
        start[v + 1] += start[v]
    fill = start[:256].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        v = flat[i]
        order[fill[v]] = i
        fill[v] += 1
    return order, start


@njit(cache=True)
def level_sweep(q: np.ndarray, gt: np.ndarray, need: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best IoUs of every needed level in both contour modes.

    Args:
        q: ``(H, W)`` uint8 map (C-contiguous).
        gt: ``(k, 4)`` float64 GT boxes, inclusive corners.
        need: ``(256,)`` bool, levels ``L`` (``F = q >= L``, ``L`` a value present in ``q``) to solve.

    Returns:
        ``(multi, single, single_ok)``, each ``(256,)``: the best IoU over every contour's box, the
        IoU of the largest contour's box, and whether that largest contour was certified (when
        ``False`` the caller must find it with OpenCV).
    """
    h, w = q.shape
    n = h * w
    flat = q.ravel()
    order, start = _pixel_order(flat)
    multi = np.zeros(256)
    single = np.zeros(256)
    single_ok = np.zeros(256, dtype=np.bool_)
    hole_best = np.zeros(256)
    # holes of each needed level: enclosing foreground pixel and area bound (half units)
    hole_off = np.zeros(257, dtype=np.int64)
    cap = 1024
    hole_e = np.empty(cap, dtype=np.int32)
    hole_b2 = np.empty(cap, dtype=np.int64)
    n_holes = 0

    parent = np.full(n + 1, -1, dtype=np.int32)
    size = np.zeros(n + 1, dtype=np.int32)
    bx0 = np.zeros(n + 1, dtype=np.int32)
    by0 = np.zeros(n + 1, dtype=np.int32)
    bx1 = np.zeros(n + 1, dtype=np.int32)
    by1 = np.zeros(n + 1, dtype=np.int32)
    pmin = np.zeros(n + 1, dtype=np.int32)
    area2 = np.zeros(n + 1, dtype=np.int64)
    iou_cache = np.zeros(n + 1)
    dirty = np.zeros(n + 1, dtype=np.bool_)
    roots = np.empty(n + 1, dtype=np.int32)  # live roots (swap-remove list)
    rpos = np.empty(n + 1, dtype=np.int32)

    # ---- holes: background {q < L}, 4-connected, grows as L rises; `outside` = the zero frame ----
    outside = n
    parent[outside] = outside
    size[outside] = n + 1
    nroots = 0
    seen_any = False
    for v in range(256):
        if start[v + 1] == start[v]:
            continue
        hole_off[v] = n_holes
        if seen_any and need[v]:  # the background of level v is everything added so far
            best = 0.0
            if n_holes + nroots > cap:
                while n_holes + nroots > cap:
                    cap *= 2
                e2 = np.empty(cap, dtype=np.int32)
                e2[:n_holes] = hole_e[:n_holes]
                hole_e = e2
                b2 = np.empty(cap, dtype=np.int64)
                b2[:n_holes] = hole_b2[:n_holes]
                hole_b2 = b2
            for k in range(nroots):
                r = roots[k]
                if dirty[r]:
                    iou_cache[r] = _best_iou(bx0[r] - 1, by0[r] - 1, min(bx1[r] + 2, w - 1),
                                             min(by1[r] + 2, h - 1), gt)
                    dirty[r] = False
                if iou_cache[r] > best:
                    best = iou_cache[r]
                hole_e[n_holes] = pmin[r] - 1  # left of its raster-first pixel: the enclosing component
                hole_b2[n_holes] = 2 * (bx1[r] - bx0[r] + 2) * (by1[r] - by0[r] + 2)
                n_holes += 1
            hole_best[v] = best
        hole_off[v + 1] = n_holes
        seen_any = True
        for k in range(start[v], start[v + 1]):
            p = order[k]
            y = p // w
            x = p - y * w
            parent[p] = p
            size[p] = 1
            bx0[p] = x
            bx1[p] = x
            by0[p] = y
            by1[p] = y
            pmin[p] = p
            dirty[p] = True
            roots[nroots] = p
            rpos[p] = nroots
            nroots += 1
            rp = p
            for d in range(5):
                if d == 0:
                    if x == 0 or y == 0 or x == w - 1 or y == h - 1:
                        other = outside
                    else:
                        continue
                elif d == 1:
                    if x == 0:
                        continue
                    other = p - 1
                elif d == 2:
                    if x == w - 1:
                        continue
                    other = p + 1
                elif d == 3:
                    if y == 0:
                        continue
                    other = p - w
                else:
                    if y == h - 1:
                        continue
                    other = p + w
                if parent[other] < 0:
                    continue
                ro = _find(parent, other)
                if ro == rp:
                    continue
                ra, rb = rp, ro
                if rb == outside or (ra != outside and size[rb] > size[ra]):
                    ra, rb = rb, ra
                parent[rb] = ra  # ra absorbs rb; `outside` is never listed
                size[ra] += size[rb]
                bx0[ra] = min(bx0[ra], bx0[rb])
                by0[ra] = min(by0[ra], by0[rb])
                bx1[ra] = max(bx1[ra], bx1[rb])
                by1[ra] = max(by1[ra], by1[rb])
                pmin[ra] = min(pmin[ra], pmin[rb])
                dirty[ra] = True
                j = rpos[rb]
                nroots -= 1
                last = roots[nroots]
                roots[j] = last
                rpos[last] = j
                rp = ra

    # ---- outer contours: foreground {q >= L}, 8-connected, grows as L falls ----
    for i in range(n):
        parent[i] = -1
    extra2 = np.zeros(n, dtype=np.int64)
    cells = np.zeros(max(h - 1, 0) * max(w - 1, 0), dtype=np.uint8)
    cw = w - 1
    nroots = 0
    for v in range(255, -1, -1):
        if start[v + 1] == start[v]:
            continue
        for k in range(start[v], start[v + 1]):
            p = order[k]
            y = p // w
            x = p - y * w
            parent[p] = p
            size[p] = 1
            bx0[p] = x
            bx1[p] = x
            by0[p] = y
            by1[p] = y
            area2[p] = 0
            dirty[p] = True
            roots[nroots] = p
            rpos[p] = nroots
            nroots += 1
            rp = p
            for dy in range(-1, 2):
                yy = y + dy
                if yy < 0 or yy >= h:
                    continue
                for dx in range(-1, 2):
                    xx = x + dx
                    if xx < 0 or xx >= w or (dx == 0 and dy == 0):
                        continue
                    other = yy * w + xx
                    if parent[other] < 0:
                        continue
                    ro = _find(parent, other)
                    if ro == rp:
                        continue
                    ra, rb = rp, ro
                    if size[rb] > size[ra]:
                        ra, rb = rb, ra
                    parent[rb] = ra
                    size[ra] += size[rb]
                    area2[ra] += area2[rb]
                    bx0[ra] = min(bx0[ra], bx0[rb])
                    by0[ra] = min(by0[ra], by0[rb])
                    bx1[ra] = max(bx1[ra], bx1[rb])
                    by1[ra] = max(by1[ra], by1[rb])
                    dirty[ra] = True
                    j = rpos[rb]
                    nroots -= 1
                    last = roots[nroots]
                    roots[j] = last
                    rpos[last] = j
                    rp = ra
            # the 2x2 cells containing p: a 3rd / 4th foreground pixel adds 1/2 to the area
            for cy in range(y - 1, y + 1):
                if cy < 0 or cy >= h - 1:
                    continue
                for cx in range(x - 1, x + 1):
                    if cx < 0 or cx >= w - 1:
                        continue
                    c = cy * cw + cx
                    cells[c] += 1
                    if cells[c] >= 3:
                        area2[rp] += 1
        if not need[v]:
            continue
        best = hole_best[v]
        top = -1
        top_a = -1
        n_top = 0
        for k in range(nroots):
            r = roots[k]
            a = area2[r]
            if a > top_a:
                top_a = a
                top = r
                n_top = 1
            elif a == top_a:
                n_top += 1
            if dirty[r]:
                iou_cache[r] = _best_iou(bx0[r], by0[r], min(bx1[r] + 1, w - 1), min(by1[r] + 1, h - 1), gt)
                dirty[r] = False
            if iou_cache[r] > best:
                best = iou_cache[r]
        multi[v] = best
        ok = n_top == 1
        if ok and hole_off[v + 1] > hole_off[v] and nroots > 1:
            # A(C') <= a(C') + sum of the bounds of the holes C' encloses, for every C' != top
            for k in range(hole_off[v], hole_off[v + 1]):
                extra2[_find(parent, hole_e[k])] += hole_b2[k]
            for k in range(nroots):
                r = roots[k]
                if r != top and area2[r] + extra2[r] >= top_a:
                    ok = False
            for k in range(hole_off[v], hole_off[v + 1]):
                extra2[_find(parent, hole_e[k])] = 0
        single_ok[v] = ok
        if ok:
            single[v] = iou_cache[top]
    return multi, single, single_ok
