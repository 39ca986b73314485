"""Paper scale, end to end, from files on disk: ``cirlib data export`` writes the synthetic dataset in
the CUB-200-2011 and wsolevaluation layouts at 224 px, and every recipe in ``configs/cub/`` and
``configs/ilsvrc/`` trains (random init) and evaluates from those folders through the real loaders,
transforms and backbones, with the README's command line plus the CPU overrides.

Tiny on purpose (1 training image, 1 validation and 1 test image, one step): this checks that the
whole path runs and writes what it should, not that anything is learned. The minutes-long version
is ``benchmarks/paper_scale_e2e.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cirlib.cli import main
from cirlib.data import CUBDataset, SyntheticWSOL, WSOLMetadataDataset, build_dataset
from cirlib.data.export import export_dataset, parse_size

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = sorted((ROOT / "configs" / "cub").glob("*.yaml")) + sorted((ROOT / "configs" / "ilsvrc").glob("*.yaml"))

#: What the CI test overrides in a recipe: the folder, no ImageNet weights (no internet), the CPU,
#: a batch of 1, one epoch, no loader workers (the throughput benchmark covers them).
CPU_OVERRIDES = ("model.pretrained=null", "device=cpu", "data.batch_size=1", "data.eval_batch_size=1",
                 "data.num_workers=0", "train.epochs=1", "train.checkpoint_every_steps=0")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("exported")
    common = dict(image_size=224, train=1, test=1, progress=False)
    return {
        "wsol_cub": export_dataset(base / "wsol_cub", "wsolevaluation", dataset="CUB", val=1, **common).root,
        "wsol_ilsvrc": export_dataset(base / "wsol_ilsvrc", "wsolevaluation", dataset="ILSVRC", val=1, **common).root,
        "cub": export_dataset(base / "cub", "cub", **common).root,
    }


def test_parse_size():
    assert parse_size(224) == (224, 224) and parse_size("224") == (224, 224) and parse_size("300x224") == (300, 224)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("224 by 224")
    with pytest.raises(ValueError, match=">= 16"):
        parse_size("8")


def test_cub_layout_holds_the_generator_boxes_labels_and_masks_exactly(tmp_path):
    summary = export_dataset(tmp_path / "cub", "cub", image_size="96x80", train=5, test=3, num_classes=4, seed=3,
                             progress=False)
    assert summary.counts == {"train": 5, "test": 3} and summary.image_size == (96, 80)
    root = summary.root
    lines = (root / "images.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == [str(i) for i in range(1, 9)]  # 1-based ids
    assert (root / "classes.txt").read_text().splitlines()[0] == "1 001.class_00"
    for split, n in (("train", 5), ("test", 3)):
        source = SyntheticWSOL(split=split, size=n, image_size=(80, 96), num_classes=4, seed=3, cache=False)
        loaded = CUBDataset(root, split=split)
        assert len(loaded) == n and loaded.num_classes == 4
        for i in range(n):
            want = source.render(i)
            image, boxes = loaded.load_image(i)
            assert image.shape == (3, 80, 96)
            assert loaded.records[i].label == want["label"]
            assert boxes.tolist() == [[float(v) for v in want["box"]]]
            mask = np.asarray(Image.open((root / "segmentations" / loaded.records[i].image_id).with_suffix(".png")))
            assert np.array_equal(mask > 127, want["mask"])
            # JPEG (quality 95, 4:2:0 chroma as in most real JPEGs): close to the rendered pixels, not equal
            assert np.abs(image.permute(1, 2, 0).numpy().astype(int) - want["rgb"].astype(int)).mean() < 8


@pytest.mark.parametrize("dataset", ["CUB", "ILSVRC"])
def test_wsolevaluation_layout_holds_the_generator_boxes_and_labels(tmp_path, dataset):
    root = export_dataset(tmp_path / "w", "wsolevaluation", dataset=dataset, image_size=64, train=3, val=2, test=2,
                          progress=False).root
    assert sorted(p.name for p in (root / "metadata" / dataset).iterdir()) == ["test", "train", "val"]
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        source = SyntheticWSOL(split=split, size=n, image_size=64, cache=False)
        loaded = build_dataset(dataset.lower() if dataset == "ILSVRC" else "cub", split, root=root, image_size=64)
        assert isinstance(loaded, WSOLMetadataDataset) and len(loaded) == n
        for i in range(n):
            _, boxes = loaded.load_image(i)
            assert boxes.tolist() == [[float(v) for v in source.render(i)["box"]]]
            assert loaded.records[i].label == source.render(i)["label"]


def test_export_refuses_what_the_layout_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="only train and test"):
        export_dataset(tmp_path / "a", "cub", train=2, val=1, test=1, progress=False)
    with pytest.raises(ValueError, match="unknown layout 'voc'"):
        export_dataset(tmp_path / "b", "voc", progress=False)
    export_dataset(tmp_path / "c", "cub", image_size=32, train=1, test=1, progress=False)
    with pytest.raises(ValueError, match="is not empty; pass --overwrite"):
        export_dataset(tmp_path / "c", "cub", image_size=32, train=1, test=1, progress=False)


def test_cli_data_export(tmp_path, capsys):
    assert main(["data", "export", "--layout", "wsolevaluation", "--dataset", "ilsvrc", "--size", "48", "--train", "2",
                 "--val", "1", "--test", "1", str(tmp_path / "x"), "--no-progress"]) == 0
    assert "use it with --set data.root=" in capsys.readouterr().err
    ids = (tmp_path / "x" / "metadata" / "ILSVRC" / "train" / "image_ids.txt").read_text().split()
    assert ids[0].startswith("train/n000000") and (tmp_path / "x" / "ILSVRC" / ids[0]).is_file()


def _root_for(config: Path, exported: dict[str, Path]) -> Path:
    return exported["wsol_ilsvrc"] if config.parent.name == "ilsvrc" else exported["wsol_cub"]


@pytest.mark.slow
@pytest.mark.parametrize("config", PAPER_CONFIGS, ids=[f"{p.parent.name}/{p.stem}" for p in PAPER_CONFIGS])
def test_paper_config_trains_and_evaluates_from_disk(config, exported, tmp_path, capsys):
    """The README's command (``cirlib train --config configs/... --set data.root=...``) at 224 px."""
    out = tmp_path / "run"
    root = _root_for(config, exported)
    assert main(["train", "--config", str(config), "--set", f"data.root={root}", f"output_dir={out}",
                 *CPU_OVERRIDES, "--no-progress"]) == 0
    assert '"maxboxacc_v2"' in capsys.readouterr().out  # the summary the CLI prints
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["global_step"] == 1
    assert [h["train"]["images"] for h in metrics["history"]] == [1]
    assert metrics["history"][0]["val"]["num_images"] == 1  # the recipe's val split, from the folder
    assert metrics["test"]["num_images"] == 1 and "maxboxacc_v2" in metrics["test"]
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "config.yaml", "final.pt", "last.pt", "metrics.json"]
    ckpt = torch.load(out / "final.pt", map_location="cpu", weights_only=False)
    assert ckpt["config"]["data"]["image_size"] == 224 and ckpt["config"]["model"]["pretrained"] is None


