"""cirlib.analysis and cirlib.viz.interact_or_static: the numbers the notebooks print, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cirlib import analysis, viz


def _toy_masks():
    head = np.zeros((1, 8, 8), dtype=bool)
    head[0, 0:2, 0:2] = True  # 4 head pixels
    body = np.zeros((1, 8, 8), dtype=bool)
    body[0, 2:6, 0:4] = True  # 16 body pixels
    return head, body


def test_above_threshold_coverage_counts_kept_pixels_per_region():
    head, body = _toy_masks()
    s = np.zeros((1, 8, 8))
    s[0][head[0]] = 1.0
    s[0, 2:4, 0:4] = 0.6  # half of the body (8 of 16 pixels)
    s[0, 7, 7] = 0.6  # one background pixel of 44
    low = analysis.above_threshold_coverage(s, head, body, tau=0.5)
    assert low["head"] == 1.0 and low["body"] == 0.5
    assert low["background"] == pytest.approx(1 / 44)
    assert low["object_kept"] == pytest.approx(12 / 20)
    assert low["kept_on_object"] == pytest.approx(12 / 13)
    high = analysis.above_threshold_coverage(s, head, body, tau=0.7)
    assert high["head"] == 1.0 and high["body"] == 0.0 and high["kept_on_object"] == 1.0


def test_above_threshold_coverage_rejects_bad_input():
    head, body = _toy_masks()
    with pytest.raises(ValueError, match="tau=1.0"):
        analysis.above_threshold_coverage(np.zeros((1, 8, 8)), head, body, tau=1.0)
    with pytest.raises(ValueError, match="same|share"):
        analysis.above_threshold_coverage(np.zeros((1, 4, 4)), head, body, tau=0.5)


def test_cells_of_mask_samples_cell_centres():
    mask = np.zeros((8, 8), dtype=bool)
    mask[0:4, 0:4] = True
    cells = analysis.cells_of_mask(mask, (2, 2))
    assert cells.tolist() == [[True, False], [False, False]]


def test_attention_received_by_region_on_a_collapsed_attention():
    # 2 x 2 grid (N = 4): every query attends only to cell 0, the head.
    s = np.zeros((1, 4, 4))
    s[0, :, 0] = 1.0
    head = np.array([[[True, False], [False, False]]])
    body = np.array([[[False, True], [True, False]]])
    out = analysis.attention_received_by_region(s, head, body)
    assert out["head_share"] == 1.0 and out["body_share"] == 0.0 and out["background_share"] == 0.0
    assert out["top_on_head"] == 1.0 and out["head_per_cell"] == 4.0 and out["head_area"] == 0.25
    assert out["images"] == 1
    uniform = analysis.attention_received_by_region(np.full((1, 4, 4), 0.25), head, body)
    assert uniform["head_share"] == pytest.approx(uniform["head_area"])
    assert uniform["body_per_cell"] == pytest.approx(1.0)


def test_caam_row_concentration_finds_the_broadcast_channel():
    q = torch.full((4, 4), 0.1)
    q[:3, 2] = 0.7  # three of four rows put their largest weight on channel 2
    q[3, 0] = 0.7
    out = analysis.caam_row_concentration(q)
    assert (out["channel"], out["rows"], out["of"], out["distinct"]) == (2, 3, 4, 2)
    assert out["share"] == 0.75 and out["mean_weight"] == pytest.approx((3 * 0.7 + 0.1) / 4)


def test_interact_or_static_draws_once_without_widgets(capsys):
    calls = []
    shown = viz.interact_or_static(lambda index=0: calls.append(index), interactive=False, static={"index": 3},
                                   controls={"index": {"kind": "int", "min": 0, "max": 9}})
    assert shown == "static" and calls == [3]


def test_interact_or_static_builds_readable_sliders_and_draws_once():
    pytest.importorskip("ipywidgets")
    calls = []
    shown = viz.interact_or_static(lambda tau=0.5, index=0, name="x": calls.append((tau, index, name)),
                                   interactive=True, static={"tau": 0.25, "index": 2, "name": "fixed"},
                                   controls={"tau": {"kind": "float", "description": "CAM threshold tau",
                                                     "min": 0.0, "max": 0.99, "step": 0.01},
                                             "index": {"kind": "int", "description": "test image", "min": 0,
                                                       "max": 9}})
    assert shown == "widget"
    assert calls == [(0.25, 2, "fixed")]  # interact's first drawing, and no static one before it


def test_caam_row_concentration_ranks_the_channel_by_norm():
    q = torch.tensor([[0.1, 0.9], [0.2, 0.8]])
    x2 = torch.tensor([[1.0, 0.0, 0.0], [3.0, 4.0, 0.0]])  # channel 1 has the larger norm
    assert analysis.caam_row_concentration(q, other=x2)["norm_rank"] == 0
    assert analysis.caam_row_concentration(q, other=x2.flip(0))["norm_rank"] == 1


def test_curve_legends_sit_outside_the_axes():
    import matplotlib.pyplot as plt

    fig = viz.plot_maxboxacc_vs_iou({"a": {"30": 90.0, "50": 60.0}, "b": {"30": 80.0, "50": 70.0}})
    fig.canvas.draw()
    ax = fig.axes[0]
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1  # right of the plotting area, off the curves
    plt.close(fig)


def test_part_box_iou_uses_the_tight_inclusive_box():
    mask = np.zeros((2, 10, 10), dtype=bool)
    mask[0, 0:5, 0:5] = True  # tight box [0, 0, 4, 4]: 25 pixels inside a 100-pixel GT box
    ious = analysis.part_box_iou(mask, [np.array([[0, 0, 9, 9]]), np.array([[0, 0, 9, 9]])])
    assert ious.tolist() == [0.25, 0.0]  # the second mask is empty
