"""ACoL, ADL and CutMix each train a few epochs through the real Trainer with a finite, falling loss."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from cirlib.config import load_config
from cirlib.data import build_dataset, collate_wsol
from cirlib.engine import Trainer
from cirlib.methods.acol import ACoLModel
from cirlib.methods.adl import ADLModel
from cirlib.methods.cutmix import CutMixModel
from cirlib.models import build_backbone

TINY = Path(__file__).resolve().parents[1] / "configs" / "synthetic" / "tiny.yaml"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("model_class", [ACoLModel, ADLModel, CutMixModel])
def test_trains_with_the_trainer(tmp_path, model_class):
    torch.manual_seed(0)
    cfg = load_config(TINY, [f"output_dir={tmp_path / 'run'}", "train.epochs=3"])
    ds = Subset(build_dataset("synthetic", "train", image_size=32), range(32))
    loader = DataLoader(ds, batch_size=16, shuffle=True, collate_fn=collate_wsol)
    model = model_class(build_backbone("small_cnn", width=8), num_classes=10)
    result = Trainer(model, loader, cfg, write=False, progress=False).fit()
    losses = [h["train"]["loss"] for h in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


METHOD_CONFIGS = sorted(p for d in ("cub", "ilsvrc") for p in (TINY.parents[1] / d).glob("*.yaml")
                        if p.stem.rsplit("_", 1)[-1] in ("acol", "adl", "cutmix"))


def test_every_method_has_a_paper_scale_config_per_dataset_and_backbone():
    names = {f"{p.parent.name}/{p.stem}" for p in METHOD_CONFIGS}
    assert names == {f"{d}/{a}_{m}" for d in ("cub", "ilsvrc") for a in ("vgg16", "resnet50", "inception_v3")
                     for m in ("acol", "adl", "cutmix")}


@pytest.mark.parametrize("path", METHOD_CONFIGS, ids=[f"{p.parent.name}/{p.stem}" for p in METHOD_CONFIGS])
def test_paper_scale_config_names_its_method_and_valid_options(path):
    """Cheap check of each recipe (the end-to-end run from disk is tests/test_paper_scale.py's)."""
    from cirlib.methods.registry import get_spec

    cfg = load_config(path)
    arch, method = path.stem.rsplit("_", 1)
    assert (cfg.model.method, cfg.model.arch, cfg.name) == (method, arch, f"{path.parent.name}_{path.stem}")
    assert cfg.model.pretrained == "imagenet" and cfg.data.image_size == 224 and cfg.data.batch_size == 64
    accepted = set(inspect.signature(get_spec(method).model_class()).parameters) - {"backbone", "num_classes"}
    assert cfg.model.options and set(cfg.model.options) <= set(accepted), cfg.model.options
    assert "docs/design.md" in path.read_text().splitlines()[0]
