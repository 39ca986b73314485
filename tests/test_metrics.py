"""Fast BoxAcc vs the straightforward implementation, normalize_cam, PxAP, evaluators, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cirlib.metrics import (
    BoxEvaluator,
    PxAPEvaluator,
    box_iou_inclusive,
    boxacc_curves,
    normalize_cam,
    reference_boxacc_curves,
    reference_boxes,
    scoremap_to_boxes,
)
from cirlib.metrics.boxacc import best_ious

THR = np.arange(0, 1, 0.01)


def _smooth(rng, h, w, k=3):
    yy, xx = np.mgrid[0:h, 0:w]
    m = np.zeros((h, w))
    for _ in range(k):
        cy, cx = rng.uniform(-5, h + 5), rng.uniform(-5, w + 5)
        s = rng.uniform(2, max(h, w) / 3)
        m += rng.uniform(0.2, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return m


def _maps(seed=0):
    """Hard cases: constant, single pixels, rings with holes, border blobs, many small components."""
    rng = np.random.default_rng(seed)
    maps = [np.zeros((20, 30)), np.full((17, 23), 0.7), np.ones((9, 9))]
    m = np.zeros((25, 31)); m[3, 4] = 1.0; maps.append(m)                       # single pixel
    m = np.zeros((25, 31)); m[0, 0] = 0.9; m[24, 30] = 0.9; m[12, 15] = 0.5; maps.append(m)  # corners
    yy, xx = np.mgrid[0:40, 0:50]
    r = np.hypot(yy - 20, xx - 25)
    maps.append(np.clip(1 - np.abs(r - 10) / 4, 0, 1))                          # thick ring
    maps.append(((r > 9) & (r < 10.5)).astype(float))                           # thin ring with hole
    ring = np.clip(1 - np.abs(r - 12) / 3, 0, 1); ring[18:23, 23:28] = 0.8; maps.append(ring)  # island
    maps.append((rng.random((30, 40)) > 0.6) * rng.random((30, 40)))             # many components
    maps.append(rng.random((21, 13)) ** 4)                                       # noise, non-square
    for _ in range(6):
        h, w = rng.integers(16, 60, size=2)
        maps.append(_smooth(rng, h, w, rng.integers(1, 5)))
    maps = [m / m.max() if m.max() > 0 else m for m in maps]
    boxes = []
    for m in maps:
        h, w = m.shape
        k = rng.integers(1, 3)
        x0 = rng.integers(0, w, size=k); y0 = rng.integers(0, h, size=k)
        x1 = np.minimum(w - 1, x0 + rng.integers(0, w, size=k)); y1 = np.minimum(h - 1, y0 + rng.integers(0, h, size=k))
        boxes.append(np.stack([x0, y0, x1, y1], 1))
    return maps, boxes


@pytest.mark.parametrize("multi", [False, True])
def test_fast_equals_reference_on_hard_maps(multi):
    maps, boxes = _maps(0)
    thr = np.arange(0, 1, 0.003)
    for i, (m, b) in enumerate(zip(maps, boxes)):  # per map: a failure names the case
        got = boxacc_curves([m], [b], thr, multi_contour=multi)
        want = reference_boxacc_curves([m], [b], thr, multi_contour=multi)
        np.testing.assert_array_equal(got, want, err_msg=f"map {i} shape {m.shape}")


def test_best_iou_equals_reference_per_threshold_random_smooth():
    rng = np.random.default_rng(1)
    for _ in range(8):
        m = _smooth(rng, 48, 64, 4) + 0.05 * rng.random((48, 64))
        m /= m.max()
        gt = np.array([[5, 5, 40, 30]])
        for multi in (False, True):
            ref = reference_boxes(m, THR, multi)
            want = np.array([box_iou_inclusive(b, gt).max() for b in ref])
            got = best_ious(m, gt, THR, ("multi" if multi else "single",))["multi" if multi else "single"]
            np.testing.assert_array_equal(got, want)


def test_scoremap_to_boxes_matches_reference_boxes():
    maps, _ = _maps(2)
    for m in maps[:10]:
        for multi in (False, True):
            ref = reference_boxes(m, np.array([0.3]), multi)[0]
            np.testing.assert_array_equal(scoremap_to_boxes(m, 0.3, multi), ref)


def test_box_iou_inclusive_counts_pixels():
    assert box_iou_inclusive([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 1.0
    assert box_iou_inclusive([[0, 0, 1, 1]], [[1, 1, 2, 2]])[0, 0] == pytest.approx(1 / 7)
    assert box_iou_inclusive([[0, 0, 1, 1]], [[5, 5, 6, 6]])[0, 0] == 0.0


def test_normalize_cam_numpy_and_torch():
    a = np.array([[[1.0, 3.0], [2.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]], [[np.nan, 1.0], [0.0, 1.0]]])
    out = normalize_cam(a)
    np.testing.assert_allclose(out[0], [[0, 0.5], [0.25, 1]])
    assert (out[1] == 0).all() and (out[2] == 0).all()
    t = normalize_cam(torch.tensor(a, dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_allclose(t.numpy(), out, atol=1e-7)
    np.testing.assert_allclose(normalize_cam(a[0]), out[0])
    with pytest.raises(ValueError, match="expects"):
        normalize_cam(np.zeros(3))


def test_bad_score_maps_raise_clear_errors():
    gt = [np.array([[0, 0, 3, 3]])] * 2
    good = np.zeros((2, 8, 8))
    bad = good.copy(); bad[1, 2, 2] = 1.5
    with pytest.raises(ValueError, match=r"scoremaps\[1\].*outside \[0, 1\].*normalize_cam"):
        boxacc_curves(bad, gt, THR)
    nan = good.copy(); nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"scoremaps\[0\].*NaN.*normalize_cam"):
        boxacc_curves(nan, gt, THR)
    ev = BoxEvaluator()
    ev.update(good, gt)
    with pytest.raises(ValueError, match=r"scoremaps\[3\]"):  # global index across batches
        ev.update(bad, gt)
    with pytest.raises(ValueError, match="gt_boxes"):
        boxacc_curves(good, gt[:1], THR)
    with pytest.raises(ValueError, match=r"gt_boxes\[0\]"):
        boxacc_curves(good[:1], [np.array([[5, 5, 1, 1]])], THR)
    with pytest.raises(ValueError, match="outside"):
        PxAPEvaluator().update(good - 0.5, good > 0)
    with pytest.raises(RuntimeError, match="before any update"):
        BoxEvaluator().compute()


def test_box_evaluator_streaming_torch_and_loc():
    rng = np.random.default_rng(3)
    maps = np.stack([_smooth(rng, 32, 40, 2) for _ in range(7)])
    maps = normalize_cam(maps)
    boxes = [np.array([[4, 4, 30, 25]]) for _ in range(7)]
    t1 = np.array([1, 0, 1, 1, 0, 1, 1], bool)
    whole = BoxEvaluator(iou_thresholds=(30, 50, 70))
    whole.update(maps, boxes, top1_correct=t1, top5_correct=np.ones(7, bool))
    streamed = BoxEvaluator()
    for s in (slice(0, 3), slice(3, 4), slice(4, 7)):
        streamed.update(torch.from_numpy(maps[s]).float().double(), [torch.tensor(b) for b in boxes[s]],
                        top1_correct=torch.from_numpy(t1[s]), top5_correct=np.ones(s.stop - s.start, bool))
    a, b = whole.compute(), streamed.compute()
    assert a == b
    json.dumps(a)
    np.testing.assert_array_equal(whole.curves(True), boxacc_curves(maps, boxes, whole.cam_thresholds, multi_contour=True))
    np.testing.assert_array_equal(whole.curves(False), boxacc_curves(maps, boxes, whole.cam_thresholds))
    assert a["gt_known_loc"] == a["maxboxacc"]["50"]
    assert a["top5_loc"] == a["gt_known_loc"]
    assert a["top1_loc"] <= a["gt_known_loc"]
    assert a["maxboxacc_v2"] == pytest.approx(np.mean(list(a["maxboxacc"].values())))
    whole.reset()
    assert whole.num_images == 0


def _direct_pxap(scores, masks, thr):
    """Direct: precision/recall at each threshold t (score >= t), sum P_i (R_i - R_{i-1})."""
    edges = list(thr) + [1.0, 2.0]
    s, m = scores.ravel(), masks.ravel()
    prec, rec = [], []
    for t in reversed(edges):
        pred = s >= t
        tp = (pred & m).sum(); fp = (pred & ~m).sum()
        prec.append(tp / (tp + fp) if tp + fp else 1.0)
        rec.append(tp / m.sum())
    return 100 * sum(prec[i] * (rec[i] - rec[i - 1]) for i in range(1, len(rec)))


def test_pxap_direct_and_streamed():
    rng = np.random.default_rng(4)
    s = rng.random((3, 6, 7)).round(2)
    m = rng.random((3, 6, 7)) > 0.5
    thr = np.arange(0, 1, 0.1)
    ev = PxAPEvaluator(thr)
    ev.update(s, m)
    assert ev.compute()["pxap"] == pytest.approx(_direct_pxap(s, m, thr))
    ev2 = PxAPEvaluator(thr)
    for i in range(3):
        ev2.update(torch.from_numpy(s[i:i + 1]), torch.from_numpy(m[i:i + 1]))
    assert ev2.compute() == ev.compute()
    perfect = PxAPEvaluator(); perfect.update(m.astype(float), m)
    assert perfect.compute()["pxap"] == pytest.approx(100.0)
    ig = np.zeros_like(m); ig[:, :, :2] = True
    e3 = PxAPEvaluator(thr); e3.update(s, m, ignore=ig)
    assert e3.compute()["pxap"] == pytest.approx(_direct_pxap(s[:, :, 2:], m[:, :, 2:], thr))


def _sweep_cases(seed=5):
    """Maps that stress the union-find sweep: noise with few levels (ties, holes, islands),
    checkerboards (diagonal-only connectivity), nested rings with islands, equal-area twins."""
    rng = np.random.default_rng(seed)
    cases = []
    for k in (2, 3, 6):  # quantised noise: many equal values, holes and islands at every level
        cases.append(rng.integers(0, k, size=(23, 29)) / (k - 1))
    yy, xx = np.mgrid[0:24, 0:24]
    cases.append(((yy + xx) % 2).astype(float))                                  # checkerboard
    cases.append((((yy // 2) + (xx // 3)) % 2) * (0.5 + 0.5 * (xx > 11)))        # blocky board, 2 values
    r = np.hypot(yy - 12, xx - 12)
    nested = np.zeros((24, 24))
    for rad, val in ((11, 0.9), (8, 0.6), (5, 0.3), (2, 1.0)):                  # rings in holes in rings
        nested[np.abs(r - rad) < 1.0] = val
    cases.append(nested)
    twins = np.zeros((20, 30))
    twins[4:9, 3:8] = 1.0; twins[11:16, 20:25] = 1.0; twins[2, 27] = 1.0          # equal areas: order decides
    cases.append(twins)
    dots = np.zeros((15, 17)); dots[::3, ::4] = 0.8; dots[7, 8] = 0.8              # equal single pixels
    cases.append(dots)
    lines = np.zeros((16, 16)); lines[3, 2:14] = 1; lines[2:14, 12] = 0.7; lines[12, 1:10] = 1  # zero-area
    cases.append(lines)
    holey = np.ones((22, 26)); holey[rng.random((22, 26)) < 0.35] = 0.2; holey[0, :] = 0.5  # one blob, many holes
    cases.append(holey)
    big = _smooth(rng, 40, 56, 5) + 0.3 * rng.random((40, 56))
    cases.append(big / big.max())
    return cases


@pytest.mark.parametrize("multi", [False, True])
def test_sweep_equals_reference_on_adversarial_maps(multi):
    mode = "multi" if multi else "single"
    thr = np.arange(0, 1, 1 / 512)  # reaches every uint8 level
    rng = np.random.default_rng(9)
    for i, m in enumerate(_sweep_cases()):
        h, w = m.shape
        gts = [np.array([[0, 0, w - 1, h - 1]]), np.array([[w // 3, h // 4, w // 2, h - 2], [1, 1, 4, 3]]),
               np.stack([rng.integers(0, w // 2, 3), rng.integers(0, h // 2, 3),
                         rng.integers(w // 2, w, 3), rng.integers(h // 2, h, 3)], 1)]
        for gt in gts:
            want = np.array([box_iou_inclusive(b, gt).max() for b in reference_boxes(m, thr, multi)])
            got = best_ious(m, gt, thr, (mode,))[mode]
            np.testing.assert_array_equal(got, want, err_msg=f"case {i} shape {m.shape} gt {gt.tolist()}")


def test_sweep_equals_the_reference_on_random_noise():
    rng = np.random.default_rng(11)
    thr = np.arange(0, 1, 0.002)
    for _ in range(6):
        h, w = rng.integers(8, 48, size=2)
        m = rng.random((h, w)) ** rng.uniform(0.5, 4)
        m /= m.max()
        gt = np.array([[1, 2, w // 2, h - 1]])
        got = best_ious(m, gt, thr)
        for mode, multi in (("single", False), ("multi", True)):
            want = np.array([box_iou_inclusive(b, gt).max() for b in reference_boxes(m, thr, multi)])
            np.testing.assert_array_equal(got[mode], want, err_msg=f"{mode} {m.shape}")


def _multi_peak_maps(n, seed, size=64):
    """The benchmark's CAM-like maps (``benchmarks/bench_boxacc.py``: noise plus 1-3 blobs, upsampled,
    min-max normalised): rings, saddles and merging peaks across the levels."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_boxacc.py"
    spec = importlib.util.spec_from_file_location("bench_boxacc", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.smooth_maps(n, seed, size=size)


def _largest_contour_cases(rng):
    """Maps where the largest contour is not the component with the most pixels: holed components
    (whose contour area counts their holes) against solid ones, ties between them, diagonal
    touching, single and border pixels, plateaus."""
    cases = []
    ring = np.zeros((30, 40)); ring[2:14, 2:14] = 0.9; ring[3:13, 3:13] = 0.0       # hollow square, area 121
    ring[16:27, 20:31] = 0.6                                                     # solid square, area 100
    cases.append(ring)
    tie = np.zeros((20, 30)); tie[2:7, 2:7] = 1.0; tie[3:6, 3:6] = 0.0; tie[4, 4] = 0.5  # hollow 5x5: area 16
    tie[10:15, 20:25] = 1.0                                                      # solid 5x5: area 16, a tie
    cases.append(tie)
    diag = np.zeros((16, 16)); diag[np.arange(16), np.arange(16)] = 1.0; diag[5:9, 9:13] = 0.8  # touching diagonally
    diag[0, 15] = 0.3; diag[15, 0] = 0.3; diag[7, 0] = 0.3; diag[0, 7] = 0.3                   # border pixels
    cases.append(diag)
    dots = np.zeros((12, 13)); dots[rng.random((12, 13)) < 0.3] = 1.0           # single pixels and pairs
    cases.append(dots)
    plateau = np.full((18, 22), 0.4); plateau[4:14, 5:17] = 0.8; plateau[6:12, 8:14] = 0.4; plateau[8:10, 10:12] = 0.8
    cases.append(plateau)                                                        # plateau ring with an island
    holes = _smooth(rng, 40, 48, 4)
    holes = holes / holes.max()
    holes[rng.random(holes.shape) < 0.08] = 0.0                                 # pinholes in every component
    cases.append(holes)
    return cases


@pytest.mark.parametrize("interval", [0.01, 0.001])
def test_sweep_equals_reference_on_multi_peak_and_largest_contour_maps(interval):
    """The union-find sweep (single mode: the Euler-number certificate for the largest contour)
    gives the straightforward implementation's IoUs at every threshold."""
    rng = np.random.default_rng(21)
    thr = np.arange(0, 1, interval)
    cases = _multi_peak_maps(6, seed=21) + _largest_contour_cases(rng)
    for i, m in enumerate(cases):
        h, w = m.shape
        for gt in (np.array([[1, 1, w // 2, h // 2]]), np.array([[w // 3, h // 3, w - 1, h - 1], [0, 0, 3, 3]])):
            got = best_ious(m, gt, thr)
            for mode, multi in (("single", False), ("multi", True)):
                want = np.array([box_iou_inclusive(b, gt).max() for b in reference_boxes(m, thr, multi)])
                np.testing.assert_array_equal(got[mode], want, err_msg=f"case {i} {mode} gt {gt.tolist()}")
            assert np.array_equal(best_ious(m, gt, thr, ("single",))["single"], got["single"])  # without the hole sweep


def test_contour_area_formula_matches_opencv():
    """A(C) = n4 + n3/2 over 2x2 cells of the filled component equals cv2.contourArea."""
    import cv2

    rng = np.random.default_rng(12)
    for _ in range(200):
        b = (rng.random(tuple(rng.integers(3, 12, 2))) > rng.uniform(0.2, 0.8)).astype(np.uint8)
        contours, hier = cv2.findContours(b, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        n, lab = cv2.connectedComponents(b, connectivity=8)
        for c in contours:
            x, y = c[0, 0]
            comp = lab == lab[y, x]
            pad = np.pad(~comp, 1, constant_values=True).astype(np.uint8)
            _, bl = cv2.connectedComponents(pad, connectivity=4)
            fill = (bl[1:-1, 1:-1] != bl[0, 0]).astype(int)
            s = fill[:-1, :-1] + fill[1:, :-1] + fill[:-1, 1:] + fill[1:, 1:]
            assert (s == 4).sum() + 0.5 * (s == 3).sum() == cv2.contourArea(c)
