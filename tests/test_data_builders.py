"""build_dataset / build_loader / collate_wsol."""

from __future__ import annotations

import pytest
import torch

from cirlib.data import (
    DATASET_NAMES,
    CUBDataset,
    SyntheticWSOL,
    WSOLMetadataDataset,
    build_dataset,
    build_loader,
    collate_wsol,
)
from fixtures_data import make_cub_fixture, make_wsol_metadata_fixture


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(ValueError, match=r"Unknown dataset 'cubb'.*synthetic, cub, ilsvrc.*Did you mean 'cub'\?"):
        build_dataset("cubb", "train")
    with pytest.raises(ValueError, match=r"Valid names: synthetic, cub, ilsvrc\.$"):
        build_dataset("mnist", "train")
    assert DATASET_NAMES == ("synthetic", "cub", "ilsvrc")


@pytest.mark.parametrize("name", ["cub", "ilsvrc", "CUB"])
def test_missing_root_is_file_not_found_naming_path_and_layout(tmp_path, name):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(FileNotFoundError, match=rf"(?s){name.lower()}.*{missing.name}.*Expected layout.*image_ids\.txt"):
        build_dataset(name, "test", root=missing)
    with pytest.raises(FileNotFoundError, match="None"):
        build_dataset(name, "test")


def test_build_synthetic_passes_options():
    ds = build_dataset("synthetic", "val", image_size=(32, 40), size=7, num_classes=4, head_radius=0.1)
    assert isinstance(ds, SyntheticWSOL)
    assert len(ds) == 7 and ds.num_classes == 4 and ds.image_size == (32, 40) and ds.spec.head_radius == 0.1


def test_build_cub_official_and_metadata_layouts(tmp_path):
    make_cub_fixture(tmp_path / "CUB_200_2011")
    ds = build_dataset("cub", "test", root=tmp_path / "CUB_200_2011", image_size=64)
    assert isinstance(ds, CUBDataset) and ds[0]["image"].shape == (3, 64, 64)
    train = build_dataset("cub", "train", root=tmp_path / "CUB_200_2011", image_size=56)
    assert train[0]["image"].shape == (3, 56, 56)

    info = make_wsol_metadata_fixture(tmp_path / "wsol", "ILSVRC")
    ds = build_dataset("ilsvrc", "val", root=info["data_root"], image_size=(48, 64), num_classes=3)
    assert isinstance(ds, WSOLMetadataDataset) and ds[1]["image"].shape == (3, 48, 64)
    assert ds[1]["boxes"].shape == (2, 4)
    info = make_wsol_metadata_fixture(tmp_path / "wsolcub", "CUB")
    ds = build_dataset("cub", "test", root=info["data_root"], metadata_root=info["metadata_root"], num_classes=3)
    assert isinstance(ds, WSOLMetadataDataset) and ds.dataset == "CUB"
    with pytest.raises(FileNotFoundError, match="neither images.txt"):
        build_dataset("cub", "test", root=tmp_path)


def test_collate_without_masks_and_with_uneven_boxes(tmp_path):
    info = make_wsol_metadata_fixture(tmp_path, "CUB")
    ds = build_dataset("cub", "test", root=info["data_root"], image_size=32, num_classes=3)
    batch = collate_wsol([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 32, 32)
    assert batch["mask"] is None
    assert [b.shape[0] for b in batch["boxes"]] == [2, 1, 3]
    assert batch["label"].tolist() == [2, 0, 1]
    with pytest.raises(ValueError, match="different shapes"):
        collate_wsol([{**ds[0], "image": torch.zeros(3, 8, 8)}, ds[1]])
    with pytest.raises(ValueError, match="empty"):
        collate_wsol([])


def test_loader_is_seeded():
    ds = SyntheticWSOL("train", size=24, image_size=24)
    order = lambda seed: [i for b in build_loader(ds, 5, shuffle=True, seed=seed) for i in b["image_id"]]  # noqa: E731
    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == sorted(f"synthetic/train/{i}" for i in range(24))
    plain = [i for b in build_loader(ds, 5, shuffle=False) for i in b["image_id"]]
    assert plain == [f"synthetic/train/{i}" for i in range(24)]
    batch = next(iter(build_loader(ds, 4, shuffle=False)))
    assert batch["image"].shape == (4, 3, 24, 24) and batch["mask"].shape == (4, 24, 24)


def test_loader_with_workers_matches_main_process():
    ds = SyntheticWSOL("train", size=8, image_size=24, cache=False)
    a = [b["image"] for b in build_loader(ds, 4, shuffle=True, seed=3)]
    b = [b["image"] for b in build_loader(ds, 4, shuffle=True, seed=3, num_workers=1)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
