"""SyntheticWSOL: determinism, exact boxes and masks, the head/body design, the item contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cirlib.data import DEFAULT_SPLIT_SIZES, SyntheticWSOL, build_transforms, class_colors, collate_wsol


def _bytes(ds: SyntheticWSOL, n: int) -> list[bytes]:
    return [ds.render(i)["rgb"].tobytes() for i in range(n)]


def test_same_seed_same_bytes_regardless_of_access_order():
    a = SyntheticWSOL("train", size=20, seed=3)
    b = SyntheticWSOL("train", size=20, seed=3, cache=False)
    forward = _bytes(a, 20)
    backward = [b.render(i)["rgb"].tobytes() for i in reversed(range(20))][::-1]
    assert forward == backward
    assert torch.equal(a[7]["image"], b[7]["image"])
    assert torch.equal(a[7]["mask"], b[7]["mask"])


def test_different_seeds_and_splits_differ():
    base = _bytes(SyntheticWSOL("train", size=10, seed=0), 10)
    other_seed = _bytes(SyntheticWSOL("train", size=10, seed=1), 10)
    other_split = _bytes(SyntheticWSOL("val", size=10, seed=0), 10)
    assert all(x != y for x, y in zip(base, other_seed))
    assert all(x != y for x, y in zip(base, other_split))


def test_default_split_sizes_and_override():
    assert DEFAULT_SPLIT_SIZES == {"train": 6000, "val": 1000, "test": 1000}
    assert len(SyntheticWSOL("test")) == 1000
    assert len(SyntheticWSOL("val", size=17)) == 17


@pytest.mark.parametrize("image_size", [64, (48, 80), (96, 40)])
def test_box_is_inclusive_bounding_box_of_mask_and_head_inside(image_size):
    ds = SyntheticWSOL("train", size=40, image_size=image_size, seed=5)
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    for i in range(len(ds)):
        r = ds.render(i)
        mask = r["mask"]
        assert mask.shape == (h, w) and mask.dtype == bool
        ys, xs = np.nonzero(mask)
        assert r["box"].tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
        assert np.array_equal(mask, r["head_mask"] | r["body_mask"])
        assert not (r["head_mask"] & r["body_mask"]).any()
        assert r["head_mask"].sum() > 0 and r["body_mask"].sum() > r["head_mask"].sum()
        hy, hx = np.nonzero(r["head_mask"])
        x0, y0, x1, y1 = r["box"]
        assert x0 <= hx.min() and hx.max() <= x1 and y0 <= hy.min() and hy.max() <= y1
        item = ds[i]
        assert item["boxes"].tolist() == [r["box"].astype(float).tolist()]
        assert tuple(item["image"].shape) == (3, h, w)


def test_head_small_body_large():
    ds = SyntheticWSOL("train", size=200)
    head = np.mean([ds.render(i)["head_mask"].mean() for i in range(200)])
    obj = np.mean([ds.render(i)["mask"].mean() for i in range(200)])
    assert head / obj < 0.2, "the head must be a small part of the object"
    assert 0.08 < obj < 0.4


def test_head_colour_identifies_class_exactly():
    ds = SyntheticWSOL("train", size=100, head_jitter=0.0)
    colours = (class_colors(ds.num_classes) * 255).round()
    for i in range(100):
        r = ds.render(i)
        pix = r["rgb"][r["head_mask"]].astype(float)
        nearest = np.abs(pix.mean(0)[None] - colours).sum(1).argmin()
        assert nearest == r["label"]


def test_head_is_the_only_saturated_region():
    ds = SyntheticWSOL("train", size=50)
    for i in range(50):
        r = ds.render(i)
        rgb = r["rgb"].astype(float) / 255
        sat = (rgb.max(2) - rgb.min(2)) / np.maximum(rgb.max(2), 1e-6)
        assert sat[r["head_mask"]].min() > 0.85
        assert np.quantile(sat[~r["head_mask"]], 0.999) < 0.85


def test_class_balance():
    ds = SyntheticWSOL("train", size=1000, num_classes=10)
    assert np.bincount(ds.labels, minlength=10).tolist() == [100] * 10
    assert ds.labels[:20].tolist() != sorted(ds.labels[:20].tolist()), "labels should be shuffled"


def test_body_cue_shared_by_groups():
    ds = SyntheticWSOL("train", size=10, num_classes=10, classes_per_group=2)
    assert ds.num_groups == 5
    assert ds.class_to_group == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_item_contract_and_attributes():
    ds = SyntheticWSOL("val", size=4, image_size=(40, 56), num_classes=6)
    item = ds[2]
    assert set(item) == {"image", "label", "boxes", "mask", "image_id"}
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 40, 56)
    assert isinstance(item["label"], int) and 0 <= item["label"] < 6
    assert item["boxes"].dtype == torch.float32 and item["boxes"].shape == (1, 4)
    assert item["mask"].dtype == torch.bool and item["mask"].shape == (40, 56)
    assert item["image_id"] == "synthetic/val/2"
    assert ds.num_classes == 6 and len(ds.class_names) == 6
    back = (ds.denormalize(item["image"]) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.abs(back.astype(int) - ds.render(2)["rgb"].astype(int)).max() <= 1


def test_normalisation_is_roughly_zero_mean_unit_std():
    ds = SyntheticWSOL("train", size=300)
    x = torch.stack([ds[i]["image"] for i in range(300)])
    assert x.mean((0, 2, 3)).abs().max() < 0.15
    assert ((x.std((0, 2, 3)) - 1).abs() < 0.3).all()


def test_collate_synthetic_batch():
    ds = SyntheticWSOL("train", size=5, image_size=(32, 48))
    batch = collate_wsol([ds[i] for i in range(5)])
    assert batch["image"].shape == (5, 3, 32, 48)
    assert batch["label"].dtype == torch.long and batch["label"].shape == (5,)
    assert batch["mask"].shape == (5, 32, 48) and batch["mask"].dtype == torch.bool
    assert len(batch["boxes"]) == 5 and batch["boxes"][0].shape == (1, 4)
    assert batch["image_id"] == [f"synthetic/train/{i}" for i in range(5)]


def test_transform_moves_box_and_mask_together():
    tf = build_transforms(train=False, test_size=(96, 128), mean=(0.5,) * 3, std=(0.2,) * 3)
    ds = SyntheticWSOL("train", size=3, image_size=(48, 64), transform=tf)
    item = ds[1]
    assert item["image"].shape == (3, 96, 128) and item["mask"].shape == (96, 128)
    ys, xs = torch.nonzero(item["mask"], as_tuple=True)
    box = item["boxes"][0]
    # x2 upscaling: inclusive x0 -> 2 x0, x1 -> 2 (x1 + 1) - 1, exactly the mask's extent.
    assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item(), ys.max().item()]


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="split"):
        SyntheticWSOL("training")
    with pytest.raises(ValueError, match="head_radius"):
        SyntheticWSOL("train", head_radius=0.9)
    with pytest.raises(TypeError, match="head_radus"):
        SyntheticWSOL("train", head_radus=0.1)
    with pytest.raises(ValueError, match="image_size"):
        SyntheticWSOL("train", image_size=(8, 8))
    with pytest.raises(IndexError):
        SyntheticWSOL("train", size=3)[3]
