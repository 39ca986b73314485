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
    """A few-channel backbone with the Backbone contract: forward == late(early(x))."""

    def __init__(self, early_channels: int = 8, out_channels: int = 16) -> None:
        super().__init__()
        self.early = nn.Sequential(nn.Conv2d(3, early_channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))
        self.late = nn.Sequential(nn.Conv2d(early_channels, out_channels, 3, padding=1), nn.ReLU())
        self.early_channels, self.out_channels = early_channels, out_channels
        self.new_layer_names = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(self.early(x))


def _model(seed: int = 0, backbone: str = "mock", **options) -> ComplementaryModel:
    torch.manual_seed(seed)
    bb = MockBackbone() if backbone == "mock" else build_backbone("small_cnn", width=4)
    return ComplementaryModel(bb, K, **options)


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, S, S, generator=g), torch.arange(B) % K


FULL = dict(use_caam=True, use_ssam=True, fusion_loss="stitched")


@pytest.mark.parametrize(
    "options",
    [
        {},
        FULL,
        dict(FULL, attention_at="late", ssam_mode="additive", attention_scale="linear", aggregation="sum"),
        dict(FULL, cam_from="backbone"),
        dict(FULL, classifier="shared", cam_fusion="mean", fusion_loss="consistency"),
        dict(use_caam=True, fusion_loss="max", attention_at="late", cam_from="backbone"),
    ],
    ids=["plain", "full", "literal", "cam_from_backbone", "shared_consistency", "caam_max_late"],
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


@pytest.mark.parametrize("placement", ["late", "early"])
def test_real_small_cnn_backbone_both_placements(placement):
    model = _model(backbone="small_cnn", **dict(FULL, attention_at=placement))
    expected = model.backbone.out_channels if placement == "late" else model.backbone.early_channels
    assert model.ssam.channels == expected
    x, y = _batch()
    out = model.training_loss(x, y)
    out["loss"].backward()
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


def test_shared_vs_two_classifiers():
    two, shared = _model(), _model(classifier="shared")
    assert len(two.heads) == 2 and two.head(0) is not two.head(1)
    assert len(shared.heads) == 1 and shared.head(0) is shared.head(1)
    n_head = sum(p.numel() for p in shared.heads.parameters())
    assert sum(p.numel() for p in two.heads.parameters()) == 2 * n_head


def test_inference_fuses_normalised_maps_of_both_classifiers():
    for fusion in ("max", "mean"):
        model = _model(cam_fusion=fusion).eval()
        x, y = _batch()
        _, cams = model(x, labels=y, return_cam=True)
        feats = model.backbone(x)
        maps = []
        for head in model.heads:
            m = select_class_maps(head.maps(feats), y)
            lo, hi = m.amin((1, 2), keepdim=True), m.amax((1, 2), keepdim=True)
            maps.append((m - lo) / (hi - lo + 1e-6))
        expected = torch.maximum(*maps) if fusion == "max" else 0.5 * (maps[0] + maps[1])
        torch.testing.assert_close(cams, expected)
        logits = 0.5 * (model.heads[0](feats) + model.heads[1](feats))
        torch.testing.assert_close(model(x), logits)


@pytest.mark.parametrize("placement", ["late", "early"])
def test_eval_is_deterministic_and_uses_the_full_image(placement):
    model = _model(**dict(FULL, attention_at=placement)).eval()
    x, y = _batch()
    torch.manual_seed(123)
    a = model(x, y, return_cam=True)
    torch.manual_seed(456)
    b = model(x, y, return_cam=True)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    # the same as running the pieces on the unmasked image
    t = model._attend_single(model.attention_features(x))
    t = model.backbone.late(t) if placement == "early" else t
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
    with pytest.raises(ValueError, match="ComplementaryModel: attention_at='middle' is not one of early, late"):
        _model(attention_at="middle")
    with pytest.raises(ValueError, match="stitched"):
        _model(fusion_loss="l2")
    with pytest.raises(ValueError, match="classifier='three' is not one of two, shared"):
        _model(classifier="three")
    with pytest.raises(ValueError, match="hide_prob"):
        _model(hide_prob=1.5)


def test_registry_builds_every_complementary_method():
    from cirlib.methods import build_model

    for method in ("complementary", "caam", "ssam", "full"):
        model = build_model(method, "small_cnn", num_classes=K, image_size=S, width=4)
        assert isinstance(model, ComplementaryModel) and model.method == method
    full = build_model("full", "small_cnn", num_classes=K, image_size=S, width=4)
    assert full.caam is not None and full.ssam is not None and full.fusion_loss == "max"
    assert full.attention_at == "late" and full.cam_from == "backbone"


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


def test_caam_temperature_option_reaches_the_module():
    model = _model(use_caam=True, caam_temperature="sqrt_n")
    assert model.caam.temperature == "sqrt_n"


def test_bf16_autocast_training_and_inference_are_finite():
    model = _model(**dict(FULL, ssam_mode="additive", attention_at="late"))
    with torch.no_grad():
        model.caam.gamma.fill_(0.5)
        model.ssam.beta.fill_(0.5)
    x, y = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.training_loss(x * 1e3, y)
        model.eval()
        _, cams = model(x * 1e3, y, return_cam=True)
    assert torch.isfinite(out["loss"]) and torch.isfinite(cams).all()


@pytest.mark.parametrize("placement, channels", [("early", 8), ("late", 16)])
def test_attention_features_follow_the_placement(placement, channels):
    model = _model(**dict(FULL, attention_at=placement))
    x, _ = _batch()
    feats = model.attention_features(x)
    assert model.attention_channels == channels == feats.shape[1]
    expected = model.backbone.early(x) if placement == "early" else model.backbone(x)
    torch.testing.assert_close(feats, expected)
    maps = model.attention_maps(x)
    assert maps["caam"][0].shape == (B, channels, channels)
    assert maps["ssam"].shape == (B, HW * HW, HW * HW)


class _DiscardingFullPass(ComplementaryModel):
    """The full-image training pass as it was before it skipped the attention: compute F^t, discard it."""

    def _full_training_cam_features(self, images, need_plain):
        t, plain = self.full_features(images, need_plain=need_plain)
        return self._cam_features(t, plain)


@pytest.mark.parametrize("fusion", ["max", "stitched"])
def test_full_pass_without_attention_is_bit_for_bit_the_discarding_one(fusion):
    """Skipping CAAM/SSAM in the third pass (their output was unused) moves no loss, weight or buffer."""
    models = []
    for cls in (ComplementaryModel, _DiscardingFullPass):
        torch.manual_seed(0)
        backbone = build_backbone("small_cnn", width=4)
        model = cls(backbone, 5, use_caam=True, use_ssam=True, fusion_loss=fusion, attention_at="late",
                    cam_from="backbone")
        with torch.no_grad():  # non-zero scales, so the attention matters for the branches
            model.caam.gamma.fill_(0.3)
            model.ssam.beta.fill_(-0.4)
        model.generator = torch.Generator().manual_seed(1)
        models.append((model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)))
    torch.manual_seed(2)
    x, y = torch.randn(6, 3, 32, 32), torch.randint(0, 5, (6,))
    for _ in range(3):
        losses = []
        for model, opt in models:
            out = model.training_loss(x, y)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            losses.append((out["loss"].item(), out["loss_fusion"]))
        assert losses[0] == losses[1] and losses[0][1] > 0
    (a, _), (b, _) = models
    for (name, ta), tb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(ta, tb), name


