"""Tests for the two-branch ComplementaryModel (shapes, contract, options, training signal)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cirlib.methods.complementary import ComplementaryModel
from cirlib.models.backbones import build_backbone
from cirlib.models.heads import select_class_maps

torch.set_num_threads(1)

K, B, S = 3, 4, 16  # classes, batch, image side (feature map 4x4 with small_cnn stride 4)
HW = S // 4


class MockBackbone(nn.Module):
    """A few-channel backbone with the Backbone contract (``out_channels``, ``new_layer_names``)."""

    def __init__(self, out_channels: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                                  nn.Conv2d(8, out_channels, 3, padding=1), nn.ReLU())
        self.out_channels = out_channels
        self.new_layer_names = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _model(seed: int = 0, backbone: str = "mock", **options) -> ComplementaryModel:
    torch.manual_seed(seed)
    bb = MockBackbone() if backbone == "mock" else build_backbone("small_cnn", width=4)
    return ComplementaryModel(bb, K, **options)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, S, S, generator=g), torch.arange(B) % K


FULL = dict(use_caam=True, use_ssam=True, fusion_loss="stitched")
LITERAL = dict(use_caam=True, use_ssam=True, fusion_loss="max", attention_scale="linear", ssam_mode="additive",
               aggregation="sum", cam_from="attended")


@pytest.mark.parametrize(
    "options",
    [
        {},
        FULL,
        LITERAL,
        dict(FULL, fusion_loss="consistency"),
        dict(use_caam=True, fusion_loss="max"),
        dict(use_ssam=True, ssam_mode="additive"),
    ],
    ids=["plain", "full", "literal", "consistency", "caam_max", "ssam_additive"],
)
def test_forward_and_training_contract(options):
    model = _model(**options)
    x, y = _batch()
    model.eval()
    logits = model(x)
    assert logits.shape == (B, K)
    logits2, cams = model(x, labels=y, return_cam=True)
    torch.testing.assert_close(logits, logits2)
    assert cams.shape == (B, HW, HW) and cams.dtype == torch.float32
    assert torch.isfinite(cams).all()
    model.train()
    out = model.training_loss(x, y)
    assert out["loss"].dim() == 0 and out["loss"].requires_grad
    assert out["logits"].shape == (B, K)
    for key in ("loss_cls", "loss_fusion", "gamma", "beta", "patch_size"):
        assert isinstance(out[key], float), key
    out["loss"].backward()


def test_real_small_cnn_backbone():
    model = _model(backbone="small_cnn", **FULL)
    assert model.ssam.channels == model.backbone.out_channels
    x, y = _batch()
    model.training_loss(x, y)["loss"].backward()
    model.eval()
    _, cams = model(x, labels=y, return_cam=True)
    assert cams.shape == (B, HW, HW)


def test_identity_at_init_matches_plain_model():
    # gamma = beta = 0 and mean aggregation: the attention model computes what the plain model does.
    plain, full = _model(seed=1), _model(seed=1, **FULL)
    full.load_state_dict(plain.state_dict(), strict=False)
    x, y = _batch()
    plain.eval(), full.eval()
    torch.testing.assert_close(full(x), plain(x))
    torch.testing.assert_close(full(x, y, return_cam=True)[1], plain(x, y, return_cam=True)[1])


def test_gradients_reach_gamma_beta_attention_convs_and_heads():
    model = _model(**dict(FULL, ssam_mode="additive"))
    x, y = _batch()
    model.training_loss(x, y)["loss"].backward()
    assert model.caam.gamma.grad.abs().item() > 0
    assert model.ssam.beta.grad.abs().item() > 0
    with torch.no_grad():
        model.caam.gamma.fill_(0.3)
        model.ssam.beta.fill_(0.3)
    model.zero_grad()
    model.training_loss(x, y)["loss"].backward()
    for conv in (model.ssam.query, model.ssam.key, model.ssam.value, model.heads[0].classifier, model.heads[1].classifier):
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_inference_fuses_normalised_maps_of_both_classifiers():
    model = _model().eval()
    assert len(model.heads) == 2 and model.heads[0] is not model.heads[1]
    x, y = _batch()
    _, cams = model(x, labels=y, return_cam=True)
    feats = model.backbone(x)
    maps = []
    for head in model.heads:
        m = select_class_maps(head.maps(feats), y)
        lo, hi = m.amin((1, 2), keepdim=True), m.amax((1, 2), keepdim=True)
        maps.append((m - lo) / (hi - lo))
    torch.testing.assert_close(cams, torch.maximum(*maps))
    logits = 0.5 * (model.heads[0](feats) + model.heads[1](feats))
    torch.testing.assert_close(model(x), logits)


@pytest.mark.parametrize("options", [FULL, LITERAL], ids=["full", "literal"])
def test_eval_is_deterministic_and_uses_the_full_image(options):
    model = _model(**options).eval()
    x, y = _batch()
    torch.manual_seed(123)
    a = model(x, y, return_cam=True)
    torch.manual_seed(456)
    b = model(x, y, return_cam=True)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    # the same as running the pieces on the unmasked image
    f = model.backbone(x)
    fc = model.caam(f, f)[0]
    fs = model.ssam(f)
    t = fc + fs if options.get("aggregation") == "sum" else 0.5 * (fc + fs)
    torch.testing.assert_close(a[0], 0.5 * (model.heads[0](t) + model.heads[1](t)))


def test_training_split_is_complementary_and_seeded():
    model = _model(patch_sizes=(4,))
    x, y = _batch()
    model.generator = torch.Generator().manual_seed(0)
    i1, i2, mask, size = model.split(x)
    assert size == 4 and mask.shape == (B, 1, S, S)
    torch.testing.assert_close(i1 + i2, x)  # fill 0: every pixel in exactly one image
    model.generator = torch.Generator().manual_seed(0)
    assert torch.equal(model.split(x)[2], mask)


def test_loss_decreases_on_a_tiny_batch():
    torch.manual_seed(0)
    model = _model(**dict(FULL, patch_sizes=(4, 8)))
    model.generator = torch.Generator().manual_seed(0)
    x, y = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        out = model.training_loss(x, y)
        out["loss"].backward()
        opt.step()
        losses.append(out["loss_cls"])
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert out["gamma"] != 0.0 and out["beta"] != 0.0


def test_fusion_loss_logged_and_weighted():
    x, y = _batch()
    base = _model(**dict(FULL, fusion_weight=0.0, patch_sizes=(4,)))
    base.generator = torch.Generator().manual_seed(0)
    out0 = base.training_loss(x, y)
    assert out0["loss_fusion"] == 0.0
    weighted = _model(**dict(FULL, fusion_weight=2.0, patch_sizes=(4,)))
    weighted.generator = torch.Generator().manual_seed(0)
    out = weighted.training_loss(x, y)
    assert out["loss_fusion"] > 0
    assert out["loss"].item() == pytest.approx(out["loss_cls"] + 2.0 * out["loss_fusion"], rel=1e-5)


def test_param_groups_put_attention_and_heads_in_new_layers():
    model = _model(**FULL)
    groups = {g["name"]: g for g in model.param_groups(0.01, 10.0)}
    new_ids = {id(p) for p in groups["new_layers"]["params"]}
    for module in (model.caam, model.ssam, model.heads):
        assert all(id(p) in new_ids for p in module.parameters())
    assert groups["new_layers"]["lr"] == pytest.approx(0.1)
    assert all(id(p) not in new_ids for p in model.backbone.parameters())


def test_no_unused_parameters_in_training():
    # DDP rejects parameters that get no gradient: every option set must use all of them.
    for options in (FULL, dict(FULL, ssam_mode="additive"), dict(FULL, fusion_loss=None)):
        model = _model(**options)
        x, y = _batch()
        model.training_loss(x, y)["loss"].backward()
        unused = [n for n, p in model.named_parameters() if p.grad is None]
        assert not unused, unused


def test_bad_options_name_the_valid_values():
    with pytest.raises(ValueError, match="ComplementaryModel: cam_from='middle' is not one of backbone, attended"):
        _model(cam_from="middle")
    with pytest.raises(ValueError, match="stitched"):
        _model(fusion_loss="l2")
    with pytest.raises(ValueError, match="ssam_mode='gated' is not one of gate, additive; did you mean 'gate'"):
        _model(ssam_mode="gated")
    with pytest.raises(ValueError, match="fusion_weight"):
        _model(fusion_weight=-1.0)
    with pytest.raises(TypeError, match="hide_prob"):
        _model(hide_prob=0.5)


def test_registry_builds_every_complementary_method():
    from cirlib.methods import build_model

    for method in ("complementary", "caam", "ssam", "full", "literal"):
        model = build_model(method, "small_cnn", num_classes=K, image_size=S, width=4)
        assert isinstance(model, ComplementaryModel) and model.method == method
    full = build_model("full", "small_cnn", num_classes=K, image_size=S, width=4)
    assert full.caam is not None and full.ssam is not None and full.fusion_loss == "max"
    assert (full.attention_scale, full.ssam_mode, full.aggregation, full.cam_from) == ("tanh", "gate", "mean", "backbone")
    literal = build_model("literal", "small_cnn", num_classes=K, image_size=S, width=4)
    assert (literal.attention_scale, literal.ssam_mode, literal.aggregation, literal.cam_from) == (
        "linear", "additive", "sum", "attended")
    assert literal.fusion_loss == "max" and literal.ssam.value is not None


def test_attention_maps_for_notebooks():
    model = _model(**FULL).eval()
    x, _ = _batch()
    maps = model.attention_maps(x)
    q12, q21 = maps["caam"]
    assert q12.shape == (B, 16, 16)  # the mock backbone's output channels (attention after the backbone)
    assert maps["feature_size"] == (HW, HW)
    assert maps["ssam"].shape == (B, HW * HW, HW * HW)
    torch.testing.assert_close(maps["ssam"].sum(-1), torch.ones(B, HW * HW))
    i1, i2, _, _ = model.split(x)
    pair = model.attention_maps(i1, i2)
    assert not torch.allclose(pair["caam"][0], pair["caam"][1])
    assert _model().attention_maps(x) == {"caam": None, "ssam": None, "feature_size": (HW, HW)}


def test_bf16_autocast_training_and_inference_are_finite():
    model = _model(**LITERAL)
    with torch.no_grad():
        model.caam.gamma.fill_(0.5)
        model.ssam.beta.fill_(0.5)
    x, y = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.training_loss(x * 1e3, y)
        model.eval()
        _, cams = model(x * 1e3, y, return_cam=True)
    assert torch.isfinite(out["loss"]) and torch.isfinite(cams).all()


@pytest.mark.parametrize(
    "options",
    [
        dict(FULL, fusion_loss="max"),
        dict(FULL, fusion_loss="stitched"),
        dict(FULL, fusion_loss="consistency"),
        LITERAL,
    ],
    ids=["max", "stitched", "consistency", "literal"],
)
def test_fusion_maps_are_the_maps_the_training_loss_uses(options):
    """Recomputing the loss from ``fusion_maps`` gives ``training_loss``'s ``loss_fusion`` exactly."""
    from cirlib.methods.complementary import FusionMaps
    from cirlib.methods.fusion_loss import attention_fusion_loss

    x, y = _batch()
    model = _model(**dict(options, patch_sizes=(4, 8)))
    with torch.no_grad():  # non-zero scales, so the attention changes the branches' features
        model.caam.gamma.fill_(0.3)
        model.ssam.beta.fill_(-0.4)
    model.train()
    model.generator = torch.Generator().manual_seed(5)
    out = model.training_loss(x, y)
    model.generator = torch.Generator().manual_seed(5)  # the same split
    maps = model.fusion_maps(x, y)
    assert isinstance(maps, FusionMaps) and torch.equal(maps.mask, model.last_mask)
    assert maps.a1.shape == maps.a2.shape == (B, HW, HW)
    kind = model.fusion_loss
    if kind == "consistency":
        assert maps.a_full is None
        recomputed = attention_fusion_loss(kind, None, maps.a1, maps.a2, maps.mask)
    else:
        assert maps.a_full.shape == (len(model.heads), B, HW, HW)
        recomputed = torch.stack([attention_fusion_loss(kind, a, maps.a1, maps.a2, maps.mask)
                                  for a in maps.a_full]).mean()
    assert out["loss_fusion"] > 0
    assert float(recomputed.detach()) == out["loss_fusion"]