@pytest.mark.slow
def test_official_cub_layout_trains_and_evaluate_matches(exported, tmp_path, capsys):
    """The CUB-200-2011 archive layout (no val split in it), then ``cirlib evaluate`` of the checkpoint."""
    out = tmp_path / "run"
    config = ROOT / "configs" / "cub" / "resnet50_cam.yaml"
    assert main(["train", "--config", str(config), "--set", f"data.root={exported['cub']}", f"output_dir={out}",
                 "eval.val_split=null", *CPU_OVERRIDES, "data.num_workers=2", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["test"]["num_images"] == 1
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "final.pt"), "--device", "cpu", "--out",
                 str(tmp_path / "eval.json"), "--no-progress"]) == 0
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    for key, value in metrics["test"].items():
        assert evaluated[key] == value, key


def test_augmentation_is_a_function_of_seed_epoch_and_image(exported):
    """Per-item seeds: the crop/flip of an image does not depend on what was read before (or by whom)."""
    dataset = build_dataset("cub", "train", root=exported["wsol_cub"], image_size=224)
    dataset.set_augmentation_seed(0)
    first = dataset[0]["image"]
    torch.manual_seed(123)  # the global generator no longer matters
    assert torch.equal(dataset[0]["image"], first)
    dataset.set_epoch(1)
    again = [dataset[0]["image"] for _ in range(2)]
    assert torch.equal(again[0], again[1])
    assert any(not torch.equal(dataset[0]["image"], first) for _ in [dataset.set_epoch(e) for e in range(1, 6)])


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process_with_the_global_batch(tmp_path):
    """``torchrun --nproc_per_node=2`` (gloo) with batch 2 per process = one process with batch 4, from disk.

    VGG16-GAP has no BatchNorm and CAM draws no masks, so the two runs see the same images, crops
    and flips in every step and average the same gradients: the metrics are equal and the weights
    equal up to float summation order. (With BatchNorm each process normalises its own half batch,
    and HaS / the complementary methods draw their masks per process: those runs match in
    distribution only.)
    """
    import os
    import subprocess
    import sys

    root = export_dataset(tmp_path / "data", "wsolevaluation", dataset="CUB", image_size=64, train=8, val=2,
                          test=4, progress=False).root
    config = ROOT / "configs" / "cub" / "vgg16_cam.yaml"
    common = [f"data.root={root}", "model.pretrained=null", "device=cpu", "data.image_size=64",
              "data.eval_batch_size=2", "data.num_workers=0", "train.epochs=1", "train.lr=0.001",
              "train.checkpoint_every_steps=0"]
    env = dict(os.environ, TQDM_DISABLE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cirlib", "train",
         "--config", str(config), "--set", *common, "data.batch_size=2", f"output_dir={tmp_path / 'ddp'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, "-m", "cirlib", "train", "--config", str(config), "--set", *common, "data.batch_size=4",
         f"output_dir={tmp_path / 'single'}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    m2 = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    m1 = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert m2["world_size"] == 2 and m1["world_size"] == 1
    assert m2["global_step"] == m1["global_step"] == 2  # 8 images, global batch 4
    assert m2["history"][0]["train"]["images"] == m1["history"][0]["train"]["images"] == 8
    assert m2["history"][0]["train"]["loss"] == pytest.approx(m1["history"][0]["train"]["loss"], rel=1e-5)
    for key in ("top1", "top5", "maxboxacc", "maxboxacc_v2", "gt_known_loc", "top1_loc", "num_images"):
        assert m2["test"][key] == m1["test"][key], key
    w2 = torch.load(tmp_path / "ddp" / "final.pt", map_location="cpu", weights_only=False)["model"]
    w1 = torch.load(tmp_path / "single" / "final.pt", map_location="cpu", weights_only=False)["model"]
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], rtol=1e-4, atol=1e-6, msg=name)
