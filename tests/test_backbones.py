"""Backbones: output shapes and strides, the early/late split, weight loading."""

from __future__ import annotations

import pytest
import torch
import torchvision

from cirlib.models import ARCHS, Backbone, build_backbone
from cirlib.models.weights import load_backbone_weights


pytestmark = pytest.mark.usefixtures("one_thread")


def _check_split(backbone: Backbone, x: torch.Tensor) -> torch.Tensor:
    backbone.eval()
    with torch.no_grad():
        mid = backbone.early(x)
        out = backbone(x)
        assert mid.shape[1] == backbone.early_channels
        assert out.shape[1] == backbone.out_channels
        torch.testing.assert_close(out, backbone.late(mid))
    return out


@pytest.mark.parametrize(
    "arch,size,kw,expected",
    [
        ("small_cnn", (64, 64), {}, (128, 16, 16)),
        ("small_cnn", (48, 80), {"width": 8}, (32, 12, 20)),
        ("small_cnn", (64, 64), {"width": 8, "num_pools": 3}, (32, 8, 8)),
        ("vgg16", (64, 96), {}, (1024, 4, 6)),
        ("resnet50", (64, 64), {}, (2048, 4, 4)),
        ("resnet50", (64, 64), {"large_feature_map": True}, (2048, 8, 8)),
        ("inception_v3", (80, 80), {}, (1024, 4, 4)),
    ],
)
def test_output_shape_and_split(arch, size, kw, expected):
    torch.manual_seed(0)
    backbone = build_backbone(arch, **kw)
    out = _check_split(backbone, torch.randn(1, 3, *size))
    assert tuple(out.shape) == (1, *expected)
    assert backbone.arch == arch


def test_nominal_strides():
    assert build_backbone("small_cnn").stride == 4
    assert build_backbone("vgg16").stride == 16
    assert build_backbone("resnet50").stride == 16


def test_resnet_last_stage_has_stride_one_without_dilation():
    b = build_backbone("resnet50")
    for m in b.late.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.stride == (1, 1) and m.dilation == (1, 1)
    # layer3 still downsamples: 64 px -> 4x4 (stride 16)
    assert b.early.layer3[0].conv2.stride == (2, 2)


def test_new_layer_names():
    assert build_backbone("small_cnn").new_layer_names == ()
    assert build_backbone("resnet50").new_layer_names == ()
    assert set(build_backbone("vgg16").new_layer_names) == {"late.conv6.weight", "late.conv6.bias"}
    inc = build_backbone("inception_v3")
    assert inc.new_layer_names and all(n.startswith("late.SPG_A3_") for n in inc.new_layer_names)


def test_inception_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="75"):
        build_backbone("inception_v3")(torch.randn(1, 3, 64, 64))


def test_unknown_arch_and_option():
    with pytest.raises(ValueError, match="did you mean 'vgg16'"):
        build_backbone("vgg")
    with pytest.raises(ValueError, match="width"):
        build_backbone("small_cnn", widht=8)
    with pytest.raises(ValueError, match="small_cnn"):
        build_backbone("small_cnn", pretrained="imagenet")


def _assert_loaded(backbone: Backbone, expected: dict[str, torch.Tensor]) -> None:
    own = backbone.state_dict()
    for key, value in expected.items():
        assert torch.equal(own[key], value), key


def test_resnet50_weights_from_torchvision_file(tmp_path):
    torch.manual_seed(1)
    reference = torchvision.models.resnet50()
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    torch.manual_seed(2)  # a different init: the file must overwrite it
    b = build_backbone("resnet50", pretrained=str(path))
    sd = reference.state_dict()
    _assert_loaded(b, {
        "early.conv1.weight": sd["conv1.weight"],
        "early.layer3.5.bn3.running_var": sd["layer3.5.bn3.running_var"],
        "late.layer4.0.conv2.weight": sd["layer4.0.conv2.weight"],
        "late.layer4.2.conv3.weight": sd["layer4.2.conv3.weight"],
    })
    assert b.pretrained == str(path)


def test_vgg16_weights_from_torchvision_keys(tmp_path):
    # vgg16().features only (the 120M-parameter classifier is slow to build); a fake classifier
    # entry checks that the ImageNet head is dropped.
    torch.manual_seed(3)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.6.weight"] = torch.zeros(1000, 4096)
    torch.save(state, tmp_path / "vgg.pth")
    b = build_backbone("vgg16")
    conv6 = b.late.conv6.weight.detach().clone()
    report = load_backbone_weights(b, tmp_path / "vgg.pth")
    _assert_loaded(b, {"early.0.weight": state["features.0.weight"], "early.28.bias": state["features.28.bias"]})
    assert torch.equal(b.late.conv6.weight, conv6)  # new layer untouched
    assert report.dropped == ["classifier.6.weight"]
    assert set(report.new_layers) == {"late.conv6.weight", "late.conv6.bias"}


def test_inception_weights_from_torchvision_file(tmp_path):
    torch.manual_seed(4)
    reference = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "inc.pth")  # wrapped checkpoint
    b = build_backbone("inception_v3", pretrained=str(tmp_path / "inc.pth"))
    sd = reference.state_dict()
    _assert_loaded(b, {
        "early.Conv2d_1a_3x3.conv.weight": sd["Conv2d_1a_3x3.conv.weight"],
        "early.Mixed_6a.branch3x3.conv.weight": sd["Mixed_6a.branch3x3.conv.weight"],
        "early.Mixed_6e.branch_pool.bn.running_mean": sd["Mixed_6e.branch_pool.bn.running_mean"],
    })


def test_own_state_dict_roundtrip_and_ddp_prefix(tmp_path):
    torch.manual_seed(5)
    a = build_backbone("small_cnn", width=8)
    torch.save({f"module.{k}": v for k, v in a.state_dict().items()}, tmp_path / "a.pth")
    torch.manual_seed(6)
    b = build_backbone("small_cnn", width=8, pretrained=str(tmp_path / "a.pth"))
    _assert_loaded(b, a.state_dict())


def test_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        build_backbone("small_cnn", pretrained=str(tmp_path / "missing.pth"))
    torch.save(build_backbone("small_cnn", width=8).state_dict(), tmp_path / "w8.pth")
    with pytest.raises(ValueError, match="shape mismatch"):
        build_backbone("small_cnn", width=16, pretrained=str(tmp_path / "w8.pth"))
    state = build_backbone("small_cnn", width=8).state_dict()
    state.pop("late.block3_conv2.conv.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"1 missing key\(s\), e.g. late.block3_conv2.conv.weight; 1 unexpected key\(s\), e.g. extra.weight"):
        build_backbone("small_cnn", width=8, pretrained=str(tmp_path / "bad.pth"))
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="state dict"):
        build_backbone("small_cnn", pretrained=str(tmp_path / "list.pth"))


def test_imagenet_without_internet_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline, raising=False)
    with pytest.raises(RuntimeError, match="pretrained='/path/to/"):
        build_backbone("resnet50", pretrained="imagenet")


def test_archs_constant():
    assert ARCHS == ("small_cnn", "vgg16", "resnet50", "inception_v3")