def test_fusion_maps_with_a_given_pair_and_options():
    from cirlib.methods import complementary_pair

    x, y = _batch()
    model = _model(**FULL).eval()
    i1, i2, mask = complementary_pair(x, 4, 0.5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = model.fusion_maps(x, y, pair=(i1, i2, mask))
        again = model.fusion_maps(x, y, pair=(i1, i2, mask), full_image=False)
        # A_1 is classifier 1's GT-class map of I1, read from the backbone's features (cam_from="backbone")
        expected_a1 = select_class_maps(model.heads[0].maps(model.backbone(i1)), y)
        # A_full of classifier k is its GT-class map of the full image
        expected_full = select_class_maps(model.heads[1].maps(model.backbone(x)), y)
    assert maps.mask is mask and again.a_full is None
    assert torch.allclose(maps.a1, expected_a1, atol=1e-6) and torch.equal(maps.a1, again.a1)
    assert torch.allclose(maps.a_full[1], expected_full, atol=1e-6)


@pytest.mark.parametrize("method", ["caam", "ssam", "full", "literal"])
def test_the_taught_modules_run_in_training_and_inference(method):
    """Every default method runs the modules that implement the notebooks' equations, in both phases."""
    from cirlib.methods import build_model

    model = build_model(method, "small_cnn", num_classes=K, image_size=S, width=4)
    modules = [name for name in ("caam", "ssam") if getattr(model, name) is not None]
    assert modules
    calls = {name: 0 for name in modules}
    for name in modules:
        getattr(model, name).register_forward_hook(lambda *_, n=name: calls.__setitem__(n, calls[n] + 1))
    x, y = _batch()
    model.train()
    model.training_loss(x, y)["loss"].backward()
    assert all(n >= 1 for n in calls.values()), calls
    trained = dict(calls)
    model.eval()
    with torch.no_grad():
        model(x)
        model(x, y, return_cam=True)
    assert all(calls[n] >= trained[n] + 2 for n in modules), calls


def test_the_classification_uses_the_attended_features():
    """The logits read F^t = (F^c + F^s) / 2, built from the modules' own outputs."""
    model = _model(**FULL)
    with torch.no_grad():
        model.caam.gamma.fill_(0.3)
        model.ssam.beta.fill_(-0.4)
    model.generator = torch.Generator().manual_seed(3)
    x, y = _batch()
    out = model.training_loss(x, y)
    model.generator = torch.Generator().manual_seed(3)  # the same split again
    i1, i2, _, _ = model.split(x)
    f1, f2 = model.backbone(torch.cat([i1, i2])).chunk(2)
    fc1, fc2 = model.caam(f1, f2)
    fs1, fs2 = model.ssam(f1), model.ssam(f2)
    t1, t2 = 0.5 * (fc1 + fs1), 0.5 * (fc2 + fs2)
    expected = 0.5 * (model.heads[0](t1) + model.heads[1](t2))
    torch.testing.assert_close(out["logits"], expected.detach())
