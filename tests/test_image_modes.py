"""Issue 26, item 3: every image mode PIL writes is read as the right 8-bit RGB.

PIL's ``convert("RGB")`` clips 16-bit greyscale, so a 16-bit PNG lost its grey levels (a ramp of
256 levels kept 2). Each case writes a grey ramp in one mode and file format, reads it back through
the loader of the real datasets and compares with the 8-bit RGB it holds.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cirlib.data.real import _open_rgb, to_rgb8

#: The 8-bit grey levels 0..255 as a 16 x 16 image.
RAMP = np.arange(256, dtype=np.uint8).reshape(16, 16)
RGB = np.stack([RAMP, 255 - RAMP, (RAMP // 2).astype(np.uint8)], axis=2)


def _grey(values: np.ndarray) -> np.ndarray:
    return np.repeat(values[:, :, None], 3, axis=2)


def _palette_image() -> Image.Image:
    img = Image.fromarray(RAMP, "L").convert("P")  # the palette of every grey level
    return img


def _lab(img: Image.Image) -> Image.Image:
    from PIL import ImageCms

    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    return ImageCms.applyTransform(img, to_lab)


# (mode, how to build it, file suffix, expected RGB, tolerance)
CASES = {
    "1": (lambda: Image.fromarray(RAMP >= 128).convert("1"), ".png", _grey(np.where(RAMP >= 128, 255, 0).astype(np.uint8)), 0),
    "L": (lambda: Image.fromarray(RAMP, "L"), ".png", _grey(RAMP), 0),
    "LA": (lambda: Image.merge("LA", [Image.fromarray(RAMP), Image.fromarray(255 - RAMP)]), ".png", _grey(RAMP), 0),
    "P": (_palette_image, ".png", _grey(RAMP), 0),
    "PA": (lambda: _palette_image().convert("PA"), ".tiff", _grey(RAMP), 0),
    "RGB": (lambda: Image.fromarray(RGB, "RGB"), ".png", RGB, 0),
    "RGBA": (lambda: Image.fromarray(np.dstack([RGB, RAMP]), "RGBA"), ".png", RGB, 0),
    "CMYK": (lambda: Image.merge("CMYK", [Image.fromarray(255 - RGB[..., k]) for k in range(3)]
                                 + [Image.fromarray(np.zeros_like(RAMP))]), ".tiff", RGB, 0),
    "CMYK-jpeg": (lambda: Image.merge("CMYK", [Image.fromarray(255 - RGB[..., k]) for k in range(3)]
                                      + [Image.fromarray(np.zeros_like(RAMP))]), ".jpg", RGB, 40),
    "YCbCr": (lambda: Image.fromarray(RGB, "RGB").convert("YCbCr"), ".jpg", RGB, 40),
    # 16-bit greyscale: each 8-bit level v stored as 257 v, as image software widens 8 to 16 bits
    "LAB": (lambda: _lab(Image.fromarray(_grey(RAMP), "RGB")), ".tiff", _grey(RAMP), 3),  # 8-bit a*, b*: greys
    # 16-bit greyscale: each 8-bit level v stored as 257 v, as image software widens 8 to 16 bits
    "I;16": (lambda: Image.fromarray(RAMP.astype(np.uint16) * 257), ".png", _grey(RAMP), 0),
    "I;16-tiff": (lambda: Image.fromarray(RAMP.astype(np.uint16) * 257), ".tiff", _grey(RAMP), 0),
    "I;16B": (lambda: Image.frombytes("I;16B", (16, 16), (RAMP.astype(">u2") * 257).tobytes()), ".tiff",
              _grey(RAMP), 0),
    "I;16L": (lambda: Image.frombytes("I;16L", (16, 16), (RAMP.astype("<u2") * 257).tobytes()), ".tiff",
              _grey(RAMP), 0),
    "I": (lambda: Image.fromarray(RAMP.astype(np.int32) * 257), ".tiff", _grey(RAMP), 0),
    "F-0..255": (lambda: Image.fromarray(RAMP.astype(np.float32)), ".tiff", _grey(RAMP), 0),
    "F-0..1": (lambda: Image.fromarray(RAMP.astype(np.float32) / 255), ".tiff", _grey(RAMP), 0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_mode_is_read_as_its_8_bit_rgb(case, tmp_path):
    build, suffix, expected, tolerance = CASES[case]
    path = tmp_path / f"image{suffix}"
    image = build()
    assert image.mode == case.split("-")[0]
    image.save(path)
    got = np.asarray(_open_rgb(path))
    assert got.dtype == np.uint8 and got.shape == (16, 16, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= tolerance, case


def test_a_16_bit_png_keeps_its_grey_levels(tmp_path):
    """The issue's case: a 16-bit PNG read as 8-bit kept only 0 and 255."""
    path = tmp_path / "depth.png"
    Image.fromarray((np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)).save(path)
    with Image.open(path) as img:
        assert img.mode in ("I;16", "I")  # what PIL opens a 16-bit greyscale PNG as
        clipped = np.asarray(img.convert("RGB"))
    assert len(np.unique(clipped)) < 20  # the bug this guards against, still in PIL: levels lost
    got = np.asarray(_open_rgb(path))
    assert len(np.unique(got)) == 256 and got[0, 0, 0] == 0 and got[-1, -1, 0] == 255


def test_16_bit_levels_round_to_the_nearest_8_bit_level():
    levels = np.array([[0, 128, 129, 257, 385, 386, 65278, 65535]], dtype=np.uint16)
    got = to_rgb8(Image.fromarray(levels))[..., 0]
    assert got.tolist() == [[0, 0, 1, 1, 1, 2, 254, 255]]  # round(v / 257)


def test_loader_returns_rgb_of_a_16_bit_image_in_a_dataset(tmp_path):
    """Through the whole dataset item (CUB layout), not only the helper."""
    from cirlib.data.real import CUBDataset
    from fixtures_data import make_cub_fixture

    info = make_cub_fixture(tmp_path / "cub")
    rec = info["train"][0]
    w, h = rec["size"]
    ramp = (np.arange(w * h, dtype=np.float64) / (w * h - 1) * 65535).astype(np.uint16).reshape(h, w)
    path = tmp_path / "cub" / "images" / rec["image_id"]
    Image.fromarray(ramp).save(path.with_suffix(".png"))
    path.unlink()
    path.with_suffix(".png").rename(path)  # PIL reads the format from the bytes, not the name
    dataset = CUBDataset(tmp_path / "cub", "train")
    image, _ = dataset.load_image(0)
    assert image.shape == (3, h, w)
    assert int(image.max()) == 255 and len(np.unique(image.numpy())) > 200
