"""CUB-200-2011 and wsolevaluation-metadata loaders on tiny generated datasets: labels, splits, box
geometry through the transforms, and every error message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torchvision.transforms import v2

from cirlib.data import (
    BoxOutsideImageError,
    CUBDataset,
    DatasetFormatError,
    ImageDecodeError,
    WSOLMetadataDataset,
    build_transforms,
    inclusive_to_xyxy,
    to_normalized_float,
    xyxy_to_inclusive,
)
from fixtures_data import make_cub_fixture, make_wsol_metadata_fixture

IDENTITY = to_normalized_float((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


@pytest.fixture()
def cub(tmp_path):
    return make_cub_fixture(tmp_path / "CUB_200_2011")


@pytest.fixture(params=["CUB", "ILSVRC"])
def meta(request, tmp_path):
    return request.param, make_wsol_metadata_fixture(tmp_path / "data", request.param)


def _bright_extent(image: torch.Tensor) -> list[float]:
    """Inclusive extent of the painted (bright) rectangle of a fixture image in [0, 1] floats."""
    ys, xs = torch.nonzero(image.mean(0) > 0.55, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item(), ys.max().item()]


# ---------------------------------------------------------------- CUB official layout
def test_cub_splits_labels_and_boxes(cub):
    for split in ("train", "test"):
        ds = CUBDataset(cub["root"], split, transform=IDENTITY)
        assert len(ds) == len(cub[split]) == 3
        assert ds.num_classes == 3
        assert ds.class_names == ["Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross"]
        for k, want in enumerate(cub[split]):
            item = ds[k]
            w, h = want["size"]
            assert item["image_id"] == want["image_id"]
            assert item["label"] == want["label"]
            assert item["image"].shape == (3, h, w)
            assert item["mask"] is None
            x0, y0, x1, y1 = want["box"]
            # x + w may reach the image edge: clipped to the last pixel.
            assert item["boxes"].tolist() == [[x0, y0, min(x1, w - 1), min(y1, h - 1)]]


def test_cub_test_transform_scales_boxes(cub):
    ds = CUBDataset(cub["root"], "test", transform=build_transforms(False, test_size=224, mean=(0,) * 3, std=(1,) * 3))
    raw = CUBDataset(cub["root"], "test", transform=IDENTITY)
    for k in range(len(ds)):
        item, ref = ds[k], raw[k]
        assert item["image"].shape == (3, 224, 224)
        h, w = ref["image"].shape[-2:]
        sx, sy = 224 / w, 224 / h
        x0, y0, x1, y1 = ref["boxes"][0].tolist()
        # the reference protocol's resize_bbox: every corner scaled, then truncated
        expected = [int(x0 * 224 / w), int(y0 * 224 / h), int(x1 * 224 / w), int(y1 * 224 / h)]
        assert item["boxes"][0].tolist() == expected
        assert ((item["boxes"] >= 0) & (item["boxes"] <= 223)).all()
        # The painted rectangle and the box agree to about a pixel on the near corner; the far corner,
        # scaled as a coordinate rather than a pixel extent, lags by up to the scale factor.
        painted = _bright_extent(item["image"])
        assert painted[:2] == pytest.approx(expected[:2], abs=1.6)
        assert painted[2:] == pytest.approx(expected[2:], abs=max(sx, sy) + 1.6)


def test_train_transform_crop_and_flip_keep_box_on_the_pixels(cub):
    torch.manual_seed(0)
    tf = build_transforms(True, resize=64, crop=48, mean=(0,) * 3, std=(1,) * 3)
    ds = CUBDataset(cub["root"], "train", transform=tf)
    for _ in range(4):
        for k in range(len(ds)):
            item = ds[k]
            assert item["image"].shape == (3, 48, 48)
            boxes = item["boxes"]
            assert ((boxes >= 0) & (boxes <= 47)).all()
            if len(boxes):
                assert _bright_extent(item["image"]) == pytest.approx(boxes[0].tolist(), abs=1.6)


def test_flip_mirrors_inclusive_boxes_exactly():
    image = torch.zeros(3, 10, 20, dtype=torch.uint8)
    boxes = torch.tensor([[2.0, 1.0, 5.0, 7.0]])
    tv_boxes = inclusive_to_xyxy(boxes, (10, 20))
    _, flipped = v2.RandomHorizontalFlip(1.0)(image, tv_boxes)
    assert xyxy_to_inclusive(flipped, (10, 20)).tolist() == [[20 - 1 - 5, 1.0, 20 - 1 - 2, 7.0]]


def test_crop_drops_boxes_that_leave_the_image():
    boxes = inclusive_to_xyxy(torch.tensor([[0.0, 0.0, 3.0, 3.0], [10.0, 10.0, 15.0, 15.0]]), (20, 20))
    image = torch.zeros(3, 20, 20, dtype=torch.uint8)
    _, cropped = v2.functional.crop(image, 8, 8, 10, 10), v2.functional.crop(boxes, 8, 8, 10, 10)
    out = xyxy_to_inclusive(cropped, (10, 10))
    assert out.tolist() == [[2.0, 2.0, 7.0, 7.0]]


def test_cub_missing_root_names_layout_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)does not exist.*images\.txt.*Caltech"):
        CUBDataset(tmp_path / "nope")


def test_cub_missing_metadata_file(cub):
    (cub["root"] / "bounding_boxes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="bounding_boxes.txt"):
        CUBDataset(cub["root"], "train")


def test_cub_malformed_line_names_file_line_and_text(cub):
    path = cub["root"] / "bounding_boxes.txt"
    lines = path.read_text().splitlines()
    lines[2] = "3 20.0 eight 41.0 25.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"bounding_boxes\.txt, line 3.*'eight'(?s:.*)offending text: '3 20.0 eight"):
        CUBDataset(cub["root"], "train")
    lines[2] = "3 20.0 8.0"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"bounding_boxes\.txt, line 3: expected 5 fields"):
        CUBDataset(cub["root"], "train")


def test_cub_box_outside_image(cub):
    path = cub["root"] / "bounding_boxes.txt"
    lines = path.read_text().splitlines()
    lines[0] = "1 10.0 5.0 70.0 20.0"  # image 1 is 61 px wide
    path.write_text("\n".join(lines) + "\n")
    ds = CUBDataset(cub["root"], "train")
    with pytest.raises(BoxOutsideImageError, match=r"bounding_boxes\.txt, line 1.*\(10\.0, 5\.0, 80\.0, 25\.0\).*\(61, 47\)"):
        ds[0]


def test_undecodable_image_names_file(cub):
    bad = cub["root"] / "images" / cub["train"][0]["image_id"]
    bad.write_bytes(b"this is not a jpeg")
    ds = CUBDataset(cub["root"], "train")
    with pytest.raises(ImageDecodeError, match=re.escape(str(bad))):
        ds[0]


# ---------------------------------------------------------------- wsolevaluation metadata layout
def test_metadata_splits_labels_and_multiple_boxes(meta):
    name, info = meta
    for split in ("train", "val", "test"):
        ds = WSOLMetadataDataset(info["data_root"], info["metadata_root"], name, split, transform=IDENTITY, num_classes=3)
        assert len(ds) == len(info[split])
        for k, want in enumerate(info[split]):
            item = ds[k]
            w, h = want["size"]
            assert item["image_id"] == want["image_id"] and item["label"] == want["label"]
            assert item["image"].shape == (3, h, w)
            assert item["boxes"].shape == (len(want["boxes"]), 4)
            assert item["boxes"].tolist() == [list(map(float, b)) for b in want["boxes"]]
    assert WSOLMetadataDataset(info["data_root"], info["metadata_root"], name, "test").num_classes == (
        200 if name == "CUB" else 1000
    )


def test_metadata_test_transform_scales_every_box(meta):
    name, info = meta
    tf = build_transforms(False, test_size=(100, 120), mean=(0,) * 3, std=(1,) * 3)
    ds = WSOLMetadataDataset(info["data_root"], info["metadata_root"], name, "test", transform=tf, num_classes=3)
    for k, want in enumerate(info["test"]):
        w, h = want["size"]
        item = ds[k]
        assert item["image"].shape == (3, 100, 120)
        expected = [[int(x0 * 120 / w), int(y0 * 100 / h), int(x1 * 120 / w), int(y1 * 100 / h)]
                    for x0, y0, x1, y1 in want["boxes"]]  # the reference's resize_bbox
        assert item["boxes"].tolist() == expected


def test_metadata_accepts_dataset_folder_or_split_folder(meta):
    name, info = meta
    a = WSOLMetadataDataset(info["data_root"], info["metadata_root"] / name, name, "val", num_classes=3)
    b = WSOLMetadataDataset(info["data_root"], info["metadata_root"] / name / "val", name, "val", num_classes=3)
    assert [r.image_id for r in a.records] == [r.image_id for r in b.records]


def test_metadata_missing_roots(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"(?s)data_root .*does not exist.*clovaai/wsolevaluation"):
        WSOLMetadataDataset(tmp_path / "none", tmp_path, "CUB", "test")
    with pytest.raises(FileNotFoundError, match=r"(?s)metadata_root .*does not exist.*image_ids\.txt"):
        WSOLMetadataDataset(tmp_path, tmp_path / "none", "CUB", "test")


def test_metadata_missing_files(meta):
    name, info = meta
    split_dir = info["metadata_root"] / name / "test"
    (split_dir / "localization.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"localization\.txt.*needs boxes"):
        WSOLMetadataDataset(info["data_root"], info["metadata_root"], name, "test", num_classes=3)
    (split_dir / "class_labels.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"class_labels\.txt"):
        WSOLMetadataDataset(info["data_root"], info["metadata_root"], name, "test", num_classes=3)


def _edit(path: Path, line: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_metadata_malformed_lines(meta):
    name, info = meta
    split_dir = info["metadata_root"] / name / "test"
    args = (info["data_root"], info["metadata_root"], name, "test")
    first = info["test"][0]["image_id"]
    loc = split_dir / "localization.txt"
    original = loc.read_text()
    _edit(loc, 2, f"{first},40,2,60")
    with pytest.raises(DatasetFormatError, match=r"localization\.txt, line 2: expected 5 fields"):
        WSOLMetadataDataset(*args, num_classes=3)
    _edit(loc, 2, f"{first},40,2,6o,20")
    with pytest.raises(DatasetFormatError, match=r"localization\.txt, line 2: coordinate '6o'"):
        WSOLMetadataDataset(*args, num_classes=3)
    _edit(loc, 2, "ghost.jpg,40,2,60,20")
    with pytest.raises(DatasetFormatError, match=r"localization\.txt, line 2: image id 'ghost\.jpg' is not listed"):
        WSOLMetadataDataset(*args, num_classes=3)
    loc.write_text(original)
    labels = split_dir / "class_labels.txt"
    _edit(labels, 3, f"{info['test'][2]['image_id']},7")
    with pytest.raises(DatasetFormatError, match=r"class_labels\.txt, line 3: class index 7 is outside \[0, 3\)"):
        WSOLMetadataDataset(*args, num_classes=3)


def test_metadata_box_outside_image(meta):
    name, info = meta
    loc = info["metadata_root"] / name / "test" / "localization.txt"
    first = info["test"][0]["image_id"]
    _edit(loc, 2, f"{first},40,2,90,20")  # image is 64x48
    with pytest.raises(BoxOutsideImageError, match=r"localization\.txt, line 2.*\(40\.0, 2\.0, 90\.0, 20\.0\).*\(64, 48\)"):
        WSOLMetadataDataset(info["data_root"], info["metadata_root"], name, "test", num_classes=3)


def test_metadata_size_mismatch_and_bad_image(meta):
    name, info = meta
    sizes = info["metadata_root"] / name / "val" / "image_sizes.txt"
    image_id = info["val"][0]["image_id"]
    _edit(sizes, 1, f"{image_id},58,43")
    ds = WSOLMetadataDataset(info["data_root"], info["metadata_root"], name, "val", num_classes=3)
    with pytest.raises(DatasetFormatError, match=r"image_sizes\.txt, line 1: .*57x43 on disk but the metadata says 58x43"):
        ds[0]
    bad = info["data_root"] / info["val"][1]["image_id"]
    bad.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ImageDecodeError, match=re.escape(str(bad))):
        ds[1]
