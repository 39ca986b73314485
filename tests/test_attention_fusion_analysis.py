"""The helpers of notebooks 05 (SSAM's attention) and 06 (the fusion loss), on tiny hand-made inputs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cirlib import analysis, viz  # noqa: E402


def _model(method: str):
    from cirlib.methods import build_model

    torch.manual_seed(0)
    return build_model(method, "small_cnn", num_classes=3, image_size=16, width=4)


def test_query_attention_takes_the_row_of_the_query_cell_and_the_column_sums():
    s = np.zeros((6, 6))
    s[:, 4] = 1.0  # every query looks at cell 4 = (row 1, column 1) of a 2 x 3 grid
    s[5] = np.full(6, 1 / 6)  # the query of cell (1, 2) looks everywhere
    row, received = analysis.query_attention(s, (2, 3), (20, 30), query_xy=(29, 19))  # x = 29, y = 19: cell (1, 2)
    assert row == pytest.approx(np.full((2, 3), 1 / 6))
    assert received[1, 1] == pytest.approx(5 + 1 / 6) and received.sum() == pytest.approx(6.0)
    row0, _ = analysis.query_attention(s, (2, 3), (20, 30), query_xy=(0, 0))  # x, y not swapped: cell (0, 0)
    assert row0[1, 1] == 1.0 and row0.sum() == 1.0
    with pytest.raises(ValueError, match="outside"):
        analysis.query_attention(s, (2, 3), (20, 30), query_xy=(30, 0))


def test_gate_factors_are_one_plus_beta_times_received_minus_one():
    parts = {"head_per_cell": 50.0, "body_per_cell": 0.2, "background_per_cell": 0.0}
    assert analysis.gate_factors(parts, 0.5) == pytest.approx({"head": 25.5, "body": 0.6, "background": 0.5})


def test_map_regions_joins_the_region_activation_and_the_kept_pixels():
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0], maps[0, 1, 1] = 1.0, 0.6
    head, body = np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4), bool)
    head[0, 0, 0], body[0, 1, :] = True, True
    out = analysis.map_regions(maps, head, body, tau=0.5)
    assert out["head"] == 1.0 and out["kept_head"] == 1.0 and out["kept_body"] == 0.25
    assert out["kept_kept_on_object"] == 1.0 and out["head_mass"] == pytest.approx(1.0 / 1.6)


def test_localization_maps_with_changes_a_setting_for_one_call_only():
    model = _model("ssam").eval()
    with torch.no_grad():
        model.ssam.beta.fill_(2.0)  # a strong gate: the attended features differ from the backbone's
    x, y = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 2])
    default = analysis.localization_maps(model, x, y)
    attended = analysis.localization_maps_with(model, x, y, cam_from="attended")
    assert model.cam_from == "backbone" and not torch.allclose(default, attended)
    assert torch.equal(analysis.localization_maps_with(model, x, y, cam_from="backbone"), default)
    with pytest.raises(ValueError, match="no attribute 'cam_frm'"):
        analysis.localization_maps_with(model, x, y, cam_frm="attended")


def test_fusion_example_gives_the_maps_the_losses_compare():
    from cirlib.methods.fusion_loss import FUSION_LOSSES

    model = _model("full")
    x, y = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([1, 0])
    ex = analysis.fusion_example(model, x, y, patch_size=4, seed=0)
    assert model.training  # the mode is restored
    assert set(ex["losses"]) == set(FUSION_LOSSES) and all(v >= 0 for v in ex["losses"].values())
    assert torch.equal(ex["i1"] + ex["i2"] - analysis.fusion_example(model, x, y, 4, 0)["i2"], ex["i1"])  # seeded
    for key in ("m", "a1", "a2", "stitched", "max", "a_full"):
        assert ex[key].shape == ex["a1"].shape and float(ex[key].min()) >= 0 and float(ex[key].max()) <= 1 + 1e-6
    assert torch.allclose(ex["max"].amax(dim=(-2, -1)), torch.ones(2), atol=1e-4)


def test_the_figures_of_notebooks_05_and_06_draw_their_panels_with_one_colorbar():
    image = torch.randn(3, 16, 16)
    row, received = np.eye(4)[1].reshape(2, 2), np.array([[0.5, 2.5], [0.5, 0.5]])
    fig = viz.plot_query_attention(image, (2, 3, 10, 12), row, received, query_xy=(12, 3))
    titles = [ax.get_title() for ax in fig.axes]
    assert "where query (x, y) = (12, 3) looks" in titles and len(fig.axes) == 4  # 3 panels + 1 colorbar
    plt.close(fig)
    ex = analysis.fusion_example(_model("full"), torch.randn(1, 3, 16, 16), torch.tensor([0]), 4)
    fig = viz.plot_fusion_maps(ex, 0, box=(1, 1, 8, 8))
    assert len(fig.axes) == 9 and "max target" in [ax.get_title() for ax in fig.axes]
    plt.close(fig)
