"""Hide-and-Seek: hides at training time only, per-batch patch sizes, seeding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cirlib.methods import HaSModel, build_model
from cirlib.models import Backbone


class Recorder(Backbone):
    """A mock backbone that records its inputs (identity early, 1x1 conv late)."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(nn.Identity(), nn.Conv2d(3, 4, 1), 3, 4, arch="mock")
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return super().forward(x)


def test_training_hides_patches_and_inference_sees_full_image():
    model = HaSModel(Recorder(), 3, patch_sizes=[4], hide_prob=0.5)
    model.generator = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 16, 12) + 1.0  # strictly positive, so hidden (= 0) pixels are visible
    out = model.train().training_loss(x, torch.zeros(8, dtype=torch.long))
    seen = model.backbone.seen[-1]
    hidden = seen == 0
    assert hidden.any() and (~hidden).any()
    assert torch.equal(seen[~hidden], x[~hidden])
    assert out["patch_size"] == 4.0 and 0.2 < out["hidden_fraction"] < 0.8
    assert set(out) >= {"loss", "logits", "loss_cls"}
    model.eval()
    with torch.no_grad():
        model(x)
        model(x, return_cam=True)
    assert torch.equal(model.backbone.seen[-1], x) and torch.equal(model.backbone.seen[-2], x)


def test_patch_size_drawn_per_batch_from_scaled_default():
    model = HaSModel(Recorder(), 3)
    assert model.patch_sizes_for(64, 64) == (0, 5, 9, 13, 16)
    assert model.patch_sizes_for(224, 300) == (0, 16, 32, 44, 56)
    model.generator = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 64, 64) + 1.0, torch.zeros(2, dtype=torch.long)
    sizes = {int(model.training_loss(x, y)["patch_size"]) for _ in range(40)}
    assert sizes == {0, 5, 9, 13, 16}
    # patch size 0 means the batch is not hidden at all
    model.patch_sizes = (0,)
    model.training_loss(x, y)
    assert torch.equal(model.backbone.seen[-1], x)


def test_seed_reproduces_hiding():
    x, y = torch.rand(4, 3, 20, 20) + 1.0, torch.zeros(4, dtype=torch.long)
    runs = []
    for _ in range(2):
        model = HaSModel(Recorder(), 2, patch_sizes=[3, 5])
        torch.manual_seed(123)  # the global generator, as seeded by seed_everything
        model.training_loss(x, y)
        model.training_loss(x, y)
        runs.append(model.backbone.seen)
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1]))


def test_fill_value_and_validation():
    model = HaSModel(Recorder(), 2, patch_sizes=[2], hide_prob=1.0, fill=[0.1, 0.2, 0.3])
    model.training_loss(torch.rand(1, 3, 4, 4), torch.zeros(1, dtype=torch.long))
    expected = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    torch.testing.assert_close(model.backbone.seen[-1], expected)
    with pytest.raises(ValueError, match="hide_prob"):
        HaSModel(Recorder(), 2, hide_prob=2.0)
    with pytest.raises(ValueError, match="patch_sizes"):
        HaSModel(Recorder(), 2, patch_sizes=[-1])


def test_build_model_has_trains_one_step():
    torch.manual_seed(0)
    model = build_model("has", "small_cnn", num_classes=3, width=4)
    opt = torch.optim.SGD(model.param_groups(0.05, 1.0), lr=0.05)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    loss = model.train().training_loss(x, y)["loss"]
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
