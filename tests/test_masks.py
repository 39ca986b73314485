"""Patch masks: grid geometry, partition, hidden fraction, seeding, HaS patch sizes."""

from __future__ import annotations

import math

import pytest
import torch

from cirlib.methods.masks import (
    HAS_PATCH_SIZES,
    complementary_masks,
    complementary_pair,
    hide_patches,
    patch_grid_mask,
    sample_patch_size,
    scale_patch_sizes,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("h,w,s", [(64, 64, 8), (37, 53, 10), (30, 17, 7), (5, 9, 16), (64, 48, 13)])
def test_mask_is_constant_on_grid_patches(h, w, s):
    mask = patch_grid_mask(4, h, w, s, 0.5, generator=gen(1))
    assert mask.shape == (4, 1, h, w) and mask.dtype == torch.bool
    rows, cols = math.ceil(h / s), math.ceil(w / s)
    for b in range(4):
        for u in range(rows):
            for v in range(cols):
                patch = mask[b, 0, u * s : (u + 1) * s, v * s : (v + 1) * s]
                assert patch.numel() > 0
                assert patch.all() or not patch.any(), f"patch ({u},{v}) is not uniform"


def test_border_patches_are_cut_not_shifted():
    # 10x10 image, s=4: patches start at 0, 4, 8 (anchored at the top-left); the last ones are 2 px.
    masks = [patch_grid_mask(1, 10, 10, 4, 0.5, generator=gen(seed))[0, 0] for seed in range(20)]
    for m in masks:
        assert torch.equal(m[:, 8], m[:, 9]) and torch.equal(m[8], m[9])
        assert torch.equal(m[:, 4], m[:, 7]) and torch.equal(m[4], m[7])
    # columns 7 and 8 lie in different patches, so they differ for some seed
    assert any(not torch.equal(m[:, 7], m[:, 8]) for m in masks)


def test_patch_size_zero_hides_nothing():
    assert patch_grid_mask(3, 11, 7, 0, 1.0, generator=gen()).all()
    images = torch.randn(2, 3, 11, 7)
    hidden, mask = hide_patches(images, 0, 0.9, generator=gen())
    assert torch.equal(hidden, images) and mask.all()


def test_extreme_probabilities():
    assert patch_grid_mask(2, 16, 16, 4, 0.0, generator=gen()).all()
    assert not patch_grid_mask(2, 16, 16, 4, 1.0, generator=gen()).any()


@pytest.mark.parametrize("p", [0.25, 0.5, 0.8])
def test_hidden_fraction_follows_p(p):
    # 4096 images x 64 patches (8x8 grid, divisible sizes so every patch has equal area).
    mask = patch_grid_mask(1024, 64, 64, 8, p, generator=gen(7))
    frac = 1.0 - mask.float().mean().item()
    n = 1024 * 64
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_hidden_patches_per_image_vary_independently():
    mask = patch_grid_mask(256, 32, 32, 8, 0.5, generator=gen(3))
    per_image = 1 - mask.float().mean(dim=(1, 2, 3))
    assert per_image.std() > 0.05  # not the same mask for every image
    assert len({tuple(m.flatten().tolist()) for m in mask[:, :, ::8, ::8]}) > 200


def test_seeds_reproduce_masks_and_differ_across_seeds():
    a = patch_grid_mask(4, 40, 30, 6, 0.5, generator=gen(42))
    b = patch_grid_mask(4, 40, 30, 6, 0.5, generator=gen(42))
    c = patch_grid_mask(4, 40, 30, 6, 0.5, generator=gen(43))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(5)
    d = patch_grid_mask(4, 40, 30, 6, 0.5)
    torch.manual_seed(5)
    e = patch_grid_mask(4, 40, 30, 6, 0.5)
    assert torch.equal(d, e)


def test_hide_patches_fills_hidden_pixels_only():
    images = torch.randn(3, 3, 20, 26)
    hidden, mask = hide_patches(images, 5, 0.5, fill=torch.tensor([1.0, 2.0, 3.0]), generator=gen(2))
    assert hidden.shape == images.shape and hidden.dtype == images.dtype
    m = mask.expand_as(images)
    assert torch.equal(hidden[m], images[m])
    fill = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).expand_as(images)
    assert torch.equal(hidden[~m], fill[~m])
    assert (~mask).any() and mask.any()


@pytest.mark.parametrize("h,w,s", [(64, 64, 16), (45, 70, 9), (33, 20, 50)])
def test_complementary_pair_partitions_the_image(h, w, s):
    images = torch.randn(6, 3, h, w)
    i1, i2, m = complementary_pair(images, s, 0.5, fill=0.0, generator=gen(9))
    m1, m2 = complementary_masks(6, h, w, s, 0.5, generator=gen(9))
    assert torch.equal(m, m1)
    # every pixel visible in exactly one image
    assert torch.equal(m1.int() + m2.int(), torch.ones_like(m1, dtype=torch.int))
    # with mu = 0 the two images add up to the original
    torch.testing.assert_close(i1 + i2, images, rtol=0, atol=0)
    mm = m.expand_as(images)
    assert torch.equal(i1[mm], images[mm]) and (i1[~mm] == 0).all()
    assert torch.equal(i2[~mm], images[~mm]) and (i2[mm] == 0).all()


def test_complementary_pair_with_nonzero_mean():
    images = torch.rand(2, 3, 16, 16)
    mu = 0.5
    i1, i2, _ = complementary_pair(images, 4, 0.5, fill=mu, generator=gen(1))
    torch.testing.assert_close(i1 + i2, images + mu)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="patch_size"):
        patch_grid_mask(1, 8, 8, -1, 0.5)
    with pytest.raises(ValueError, match="hide_prob"):
        patch_grid_mask(1, 8, 8, 2, 1.5)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        hide_patches(torch.zeros(3, 8, 8), 2, 0.5)
    with pytest.raises(ValueError, match="fill"):
        hide_patches(torch.zeros(1, 3, 8, 8), 2, 0.5, fill=torch.zeros(2))


def test_scale_patch_sizes():
    assert scale_patch_sizes(image_size=224) == HAS_PATCH_SIZES
    assert scale_patch_sizes(image_size=64) == (0, 5, 9, 13, 16)
    assert scale_patch_sizes(HAS_PATCH_SIZES, (64, 100)) == (0, 5, 9, 13, 16)  # shorter side
    assert scale_patch_sizes((0, 16), 448) == (0, 32)
    assert scale_patch_sizes((1, 2), 8) == (1, 1)  # never rounds a real patch down to 0
    with pytest.raises(ValueError):
        scale_patch_sizes((), 64)


def test_sample_patch_size_seeded_and_covers_the_set():
    sizes = (0, 5, 9, 13, 16)
    a = [sample_patch_size(sizes, gen(11)) for _ in range(3)]
    assert a[0] == a[1] == a[2]
    g = gen(0)
    draws = [sample_patch_size(sizes, g) for _ in range(200)]
    assert set(draws) == set(sizes)
    with pytest.raises(ValueError):
        sample_patch_size(())
