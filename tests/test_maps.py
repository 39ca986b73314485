"""The map pipeline (cirlib.maps) against the wsolevaluation reference's inference code."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from cirlib import maps


def reference_normalize_scoremap(cam: np.ndarray) -> np.ndarray:
    """wsolevaluation ``inference.normalize_scoremap``, verbatim (on a copy)."""
    cam = cam.copy()
    if np.isnan(cam).any():
        return np.zeros_like(cam)
    if cam.min() == cam.max():
        return np.zeros_like(cam)
    cam -= cam.min()
    cam /= cam.max()
    return cam


def reference_pipeline(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """``inference.CAMComputer``: ``t2n`` (cast to float64), cv2 bicubic resize, ``normalize_scoremap``."""
    resized = cv2.resize(cam.astype(np.float64), (width, height), interpolation=cv2.INTER_CUBIC)
    return reference_normalize_scoremap(resized)


def _cams(seed: int = 0, shape=(5, 7, 9)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cams = rng.normal(size=shape).astype(np.float32) * 3 + 1
    cams[1] = 2.5  # constant map
    cams[2, 3, 4] = np.nan  # NaN map
    return cams


@pytest.mark.parametrize("size", [(224, 224), (37, 50), (7, 9)])
def test_localization_maps_equal_the_reference_bit_for_bit(size):
    cams = _cams()
    got = maps.localization_maps(cams, size)
    assert got.dtype == np.float64 and got.shape == (len(cams), *size)
    for cam, mine in zip(cams, got):
        np.testing.assert_array_equal(mine, reference_pipeline(cam, *size))
    assert (got[2] == 0).all()  # NaN spreads through the resize: zeros
    # a constant CAM is not constant after cv2's bicubic resize (its float weights do not sum to
    # exactly 1), so the reference normalises the rounding pattern; at the CAM's own size it stays zeros
    assert (maps.localization_maps(cams, cams.shape[1:])[1] == 0).all()
    assert float(got[0].min()) == 0.0 and float(got[0].max()) == 1.0
    # a torch tensor (what a model returns) gives the same maps
    np.testing.assert_array_equal(maps.localization_maps(torch.from_numpy(cams), size), got)


def test_upsample_is_bicubic_not_bilinear_and_takes_height_first():
    cam = np.zeros((4, 6), np.float64)
    cam[1, 2] = 1.0
    up = maps.upsample(cam, (8, 12))
    assert up.shape == (8, 12)
    np.testing.assert_array_equal(up, cv2.resize(cam, (12, 8), interpolation=cv2.INTER_CUBIC))
    assert up.min() < 0  # bicubic overshoots below the map's minimum; bilinear never does
    with pytest.raises(ValueError, match="upsample expects"):
        maps.upsample(np.zeros(3), (4, 4))


def test_normalize_is_the_reference_normalize_scoremap():
    cams = _cams(1, shape=(4, 6, 6)).astype(np.float64)
    cams[3, 0, 0] = np.inf  # beyond the reference (it would give NaN): zeros
    out = maps.normalize(cams)
    for cam, mine in zip(cams[:3], out[:3]):
        np.testing.assert_array_equal(mine, reference_normalize_scoremap(cam))
    assert (out[3] == 0).all()
    t = maps.normalize(torch.from_numpy(cams.astype(np.float32)))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy()[:3], maps.normalize(cams.astype(np.float32))[:3])
    assert maps.normalize(np.zeros((2, 3, 4, 5))).shape == (2, 3, 4, 5)  # any leading dimensions


def test_fuse_takes_the_max_or_mean_of_normalised_maps():
    a = torch.tensor([[[0.0, 10.0], [5.0, 0.0]]])
    b = torch.tensor([[[1.0, 0.0], [3.0, 2.0]]])  # a smaller range: normalised first, it still counts
    np.testing.assert_allclose(maps.fuse([a, b]).numpy(), [[[1 / 3, 1.0], [1.0, 2 / 3]]], rtol=1e-6)
    np.testing.assert_allclose(maps.fuse([a, b], rule="mean").numpy(), [[[1 / 6, 0.5], [0.75, 1 / 3]]],
                               rtol=1e-6)
    np.testing.assert_allclose(maps.fuse([a.numpy(), b.numpy()]), maps.fuse([a, b]).numpy())
    with pytest.raises(ValueError, match="rule"):
        maps.fuse([a, b], rule="sum")
    with pytest.raises(ValueError, match="same shape"):
        maps.fuse([a, b[..., :1]])
