"""The measurements and figures of notebooks 03 (complementary regions) and 04 (CAAM), on tiny inputs."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest
import torch

from cirlib import analysis, viz


def test_fully_hidden_share_is_p_for_one_patch_and_falls_with_smaller_patches():
    region = np.zeros((1, 8, 8), dtype=bool)
    region[0, 0:4, 0:4] = True  # one 4x4 patch, or four 2x2 patches
    one_patch = analysis.fully_hidden_share(region, 4, hide_prob=0.5, draws=4000, seed=0)
    four_patches = analysis.fully_hidden_share(region, 2, hide_prob=0.5, draws=4000, seed=0)
    assert abs(one_patch - 0.5) < 0.03 and abs(four_patches - 0.5 ** 4) < 0.02
    assert analysis.fully_hidden_share(region, 4, hide_prob=0.0, draws=10) == 0.0
    with pytest.raises(ValueError, match="non-empty region"):
        analysis.fully_hidden_share(np.zeros((1, 8, 8), dtype=bool), 4)


def test_mass_in_box_counts_inclusive_corners():
    m = np.zeros((2, 4, 4))
    m[0, 1, 1], m[0, 3, 3] = 3.0, 1.0  # 3 of 4 inside the box (1, 1)-(2, 2)
    m[1] = 1.0
    boxes = [np.array([[1, 1, 2, 2]]), np.array([[0, 0, 3, 3]])]
    assert analysis.mass_in_box(m, boxes) == pytest.approx((0.75 + 1.0) / 2)


def test_row_entropy_is_zero_for_one_hot_and_log_c_for_uniform():
    assert analysis.row_entropy(torch.eye(4)) == pytest.approx(0.0, abs=1e-9)
    assert analysis.row_entropy(torch.full((2, 4, 4), 0.25)) == pytest.approx(math.log(4))


def test_caam_broadcast_finds_the_column_most_rows_pick():
    q = torch.full((2, 3, 3), 0.1)
    q[0, :, 2] = 0.8  # image 0: every row on channel 2, the strongest of its X_2
    q[1, 0, 0], q[1, 1, 1], q[1, 2, 1] = 0.8, 0.8, 0.8  # image 1: two rows on channel 1
    other = torch.ones(2, 3, 5)
    other[0, 2] = 5.0
    other[1, 0] = 5.0  # channel 1 is not image 1's strongest
    out = analysis.caam_broadcast(q, other)
    assert out["max_share"] == pytest.approx(1.0) and out["min_share"] == pytest.approx(2 / 3)
    assert out["strongest"] == pytest.approx(0.5) and out["winners"] == [1, 2]


def _caam_model():
    from cirlib.methods import build_model

    torch.manual_seed(0)
    return build_model("caam", "small_cnn", num_classes=3, image_size=32, width=4).eval()


def test_caam_gamma_sweep_moves_the_features_not_the_backbone_map_and_restores_gamma():
    model = _caam_model()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0])
    boxes = [np.array([[4, 4, 20, 20]])] * 4
    with torch.no_grad():
        f = model.backbone(x)
    sweep = analysis.caam_gamma_sweep(model, x, y, boxes, (f, f.flip(0)), [-0.5, 0.0, 0.5])
    assert sweep["relative_feature_change"][1] == 0.0 and sweep["relative_feature_change"][2] > 0.0
    assert max(sweep["mass_in_box"]) - min(sweep["mass_in_box"]) < 1e-9  # cam_from="backbone"
    assert float(model.caam.gamma.detach()) == 0.0 and len(sweep["top1"]) == 3


def test_caam_figures_draw_with_a_colorbar():
    q = torch.softmax(torch.randn(6, 6), -1)
    img = torch.zeros(3, 16, 16)
    fig = viz.plot_caam_pair(img, img, img, q, q, boxes=[[2, 2, 9, 9]], patch_size=4)
    assert len(fig.axes) == 6  # five panels and the colorbar
    sweep = {"gamma": [-0.5, 0.5], "relative_feature_change": [0.1, 0.1], "mass_in_box": [0.5, 0.5],
             "top1": [90.0, 95.0]}
    assert len(viz.plot_gamma_sweep(sweep, 0.3, 10).axes) == 3
    matplotlib.pyplot.close("all")
