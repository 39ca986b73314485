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
as it rises, so union-find sweeps over the pixels sorted by value (counting sort, 256 values) give
the boxes of all levels in :math:`O(HW\,\alpha)` plus the per-level work on the live components.
The foreground sweep reads each added pixel's 8-neighbour mask: consecutive ring neighbours are
4-adjacent, so one ``find`` per run of foreground neighbours suffices, and table lookups give what
the pixel adds to the quantities below. The per-pixel code indexes with ``np.uintp``: numba then
skips the negative-index wraparound it adds to every signed index (every index here is already in
range; the wraparound code costs the foreground sweep about an eighth of its time). The hole sweep
is needed for the hole boxes of multi-contour mode only.

**Single contour.** ``cv2.contourArea`` of the outer contour of :math:`C` equals the area of the
union of the 2x2 pixel cells of the *filled* component :math:`\bar C` (:math:`C` plus everything it
encloses), counting a cell with 4 pixels of :math:`\bar C` as 1 and with 3 as 1/2:

.. math:: A(C) = n_4(\bar C) + \tfrac12\, n_3(\bar C) \ge a(C) := n_4(C) + \tfrac12\, n_3(C).

All foreground pixels of a 2x2 cell lie in one component (any two of them are 8-adjacent), so
:math:`a(C)` and the Euler number :math:`\chi(C) = 1 - (\text{holes of } C)`, by bit quads
:math:`4\chi = n(Q_1) - n(Q_3) - 2 n(Q_D)` (Gray 1971), are sums over cells kept per union-find root.
A component with :math:`\chi(C) = 1` encloses nothing: :math:`A(C) = a(C)`. One with holes has
:math:`a(C) < A(C) \le (x_1 - x_0)(y_1 - y_0)` (filling the raster-first pixel of a hole turns
its up-left cell from 2 or 3 pixels of :math:`C` to 3 or 4; the contour runs through pixel centres
inside the box). Hole contours and components nested in holes are enclosed by an outer contour that precedes
them in OpenCV's order and has at least their area, so the largest contour is an outer one. The component
:math:`C^*` with the largest :math:`a` (ties: the largest raster-first pixel, as OpenCV lists
top-level contours in reverse raster order) is *certified* the largest contour when no other holed
component's bound (:func:`_area2_bound`) reaches :math:`a(C^*)`. Otherwise the exact :math:`A` of
the components that may be the largest, in decreasing bound order until no bound reaches the
largest found, is the shoelace sum over the outer border traced as OpenCV traces it
(:func:`_outer_area2`); only a tie for the largest exact area involving a holed component is
flagged for an exact OpenCV call by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["level_sweep", "quantize_checked"]


@njit(cache=True, inline="always", error_model="numpy")
def _find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[np.uintp(root)] != root:
        root = parent[np.uintp(root)]
    while parent[np.uintp(i)] != root:  # path compression
        nxt = parent[np.uintp(i)]
        parent[np.uintp(i)] = root
        i = nxt
    return root


@njit(cache=True, inline="always", error_model="numpy")
def _add_pixel(p, r, x, y, parent, size, bx0, by0, bx1, by1, pmin, dirty) -> None:
    """Pixel ``p`` (padded coordinates ``x, y``) joins the component of root ``r`` (its own node stays
    cold)."""
    parent[np.uintp(p)] = r
    size[np.uintp(r)] += 1
    bx0[np.uintp(r)] = min(bx0[np.uintp(r)], x)
    by0[np.uintp(r)] = min(by0[np.uintp(r)], y)
    bx1[np.uintp(r)] = max(bx1[np.uintp(r)], x)
    by1[np.uintp(r)] = max(by1[np.uintp(r)], y)
    pmin[np.uintp(r)] = min(pmin[np.uintp(r)], p)
    dirty[np.uintp(r)] = True


