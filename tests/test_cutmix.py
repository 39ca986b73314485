"""CutMix: label weights equal the pasted area fraction (non-square images too), seeding."""

from __future__ import annotations


import pytest
import torch

from cirlib.methods.cutmix import CutMixModel, cutmix_box, paste_box
from cirlib.models import build_backbone



pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("height,width", [(16, 16), (12, 40), (40, 12)])
def test_weight_is_one_minus_the_pasted_fraction(height, width):
    torch.manual_seed(0)
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, height, width).clone()
    perm = torch.tensor([1, 2, 3, 0])
    for lam in (0.1, 0.5, 0.9):
        top, bottom, left, right = box = cutmix_box(height, width, lam)
        assert 0 <= top <= bottom <= height and 0 <= left <= right <= width
        mixed, weight = paste_box(images, perm, box)
        pasted = (mixed != images).all(dim=1).float().mean(dim=(1, 2))
        assert torch.allclose(pasted, torch.full((4,), 1.0 - weight))


def test_unclipped_box_keeps_the_aspect_ratio():
    torch.manual_seed(0)
    boxes = [cutmix_box(20, 80, 0.75) for _ in range(50)]
    full = [(b - t, r - l) for t, b, l, r in boxes if (b - t, r - l) == (10, 40)]
    assert full, "no unclipped box had sides H*sqrt(1-lam) x W*sqrt(1-lam)"


def test_loss_mixes_both_labels_and_seed_reproduces():
    model = CutMixModel(build_backbone("small_cnn", width=4), 3, cutmix_prob=1.0).train()
    x, y = torch.randn(4, 3, 12, 20), torch.tensor([0, 1, 2, 0])
    torch.manual_seed(1)
    first = model.training_loss(x, y)
    torch.manual_seed(1)
    second = model.training_loss(x, y)
    assert torch.equal(first["loss"], second["loss"]) and first["mix_weight"] == second["mix_weight"]
    assert 0.0 <= first["mix_weight"] <= 1.0
    model.cutmix_prob = 0.0
    assert model.training_loss(x, y)["mix_weight"] == 1.0


def test_bad_options_are_rejected():
    backbone = build_backbone("small_cnn", width=4)
    with pytest.raises(ValueError, match="beta"):
        CutMixModel(backbone, 3, beta=0.0)
    with pytest.raises(ValueError, match="cutmix_prob"):
        CutMixModel(backbone, 3, cutmix_prob=-0.1)


def test_paper_scale_backbone_gives_cams():
    torch.manual_seed(0)
    model = CutMixModel(build_backbone("inception_v3"), 2).eval()
    with torch.no_grad():
        _, cams = model(torch.randn(1, 3, 75, 75), return_cam=True)
    assert cams.ndim == 3 and cams.shape[0] == 1
