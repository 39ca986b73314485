"""ADL: the identity in eval mode, drop mask / importance map in training."""

from __future__ import annotations


import pytest
import torch

from cirlib.methods.adl import ADLModel, AttentionDropout, adl_masks
from cirlib.methods.cam import CAMModel
from cirlib.models import build_backbone



pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("arch,options,size", [("small_cnn", {"width": 4}, 16), ("resnet50", {}, 32)])
def test_eval_mode_is_exactly_the_cam_model(arch, options, size):
    torch.manual_seed(0)
    adl = ADLModel(build_backbone(arch, **options), 3).eval()
    cam = CAMModel(build_backbone(arch, **options), 3).eval()
    cam.load_state_dict(adl.state_dict())  # ADL adds no parameters: the same keys
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        got, want = adl(x, return_cam=True), cam(x, return_cam=True)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert got[1].shape == (2, size // adl.backbone.stride, size // adl.backbone.stride)


def test_masks_follow_the_threshold_and_sigmoid():
    features = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]]).repeat(1, 3, 1, 1)
    drop, importance = adl_masks(features, 0.5)
    assert torch.equal(drop, torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]]))
    assert torch.equal(importance, torch.sigmoid(features[:, :1]))
    layer = AttentionDropout(drop_rate=1.0, threshold=0.5).train()
    assert torch.equal(layer(features), features * drop) and layer.last_dropped
    layer = AttentionDropout(drop_rate=0.0, threshold=0.5).train()
    assert torch.equal(layer(features), features * importance) and not layer.last_dropped


def test_bad_options_are_rejected():
    backbone = build_backbone("small_cnn", width=4)
    with pytest.raises(ValueError, match="drop_rate"):
        ADLModel(backbone, 3, drop_rate=2.0)
    with pytest.raises(ValueError, match="positions"):
        ADLModel(backbone, 3, positions=("middle",))
