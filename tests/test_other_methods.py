"""ACoL, ADL and CutMix each train a few epochs through the real Trainer with a finite, falling loss."""

from __future__ import annotations

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