@njit(cache=True, inline="always", error_model="numpy")
def _absorb(ra, rb, parent, size, bx0, by0, bx1, by1, pmin, dirty, roots, rpos, nroots) -> int:
    """Root ``ra`` absorbs root ``rb`` (size, box, raster-first pixel); ``rb`` leaves the root list.

    Returns the new number of listed roots (swap-remove).
    """
    parent[rb] = ra
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
    return nroots


@njit(cache=True, inline="always", error_model="numpy")
def _push_root(p, parent, roots, rpos, nroots) -> int:
    """``p`` starts a new component and joins the root list; returns the new number of roots."""
    parent[p] = p
    roots[nroots] = p
    rpos[p] = nroots
    return nroots + 1


@njit(cache=True, inline="always", error_model="numpy")
def _write_totals(r, x0, y0, x1, y1, first, a2, e4, count, size, bx0, by0, bx1, by1, pmin, area2, euler4,
                  dirty) -> None:
    """Root ``r`` takes the attributes kept in local variables (its IoU is recomputed if its box moved)."""
    if bx0[r] != x0 or by0[r] != y0 or bx1[r] != x1 or by1[r] != y1:
        dirty[r] = True
    bx0[r] = x0
    by0[r] = y0
    bx1[r] = x1
    by1[r] = y1
    pmin[r] = first
    area2[r] = a2
    euler4[r] = e4
    size[r] = count


@njit(cache=True, inline="always", error_model="numpy")
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


@njit(cache=True, inline="always", error_model="numpy")
def _area2_bound(r, area2, size, bx0, by0, bx1, by1) -> int:
    r"""An upper bound of :math:`2 A(C)` for the holed component of root ``r``, the smaller of two:
    the contour runs through pixel centres inside the box, :math:`A \le (x_1 - x_0)(y_1 - y_0)`; and
    filling the holes (at most the box's pixels outside :math:`C`) raises each of the four 2x2 cells
    around a hole pixel by at most 1, :math:`A \le a(C) + 4\,(|\text{box}| - |C|)`.
    """
    dx = bx1[r] - bx0[r]
    dy = by1[r] - by0[r]
    return min(2 * dx * dy, area2[r] + 8 * ((dx + 1) * (dy + 1) - size[r]))


@njit(cache=True, error_model="numpy")
def _outer_area2(q: np.ndarray, level: int, sx: int, sy: int) -> int:
    """Exact ``2 * cv2.contourArea`` of the outer contour of the component of ``q >= level`` whose
    raster-first pixel is ``(sx, sy)``: the shoelace sum over the border OpenCV traces.

    Suzuki & Abe's border following (1985), as ``findContours`` runs it: the first foreground
    8-neighbour clockwise from the west is the border's last pixel; from each border pixel the next
    is the first foreground neighbour counter-clockwise after the one it came from; the trace ends
    on its way from that last pixel back to the start. Its cost is the border's length, not the box's area.
    """
    h, w = q.shape
    last = -1
    for k in range(8):  # clockwise from the west: W, NW, N, NE, E, SE, S, SW
        d = (4 - k) & 7
        x = sx + _DX[d]
        y = sy + _DY[d]
        if 0 <= x < w and 0 <= y < h and q[y, x] >= level:
            last = d
            break
    if last < 0:  # a single pixel
        return 0
    lx = sx + _DX[last]
    ly = sy + _DY[last]
    x3, y3 = sx, sy
    back = last  # the direction from the current border pixel to the previous one
    area2 = 0
    while True:
        d = back
        x4, y4 = x3, y3
        for k in range(1, 9):  # counter-clockwise after the previous pixel (found at the latest at k = 8)
            d = (back + k) & 7
            x4 = x3 + _DX[d]
            y4 = y3 + _DY[d]
            if 0 <= x4 < w and 0 <= y4 < h and q[y4, x4] >= level:
                break
        area2 += x3 * y4 - x4 * y3
        if x4 == sx and y4 == sy and x3 == lx and y3 == ly:
            break
        back = (d + 4) & 7
        x3, y3 = x4, y4
    return abs(area2)


