"""The fast evaluator reproduces the reference (wsolevaluation) BoxAcc curves exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cirlib.metrics import BoxEvaluator, boxacc_curves


FIXTURE = Path(__file__).resolve().parent / "data" / "wsolevaluation_boxacc_public.npz"


@pytest.fixture(scope="module")
def fixture():
    # A missing file is a broken checkout, not an optional extra: fail, never skip.
    if not FIXTURE.is_file():
        pytest.fail(f"reference fixture {FIXTURE} is missing; restore it with `git checkout -- tests/data` "
                    "(see tests/data/README.md for what it holds)")
    z = np.load(FIXTURE)
    gts = np.split(z["gt_boxes"], np.cumsum(z["gt_box_counts"])[:-1])
    return z, gts


@pytest.mark.parametrize("multi", [False, True])
def test_fixture_curves_exact_interval_0p01(fixture, multi):
    z, gts = fixture
    assert z["cams"].shape == (60, 224, 224)
    thr = np.arange(0, 1, 0.01)
    got = boxacc_curves(z["cams"], gts, thr, tuple(int(d) for d in z["iou_thresholds"]), multi_contour=multi)
    want = z[f"boxacc_curves_interval0p01_{'multi' if multi else 'single'}"]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_fixture_curves_exact_interval_0p001_streamed(fixture):
    """Both modes at interval 0.001 in one streamed pass (they share every contour search)."""
    z, gts = fixture
    ev = BoxEvaluator(cam_thresholds=np.arange(0, 1, 0.001))
    for start in range(0, 60, 16):  # uneven batches, fed like a data loader
        ev.update(z["cams"][start:start + 16], gts[start:start + 16])
    multi = z["boxacc_curves_interval0p001_multi"]
    np.testing.assert_array_equal(ev.curves(True), multi)
    np.testing.assert_array_equal(ev.curves(False), z["boxacc_curves_interval0p001_single"])
    res = ev.compute()
    assert res["maxboxacc"] == {"30": multi[0].max(), "50": multi[1].max(), "70": multi[2].max()}
    assert res["maxboxacc_v2"] == pytest.approx(multi.max(1).mean())
    assert res["num_images"] == 60
