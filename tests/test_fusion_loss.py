"""Tests for the attention-based fusion loss (all kinds)."""

from __future__ import annotations

import pytest
import torch

from cirlib.methods.fusion_loss import FUSION_LOSSES, attention_fusion_loss, downsample_mask, needs_full_map
from cirlib.models.heads import minmax_normalize

torch.set_num_threads(1)


def _maps(seed: int, shape=(3, 4, 4)) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _mask(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # 2x2 patches of 8 px on a 16 px image -> 4x4 feature cells each fully in I1 or I2
    patches = torch.rand(3, 1, 2, 2, generator=g) > 0.5
    return patches.repeat_interleave(8, -1).repeat_interleave(8, -2)


def test_minmax_normalize_range_and_constant_maps():
    maps = _maps(0) * 7 - 3
    out = minmax_normalize(maps)
    assert out.amin(dim=(1, 2)).abs().max() < 1e-6
    assert (out.amax(dim=(1, 2)) - 1).abs().max() < 1e-5
    const = torch.full((2, 3, 3), 5.0)
    assert torch.equal(minmax_normalize(const), torch.zeros(2, 3, 3))


def test_downsample_mask_is_visible_fraction():
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., :2, :1] = True  # half of the top-left 2x2 cell
    m = downsample_mask(mask, (2, 2))
    torch.testing.assert_close(m, torch.tensor([[[0.5, 0.0], [0.0, 0.0]]]))


@pytest.mark.parametrize("kind", FUSION_LOSSES)
def test_zero_when_maps_agree(kind):
    a = _maps(0)
    # Scaled / shifted copies agree after min-max normalisation.
    loss = attention_fusion_loss(kind, 3 * a + 1, a, 2 * a, _mask())
    assert loss.item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("kind", FUSION_LOSSES)
def test_positive_when_maps_disagree_and_differentiable(kind):
    full = _maps(0).requires_grad_(True)
    m1 = _maps(1).requires_grad_(True)
    m2 = _maps(2).requires_grad_(True)
    loss = attention_fusion_loss(kind, full, m1, m2, _mask())
    assert loss.item() > 0.05
    assert 0.0 <= loss.item() <= 1.0
    loss.backward()
    if kind == "consistency":
        assert m1.grad.abs().sum() > 0 and m2.grad.abs().sum() > 0
        assert full.grad is None
    else:
        assert full.grad.abs().sum() > 0
        # the target is a stop-gradient
        assert m1.grad is None and m2.grad is None


def test_stitched_target_uses_the_mask():
    mask = _mask(1)
    a1, a2 = _maps(1), _maps(2)
    m = downsample_mask(mask, (4, 4))
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    stitched = m * minmax_normalize(a1) + (1 - m) * minmax_normalize(a2)
    stitched = 2 * stitched + 1  # any affine copy is as good
    # The stitched map itself is a perfect full map.
    assert attention_fusion_loss("stitched", stitched, a1, a2, mask).item() < 2e-5
    # Swapping the roles (the inverted mask) is not, unless the mask is trivial.
    loss_inv = attention_fusion_loss("stitched", stitched, a1, a2, ~mask).item()
    assert loss_inv > 0.05


def test_max_target():
    a1, a2 = _maps(1), _maps(2)
    target = torch.maximum(minmax_normalize(a1), minmax_normalize(a2))
    assert attention_fusion_loss("max", target, a1, a2).item() < 2e-5


def test_errors_name_the_problem():
    a = _maps(0)
    with pytest.raises(ValueError, match="stitched.*consistency.*max"):
        attention_fusion_loss("l2", a, a, a, _mask())
    with pytest.raises(ValueError, match="full_map"):
        attention_fusion_loss("stitched", None, a, a, _mask())
    with pytest.raises(ValueError, match="mask"):
        attention_fusion_loss("stitched", a, a, a, None)
    with pytest.raises(ValueError, match="same shape"):
        attention_fusion_loss("consistency", None, a, _maps(1, (3, 4, 5)))
    with pytest.raises(ValueError, match="kind='mean' is not one of stitched, consistency, max"):
        attention_fusion_loss("mean", a, a, a, _mask())


def test_needs_full_map():
    assert needs_full_map("stitched") and needs_full_map("max") and not needs_full_map("consistency")
