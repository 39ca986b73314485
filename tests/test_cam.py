"""CAM: the head's maps are the pre-GAP logits, return_cam shapes, param groups, build_model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cirlib.methods import METHODS, CAMModel, build_model, class_activation_maps, describe_methods
from cirlib.methods.base import WSOLModel
from cirlib.models import Backbone, CAMHead, build_backbone


class TinyMock(Backbone):
    """A seeded two-conv mock backbone: early = conv(3->4), late = conv(4->6) with one new layer."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        early = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        late = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, stride=2), nn.ReLU())
        super().__init__(early, late, 4, 6, new_layer_names=("late.0.weight", "late.0.bias"), arch="mock", stride=2)


def test_class_activation_maps_matches_manual_sum():
    torch.manual_seed(0)
    feats, w, b = torch.randn(2, 5, 3, 4), torch.randn(7, 5), torch.randn(7)
    maps = class_activation_maps(feats, w)
    manual = torch.zeros(2, 7, 3, 4)
    for k in range(7):
        for c in range(5):
            manual[:, k] += w[k, c] * feats[:, c]
    torch.testing.assert_close(maps, manual)
    # GAP then linear == linear then GAP
    torch.testing.assert_close(maps.mean((2, 3)) + b, nn.functional.linear(feats.mean((2, 3)), w, b))
    torch.testing.assert_close(class_activation_maps(feats, w, b).mean((2, 3)), maps.mean((2, 3)) + b)
    torch.testing.assert_close(class_activation_maps(feats, w.view(7, 5, 1, 1)), maps)
    with pytest.raises(ValueError, match="channels"):
        class_activation_maps(feats, torch.randn(7, 4))


def test_head_maps_are_the_pre_gap_logits():
    torch.manual_seed(1)
    head = CAMHead(6, 3)
    nn.init.normal_(head.classifier.bias)
    feats = torch.randn(4, 6, 5, 7)
    logits, maps = head.forward_with_maps(feats)
    assert maps.shape == (4, 3, 5, 7)
    torch.testing.assert_close(maps.mean((2, 3)) + head.classifier.bias, logits)
    torch.testing.assert_close(head(feats), logits)


@pytest.mark.parametrize("labels", [None, torch.tensor([2, 0, 1])])
def test_return_cam_shapes_and_selection(labels):
    model = CAMModel(TinyMock(), num_classes=3).eval()
    x = torch.randn(3, 3, 10, 14)
    with torch.no_grad():
        logits = model(x)
        logits2, cams = model(x, labels=labels, return_cam=True)
        _, maps = model.forward_maps(x)
    assert logits.shape == (3, 3) and cams.shape == (3, 5, 7) and cams.dtype == torch.float32
    torch.testing.assert_close(logits, logits2)
    chosen = logits.argmax(1) if labels is None else labels
    for b in range(3):
        torch.testing.assert_close(cams[b], maps[b, chosen[b]])
    # the CAM of the chosen class averages to its logit minus the bias
    bias = model.head.classifier.bias
    torch.testing.assert_close(cams.mean((1, 2)) + bias[chosen], logits[torch.arange(3), chosen])


def test_training_loss_is_cross_entropy_and_backpropagates():
    model = CAMModel(TinyMock(), num_classes=3).train()
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    out = model.training_loss(x, y)
    assert set(out) >= {"loss", "logits", "loss_cls"}
    torch.testing.assert_close(out["loss"], nn.functional.cross_entropy(out["logits"], y))
    out["loss"].backward()
    assert model.head.classifier.weight.grad is not None
    assert model.backbone.early[0].weight.grad is not None


def test_param_groups_split_new_layers():
    model = CAMModel(TinyMock(), num_classes=3)
    groups = {g["name"]: g for g in model.param_groups(0.01, new_layer_lr_mult=10.0)}
    old = {id(p) for p in groups["backbone"]["params"]}
    new = {id(p) for p in groups["new_layers"]["params"]}
    assert groups["backbone"]["lr"] == pytest.approx(0.01) and groups["new_layers"]["lr"] == pytest.approx(0.1)
    assert old == {id(p) for p in model.backbone.early.parameters()}
    assert new == {id(p) for p in model.backbone.late.parameters()} | {id(p) for p in model.head.parameters()}
    assert len(old) + len(new) == len(list(model.parameters()))
    torch.optim.SGD(model.param_groups(0.01), lr=0.01)  # accepted by torch.optim
    model.backbone.early[0].weight.requires_grad_(False)
    assert sum(len(g["params"]) for g in model.param_groups(0.01)) == len(list(model.parameters())) - 1