_DX = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)  # OpenCV's chain codes: E, NE, N, NW, W, SW, S, SE
_DY = np.array([0, -1, -1, -1, 0, 1, 1, 1], dtype=np.int64)


def _ring_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""What adding a pixel does, per 8-neighbour mask (bit ``d`` set: ring neighbour ``d`` is foreground).

    * ``n_runs``, ``run_start``: the runs of consecutive foreground ring neighbours and the first
      position of each. Ring neighbours ``d`` and ``d + 1`` are 4-adjacent, so a run lies in one
      component: one ``find`` per run instead of one per neighbour.
    * ``area2_gain``: the gain of :math:`2 a(C)`; each of the pixel's four 2x2 cells whose other
      three pixels hold 2 or 3 foreground pixels goes to 3 (worth 1/2) or 4 (worth 1).
    * ``euler4_gain``: the gain of :math:`4 \chi(C)`, the Euler number by bit quads (Gray 1971,
      8-connected foreground): :math:`4\chi = n(Q_1) - n(Q_3) - 2 n(Q_D)` over the cells holding one,
      three, or two diagonal foreground pixels. :math:`\chi(C) = 1 - (\text{holes of } C)`.

    Ring order W, NW, N, NE, E, SE, S, SW; the four cells as (side, diagonal, side) ring positions:
    (0, 1, 2), (2, 3, 4), (4, 5, 6), (6, 7, 0).
    """

    def quad(bits: tuple[int, int, int, int]) -> int:  # (this pixel, side, diagonal, side)
        k = sum(bits)
        if k == 1:
            return 1
        if k == 3:
            return -1
        if k == 2 and bits[0] == bits[2]:  # the two diagonal pairs: (pixel, diagonal), (side, side)
            return -2
        return 0

    n_runs = np.zeros(256, dtype=np.int64)
    run_start = np.zeros((256, 4), dtype=np.int64)
    area2_gain = np.zeros(256, dtype=np.int64)
    euler4_gain = np.zeros(256, dtype=np.int64)
    for mask in range(256):
        bit = [(mask >> d) & 1 for d in range(8)]
        for d in range(8):
            if bit[d] and not bit[d - 1]:  # a run starts at d (cyclically)
                run_start[mask, n_runs[mask]] = d
                n_runs[mask] += 1
        if mask == 255:  # one run with no start
            n_runs[mask] = 1
        for s1, dg, s2 in ((0, 1, 2), (2, 3, 4), (4, 5, 6), (6, 7, 0)):
            area2_gain[mask] += bit[s1] + bit[dg] + bit[s2] >= 2
            euler4_gain[mask] += quad((1, bit[s1], bit[dg], bit[s2])) - quad((0, bit[s1], bit[dg], bit[s2]))
    return n_runs, run_start, area2_gain, euler4_gain


_N_RUNS, _RUN_START, _AREA2_GAIN, _EULER4_GAIN = _ring_tables()


@njit(cache=True, error_model="numpy")
def _pixel_order(q: np.ndarray, order: np.ndarray, start: np.ndarray) -> None:
    """Counting sort of the pixels by value, as indices into the 1-pixel-padded grid.

    Fills ``order[start[v]:start[v + 1]]`` with the padded indices ``(y + 1) (W + 2) + x + 1`` of
    the pixels of value ``v``, in raster order.
    """
    h, w = q.shape
    w2 = w + 2
    # four interleaved histograms: runs of equal values would chain every increment on one counter
    hist = np.zeros((4, 256), dtype=np.int64)
    for y in range(h):
        for x in range(w):
            hist[x & 3, q[y, x]] += 1
    start[0] = 0
    for v in range(256):
        start[v + 1] = start[v] + hist[0, v] + hist[1, v] + hist[2, v] + hist[3, v]
    fill = start[:256].copy()
    for y in range(h):
        row = (y + 1) * w2 + 1
        run_value = q[y, 0]  # a run of equal values keeps its fill position in a register, not in memory
        at = fill[run_value]
        for x in range(w):
            v = q[y, x]
            if v != run_value:
                fill[run_value] = at
                run_value = v
                at = fill[v]
            order[at] = row + x
            at += 1
        fill[run_value] = at


_WORKSPACES: dict[tuple[int, int], tuple] = {}


def _workspace(h: int, w: int) -> tuple:
    """Per-shape node arrays, allocated once and reused (fresh pages cost page faults per map)."""
    ws = _WORKSPACES.get((h, w))
    if ws is None:
        if len(_WORKSPACES) >= 4:
            _WORKSPACES.clear()
        n = (h + 2) * (w + 2)
        idx = np.arange(n + 1)
        ws = (np.empty(n + 1, dtype=np.int32),                 # parent
              np.empty(n + 1, dtype=np.int32),                 # size
              np.empty(n + 1, dtype=np.int32), np.empty(n + 1, dtype=np.int32),  # bx0, by0
              np.empty(n + 1, dtype=np.int32), np.empty(n + 1, dtype=np.int32),  # bx1, by1
              np.empty(n + 1, dtype=np.int32),                 # pmin
              np.empty(n + 1, dtype=np.int64),                 # area2
              np.zeros(n + 1),                                 # iou_cache
              np.empty(n + 1, dtype=np.bool_),                 # dirty
              np.empty(n + 1, dtype=np.int32), np.empty(n + 1, dtype=np.int32),  # roots, rpos
              np.empty(n + 1, dtype=np.int32),                 # euler4
              np.empty(n, dtype=np.uint8),                     # fg: pixel already added
              (idx % (w + 2)).astype(np.int32), (idx // (w + 2)).astype(np.int32),  # x, y of nodes
              np.empty(h * w, dtype=np.int32), np.empty(257, dtype=np.int64))       # order, start
        _WORKSPACES[(h, w)] = ws
    return ws


@njit(cache=True, error_model="numpy")
def _quantize_into(scoremap: np.ndarray, out: np.ndarray) -> bool:
    """``out = (float64(scoremap) * 255).astype(uint8)`` (:func:`cirlib.metrics.boxes.quantize_scoremap`)
    when every value lies in [0, 1]; ``False`` (``out`` half written) at the first one that does not."""
    h, w = scoremap.shape
    for y in range(h):
        for x in range(w):
            v = np.float64(scoremap[y, x])
            if not (v >= 0.0 and v <= 1.0):  # NaN fails both comparisons
                return False
            out[y, x] = np.uint8(v * 255.0)  # truncation, as NumPy's cast (v * 255 lies in [0, 255])
    return True


_QUANTIZED: dict[tuple[int, int], np.ndarray] = {}


def quantize_checked(scoremap: np.ndarray) -> np.ndarray | None:
    """The uint8 map of a float32/float64 ``(H, W)`` map in [0, 1], in one pass that also checks the
    range; ``None`` when a value is NaN or outside [0, 1] (the caller names the problem).

    The result is a per-shape buffer (fresh pages cost page faults per map), valid until the next call.
    """
    out = _QUANTIZED.get(scoremap.shape)
    if out is None:
        if len(_QUANTIZED) >= 4:
            _QUANTIZED.clear()
        out = _QUANTIZED[scoremap.shape] = np.empty(scoremap.shape, dtype=np.uint8)
    return out if _quantize_into(np.ascontiguousarray(scoremap), out) else None


@njit(cache=True, error_model="numpy")
def _reset_nodes(ws: tuple) -> None:
    """Every node a singleton: size 1, box its own pixel, pmin itself, area and Euler sum 0."""
    parent, size, bx0, by0, bx1, by1, pmin, area2, _, dirty, _, _, euler4, fg, xs, ys, _, _ = ws
    for p in range(parent.shape[0]):
        parent[p] = -1
        size[p] = 1
        bx0[p] = xs[p]
        bx1[p] = xs[p]
        by0[p] = ys[p]
        by1[p] = ys[p]
        pmin[p] = p
        area2[p] = 0
        euler4[p] = 0
        dirty[p] = True
    fg[:] = 0


@njit(cache=True, error_model="numpy")
def _fg_pass(q: np.ndarray, h: int, w: int, gt: np.ndarray, need: np.ndarray, want_single: bool,
             want_multi: bool, hole_best: np.ndarray, ws: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outer contours: foreground ``{q >= L}``, 8-connected, grows as ``L`` falls.

    Returns ``(multi, single, single_ok)``: per level the best IoU over the outer boxes and
    ``hole_best`` (when ``want_multi``), the IoU of the largest contour's box, and whether that
    choice is certified (when ``want_single``).
    """
    w2 = w + 2
    n = (h + 2) * w2
    inv_w2 = 1.0 / w2  # a node's row and column from its index without a division or a table lookup
    ring = np.array([-1, -w2 - 1, -w2, -w2 + 1, 1, w2 + 1, w2, w2 - 1], dtype=np.int64)
    multi = np.zeros(256)
    single = np.zeros(256)
    single_ok = np.zeros(256, dtype=np.bool_)
    # the holed components that may be the largest and their bounds, allocated at the first level
    # the area bounds leave open
    holed_roots = np.empty(0, dtype=np.int64)
    holed_bounds = np.empty(0, dtype=np.int64)
    # per node: size, box (padded coordinates), raster-first pixel, 2a, 4 chi, IoU cache;
    # roots/rpos: the live roots (swap-remove list); fg: the pixels added so far
    parent, size, bx0, by0, bx1, by1, pmin, area2, iou_cache, dirty, roots, rpos, euler4, fg, _, _, order, start = ws
    fg[:] = 0  # only the nodes of added pixels are read, and a root's attributes are set when it starts
    nroots = 0
    # The "hot" root (the largest component, as a rule) keeps its attributes in local variables:
    # a pixel joining it updates no array; they are written back before anything reads them.
    # While there is one component a joining pixel needs no find either.
    hot = -1
    hx0 = hy0 = hx1 = hy1 = hpmin = 0
    ha2 = he4 = hsize = 0
    for v in range(255, -1, -1):
        if start[v + 1] == start[v]:
            continue
        for k in range(start[v], start[v + 1]):
            p = order[np.uintp(k)]
            py = np.int64((p + 0.5) * inv_w2)  # exact: (p + 1/2) / (W + 2) is 1/(2W + 4) or more off an integer
            px = p - py * w2
            mask = (fg[np.uintp(p - 1)] | (fg[np.uintp(p - w2 - 1)] << 1) | (fg[np.uintp(p - w2)] << 2)
                    | (fg[np.uintp(p - w2 + 1)] << 3) | (fg[np.uintp(p + 1)] << 4) | (fg[np.uintp(p + w2 + 1)] << 5)
                    | (fg[np.uintp(p + w2)] << 6) | (fg[np.uintp(p + w2 - 1)] << 7))
            fg[np.uintp(p)] = 1
            runs = _N_RUNS[np.uintp(mask)]
            if runs == 0:  # a new component
                size[p] = 1
                bx0[p] = bx1[p] = px
                by0[p] = by1[p] = py
                pmin[p] = p
                area2[p] = 0
                euler4[p] = 4  # one pixel: 4 cells with one pixel each, chi = 1
                dirty[p] = True
                nroots = _push_root(p, parent, roots, rpos, nroots)
                rp = p
                if hot < 0:
                    hot = p
                    hx0 = hx1 = px
                    hy0 = hy1 = py
                    hpmin = p
                    ha2 = 0
                    he4 = 4
                    hsize = 1
            elif nroots == 1:  # p joins the only component, the hot one
                parent[np.uintp(p)] = hot
                rp = hot
            else:  # join the first run's component (p's own node stays cold), merge the others'
                rp = parent[np.uintp(p + ring[_RUN_START[mask, 0]])]
                if rp != hot:
                    rp = _find(parent, rp)
                if runs > 1:  # merges (rare) work on the arrays; the larger of the two roots gets hot
                    _write_totals(hot, hx0, hy0, hx1, hy1, hpmin, ha2, he4, hsize,
                                  size, bx0, by0, bx1, by1, pmin, area2, euler4, dirty)
                    for j in range(1, runs):
                        ro = _find(parent, p + ring[_RUN_START[mask, j]])
                        if ro == rp:
                            continue
                        ra, rb = rp, ro
                        if size[rb] > size[ra]:
                            ra, rb = rb, ra
                        area2[ra] += area2[rb]
                        euler4[ra] += euler4[rb]
                        nroots = _absorb(ra, rb, parent, size, bx0, by0, bx1, by1, pmin, dirty, roots, rpos,
                                         nroots)
                        rp = ra
                    hot = _find(parent, hot)
                    if size[rp] > size[hot]:
                        hot = rp
                    hx0, hy0, hx1, hy1, hpmin = bx0[hot], by0[hot], bx1[hot], by1[hot], pmin[hot]
                    ha2, he4, hsize = area2[hot], euler4[hot], size[hot]
                if rp != hot:
                    _add_pixel(p, rp, px, py, parent, size, bx0, by0, bx1, by1, pmin, dirty)
                    # every foreground pixel of a 2x2 cell is in one component: cell terms add up per root
                    area2[np.uintp(rp)] += _AREA2_GAIN[np.uintp(mask)]
                    euler4[np.uintp(rp)] += _EULER4_GAIN[np.uintp(mask)]
                else:
                    parent[np.uintp(p)] = hot
            if rp == hot and runs > 0:
                hx0 = min(hx0, px)
                hy0 = min(hy0, py)
                hx1 = max(hx1, px)
                hy1 = max(hy1, py)
                hpmin = min(hpmin, p)
                ha2 += _AREA2_GAIN[np.uintp(mask)]
                he4 += _EULER4_GAIN[np.uintp(mask)]
                hsize += 1
        if hot >= 0:
            _write_totals(hot, hx0, hy0, hx1, hy1, hpmin, ha2, he4, hsize,
                          size, bx0, by0, bx1, by1, pmin, area2, euler4, dirty)
        if not need[v]:
            continue
        if want_multi:
            best = hole_best[v]
            for k in range(nroots):
                r = roots[k]
                if dirty[r]:
                    iou_cache[r] = _best_iou(bx0[r] - 1, by0[r] - 1, min(bx1[r], w - 1), min(by1[r], h - 1), gt)
                    dirty[r] = False
                if iou_cache[r] > best:
                    best = iou_cache[r]
            multi[v] = best
        if not want_single:
            continue
        # the largest a; hole-free components have A = a, holed ones a < A <= their box's area
        top = -1
        top_a = -1
        for k in range(nroots):
            r = roots[k]
            a = area2[r]
            if a > top_a or (a == top_a and pmin[r] > pmin[top]):  # OpenCV lists top-level
                top_a = a                                          # contours in reverse raster order
                top = r
        ok = True
        for k in range(nroots):
            r = roots[k]
            if r != top and euler4[r] != 4 and _area2_bound(r, area2, size, bx0, by0, bx1, by1) >= top_a:
                ok = False  # a holed component whose area may reach the top's
        if not ok:
            # exact areas of the components that may be the largest
            if len(holed_roots) == 0:
                holed_roots = np.empty(n, dtype=np.int64)
                holed_bounds = np.empty(n, dtype=np.int64)
            best_a = -1
            best_holed = False
            n_best = 0
            n_holed = 0
            for k in range(nroots):  # hole-free components: A = a, only those with the top's a count
                r = roots[k]
                if euler4[r] == 4:
                    if area2[r] == top_a:
                        if top_a > best_a:
                            best_a = top_a
                            top = r
                            n_best = 1
                        else:
                            n_best += 1
                            if pmin[r] > pmin[top]:
                                top = r
                else:
                    bound = _area2_bound(r, area2, size, bx0, by0, bx1, by1)
                    if bound >= top_a:
                        holed_roots[n_holed] = r
                        holed_bounds[n_holed] = bound
                        n_holed += 1
            # holed ones by decreasing bound, until no bound reaches the largest exact area found
            for i in np.argsort(-holed_bounds[:n_holed]):
                if holed_bounds[i] < best_a:
                    break
                r = holed_roots[i]
                exact = _outer_area2(q, v, pmin[r] % w2 - 1, pmin[r] // w2 - 1)
                if exact > best_a:
                    best_a = exact
                    top = r
                    best_holed = True
                    n_best = 1
                elif exact == best_a:
                    n_best += 1
                    best_holed = True
                    if pmin[r] > pmin[top]:
                        top = r
            # a tie with a holed component: OpenCV's contour order decides, the caller asks OpenCV
            ok = n_best == 1 or not best_holed
        single_ok[v] = ok
        if ok:
            if dirty[top]:
                iou_cache[top] = _best_iou(bx0[top] - 1, by0[top] - 1, min(bx1[top], w - 1),
                                           min(by1[top], h - 1), gt)
                dirty[top] = False
            single[v] = iou_cache[top]
    return multi, single, single_ok


@njit(cache=True, error_model="numpy")
def _hole_pass(h: int, w: int, gt: np.ndarray, need: np.ndarray, ws: tuple) -> np.ndarray:
    """Holes: background ``{q < L}``, 4-connected, grows as ``L`` rises; ``outside`` = the zero frame.

    Returns per level the best IoU over the hole boxes.
    """
    w2 = w + 2
    n = (h + 2) * w2
    hole_best = np.zeros(256)
    nb4 = np.array([-1, 1, -w2, w2], dtype=np.int64)
    _reset_nodes(ws)
    parent, size, bx0, by0, bx1, by1, pmin, _, iou_cache, dirty, roots, rpos, _, _, xs, ys, order, start = ws
    outside = n
    parent[outside] = outside
    size[outside] = n + 1
    for x in range(w2):
        parent[x] = outside
        parent[n - 1 - x] = outside
    for y in range(1, h + 1):
        parent[y * w2] = outside
        parent[y * w2 + w + 1] = outside
    nroots = 0
    seen_any = False
    for v in range(256):
        if start[v + 1] == start[v]:
            continue
        if seen_any and need[v]:  # the background of level v is everything added so far
            best = 0.0
            for k in range(nroots):
                r = roots[k]
                if dirty[r]:  # hole border box: one pixel around the hole, in image coordinates
                    iou_cache[r] = _best_iou(bx0[r] - 2, by0[r] - 2, min(bx1[r] + 1, w - 1),
                                             min(by1[r] + 1, h - 1), gt)
                    dirty[r] = False
                if iou_cache[r] > best:
                    best = iou_cache[r]
            hole_best[v] = best
        seen_any = True
        for k in range(start[v], start[v + 1]):
            p = order[k]
            rp = -1  # the root p belongs to, once known
            for d in range(4):
                other = p + nb4[d]
                po = parent[other]
                if po < 0 or po == rp:
                    continue
                ro = _find(parent, other)
                if ro == rp:
                    continue
                if rp < 0:  # join the first neighbouring component (p's own node stays cold)
                    _add_pixel(p, ro, xs[p], ys[p], parent, size, bx0, by0, bx1, by1, pmin, dirty)
                    rp = ro
                    continue
                ra, rb = rp, ro
                if rb == outside or (ra != outside and size[rb] > size[ra]):
                    ra, rb = rb, ra
                # ra absorbs rb; `outside` is never listed
                nroots = _absorb(ra, rb, parent, size, bx0, by0, bx1, by1, pmin, dirty, roots, rpos, nroots)
                rp = ra
            if rp < 0:  # a new hole component
                nroots = _push_root(p, parent, roots, rpos, nroots)
    return hole_best


@njit(cache=True, error_model="numpy")
def _threshold_levels(start: np.ndarray, cam_thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Canonical level of each threshold and the levels to solve, from the counting sort's ``start``.

    The reference binarises at cut-off :math:`c = \lfloor t \cdot \max q \rfloor` (``int(t * max)``),
    :math:`F = \{q > c\} = \{q \ge L\}` with :math:`L = c + 1`; :math:`F` is the same for every
    :math:`L` up to the smallest value present in ``q`` that is :math:`\ge L` (256 when none: empty).
    """
    qmax = 0
    for v in range(256):
        if start[v + 1] > start[v]:
            qmax = v
    next_present = np.empty(257, dtype=np.int64)
    next_present[256] = 256
    for v in range(255, -1, -1):
        next_present[v] = v if start[v + 1] > start[v] else next_present[v + 1]
    levels = np.empty(cam_thresholds.shape[0], dtype=np.int64)
    need = np.zeros(256, dtype=np.bool_)
    for i in range(cam_thresholds.shape[0]):
        cut = np.int64(cam_thresholds[i] * qmax)
        lv = next_present[min(max(cut + 1, 0), 256)]
        levels[i] = lv
        if lv < 256:
            need[lv] = True
    return levels, need


@njit(cache=True, error_model="numpy")
def _sweep(q: np.ndarray, gt: np.ndarray, cam_thresholds: np.ndarray, want_single: bool, want_multi: bool,
           ws: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`level_sweep` in one compiled call (one dispatch per map)."""
    h, w = q.shape
    order, start = ws[16], ws[17]
    _pixel_order(q, order, start)
    levels, need = _threshold_levels(start, cam_thresholds)
    hole_best = _hole_pass(h, w, gt, need, ws) if want_multi else np.zeros(256)
    multi, single, single_ok = _fg_pass(q, h, w, gt, need, want_single, want_multi, hole_best, ws)
    empty = _best_iou(0, 0, 0, 0, gt)  # level 256: the empty image's box [0, 0, 0, 0]
    multi257 = np.empty(257)
    single257 = np.empty(257)
    ok257 = np.ones(257, dtype=np.bool_)
    multi257[:256] = multi
    single257[:256] = single
    ok257[:256] = single_ok | ~need
    multi257[256] = empty
    single257[256] = empty
    return levels, multi257, single257, ok257


def level_sweep(q: np.ndarray, gt: np.ndarray, cam_thresholds: np.ndarray, want_single: bool = True,
                want_multi: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best IoUs at every CAM threshold's level in the contour modes asked for.

    Pixels live on the grid padded by one pixel on each side (index ``(y + 1)(W + 2) + x + 1``);
    the padding is OpenCV's zero frame: never foreground, and the "outside" background. The hole
    sweep (hole boxes) runs only for multi-contour mode; single-contour mode needs only the
    foreground sweep.

    Args:
        q: ``(H, W)`` uint8 map, C-contiguous.
        gt: ``(k, 4)`` float64 GT boxes, inclusive corners.
        cam_thresholds: ``(T,)`` float64 CAM thresholds.
        want_single, want_multi: the modes to compute (the other's output stays zero).

    Returns:
        ``(levels, multi, single, single_ok)``: ``levels`` ``(T,)`` the level ``L`` (``F = q >= L``,
        256 = empty) of each threshold; then, indexed by level, ``(257,)`` each: the best IoU over
        every contour's box, the IoU of the largest contour's box, and whether that largest contour
        was certified (when ``False`` the caller must find it with OpenCV).
    """
    h, w = q.shape
    return _sweep(q, gt, cam_thresholds, want_single, want_multi, _workspace(h, w))