@pytest.mark.parametrize(
    "options",
    [
        dict(FULL, fusion_loss="max"),
        dict(FULL, fusion_loss="stitched", attention_at="early"),
        dict(FULL, fusion_loss="consistency", classifier="shared"),
    ],
    ids=["max_late", "stitched_early", "consistency_shared"],
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
        expected_a1 = select_class_maps(model.head(0).maps(model.backbone(i1)), y)
        # A_full of classifier k is its GT-class map of the full image
        expected_full = select_class_maps(model.head(1).maps(model.backbone(x)), y)
    assert maps.mask is mask and again.a_full is None
    assert torch.allclose(maps.a1, expected_a1, atol=1e-6) and torch.equal(maps.a1, again.a1)
    assert torch.allclose(maps.a_full[1], expected_full, atol=1e-6)


class _SpatialModel(ComplementaryModel):
    """The same model, forced through the spatial path (F^t formed, then GAP) everywhere."""

    @property
    def pools_attention(self) -> bool:
        return False


@pytest.mark.parametrize(
    "options",
    [
        dict(FULL, fusion_loss="max"),
        dict(FULL, ssam_mode="additive", attention_scale="linear", aggregation="sum"),
        dict(use_caam=True, caam_energy="danet", caam_temperature="sqrt_n"),
        dict(use_ssam=True, classifier="shared"),
    ],
    ids=["full", "literal_modules", "caam_only", "ssam_shared"],
)
def test_pooled_attention_matches_the_spatial_path(options):
    # Logits read only the mean of F^t, so the modules' pooled outputs give the same training loss,
    # gradients and inference as forming F^t (up to float rounding); the maps are the very same.
    pooled, spatial = _model(seed=2, **options), _model(seed=2, **options)
    spatial.__class__ = _SpatialModel
    assert pooled.pools_attention and not spatial.pools_attention
    with torch.no_grad():
        for m in (pooled, spatial):
            if m.caam is not None:
                m.caam.gamma.fill_(0.4)
            if m.ssam is not None:
                m.ssam.beta.fill_(-0.3)
    x, y = _batch()
    outs = []
    for m in (pooled, spatial):
        m.generator = torch.Generator().manual_seed(5)
        out = m.training_loss(x, y)
        out["loss"].backward()
        outs.append(out)
    torch.testing.assert_close(outs[0]["loss"], outs[1]["loss"])
    torch.testing.assert_close(outs[0]["logits"], outs[1]["logits"])
    for (name, a), b in zip(pooled.named_parameters(), spatial.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    pooled.eval(), spatial.eval()
    torch.testing.assert_close(pooled(x), spatial(x))
    (la, ma), (lb, mb) = pooled(x, y, return_cam=True), spatial(x, y, return_cam=True)
    torch.testing.assert_close(la, lb)
    assert torch.equal(ma, mb)


@pytest.mark.parametrize("options", [dict(FULL, cam_from="attended"), dict(FULL, attention_at="early"), {}])
def test_attention_is_pooled_only_where_the_maps_do_not_read_it(options):
    assert not _model(**options).pools_attention