def test_base_class_requires_implementations():
    model = WSOLModel(TinyMock(), 3)
    with pytest.raises(NotImplementedError):
        model(torch.randn(1, 3, 8, 8))
    with pytest.raises(NotImplementedError):
        model.training_loss(torch.randn(1, 3, 8, 8), torch.tensor([0]))
    with pytest.raises(ValueError):
        WSOLModel(TinyMock(), 0)


def test_build_model_cam_and_has():
    cam = build_model("cam", "small_cnn", num_classes=4, width=8)
    assert isinstance(cam, CAMModel) and cam.method == "cam" and cam.num_classes == 4
    assert cam.backbone.out_channels == 32
    has = build_model("has", num_classes=4, width=8, hide_prob=0.3, patch_sizes=[4, 8])
    assert has.method == "has" and has.hide_prob == 0.3 and has.patch_sizes == (4, 8)
    assert all(m in describe_methods() for m in METHODS)


def test_build_model_errors():
    with pytest.raises(ValueError, match=r"method='hsa'.*did you mean 'has'"):
        build_model("hsa")
    with pytest.raises(ValueError, match=r"did you mean 'resnet50'"):
        build_model("cam", arch="resnet5")
    with pytest.raises(ValueError, match=r"hide_prb.*did you mean 'hide_prob'"):
        build_model("has", hide_prb=0.5)
    with pytest.raises(ValueError, match="Unknown option"):
        build_model("cam", patch_sizes=[8])  # a HaS option given to CAM
    with pytest.raises(ValueError, match="too small"):
        build_model("cam", arch="inception_v3", image_size=64)


def test_build_model_complementary_family_presets(monkeypatch):
    import sys
    import types

    calls = []

    class FakeComplementary(WSOLModel):
        def __init__(self, backbone, num_classes, *, use_caam=False, use_ssam=False, fusion_loss=None, lam=1.0):
            super().__init__(backbone, num_classes)
            calls.append((use_caam, use_ssam, fusion_loss, lam))

    fake = types.ModuleType("cirlib.methods.complementary")
    fake.ComplementaryModel = FakeComplementary
    monkeypatch.setitem(sys.modules, "cirlib.methods.complementary", fake)
    for name in ("complementary", "caam", "ssam", "full"):
        assert build_model(name, width=4).method == name
    assert calls == [
        (False, False, None, 1.0), (True, False, None, 1.0), (False, True, None, 1.0), (True, True, "max", 1.0)
    ]
    build_model("complementary", width=4, fusion_loss="stitched", lam=0.5)  # override a preset
    assert calls[-1] == (False, False, "stitched", 0.5)
    with pytest.raises(ValueError, match="did you mean 'lam'"):
        build_model("full", width=4, lamb=2.0)


def test_real_backbone_cam_resolution():
    torch.manual_seed(0)
    model = CAMModel(build_backbone("small_cnn", width=8), 5).eval()
    with torch.no_grad():
        logits, cams = model(torch.randn(2, 3, 64, 48), return_cam=True)
    assert logits.shape == (2, 5) and cams.shape == (2, 16, 12)


def test_label_maps_are_the_selected_class_maps():
    from cirlib.models.heads import select_class_maps

    torch.manual_seed(0)
    head = CAMHead(6, 4)
    feats, labels = torch.randn(5, 6, 3, 4), torch.tensor([0, 3, 1, 3, 2])
    torch.testing.assert_close(head.label_maps(feats, labels), select_class_maps(head.maps(feats), labels))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        head.label_maps(feats, torch.tensor([0, 4, 1, 3, 2]))
    with pytest.raises(ValueError, match="features"):
        head.label_maps(torch.randn(5, 7, 3, 4), labels)


def test_classify_is_forward_on_pooled_features():
    torch.manual_seed(0)
    head, feats = CAMHead(6, 4), torch.randn(5, 6, 3, 4)
    assert torch.equal(head.classify(feats.mean((2, 3))), head(feats))
