"""ACoL: the erased region is exactly the part of A's normalised GT map above the threshold."""

from __future__ import annotations

import math

import pytest
import torch

from cirlib.methods.acol import ACoLModel, erase_mask
from cirlib.models.heads import minmax_normalize
from cirlib.models import build_backbone



pytestmark = pytest.mark.usefixtures("one_thread")


def test_erase_mask_hides_exactly_above_threshold():
    torch.manual_seed(0)
    maps = torch.randn(2, 5, 6)
    keep = erase_mask(maps, 0.6)
    norm = minmax_normalize(maps)
    assert keep.shape == (2, 1, 5, 6)
    assert torch.equal(keep[:, 0] == 0, norm > 0.6)
    assert norm.amin() == 0 and 1 - 1e-5 < norm.amax() <= 1  # the shared normaliser: (A - min) / (max - min + eps)


def test_training_feeds_b_the_erased_features_and_eval_fuses_maps():
    torch.manual_seed(0)
    model = ACoLModel(build_backbone("small_cnn", width=4), num_classes=3, erase_threshold=0.5)
    x, y = torch.randn(2, 3, 16, 16), torch.tensor([0, 2])
    seen = []
    model.head_b.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    out = model.train().training_loss(x, y)
    feats = model.backbone(x).detach()
    _, maps_a = model.head_a.forward_with_maps(feats)
    expected = erase_mask(maps_a[torch.arange(2), y], 0.5)
    assert torch.equal(seen[0], feats * expected)
    assert math.isclose(float(out["loss"].detach()), out["loss_a"] + out["loss_b"], rel_tol=1e-6)
    with torch.no_grad():
        logits, cams = model.eval()(x, return_cam=True)
    assert logits.shape == (2, 3) and cams.shape == (2, 4, 4)
    assert 0 <= float(cams.min()) and float(cams.max()) <= 1


def test_paper_scale_backbone_gives_cams():
    torch.manual_seed(0)
    model = ACoLModel(build_backbone("vgg16"), num_classes=2).eval()
    with torch.no_grad():
        _, cams = model(torch.randn(1, 3, 32, 32), labels=torch.tensor([1]), return_cam=True)
    assert cams.shape == (1, 2, 2)


def test_bad_threshold_is_rejected():
    with pytest.raises(ValueError, match="erase_threshold"):
        ACoLModel(build_backbone("small_cnn", width=4), 3, erase_threshold=1.5)
