"""cirlib.analysis (the numbers the notebooks print) and cirlib.viz's drawing helpers, on hand-made cases."""

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


def test_region_activation_on_a_hand_made_map():
    head, body = _toy_masks()
    maps = np.zeros((1, 8, 8))
    maps[head] = 1.0
    maps[body] = 0.5
    out = analysis.region_activation(maps, head, body)
    assert out["head"] == 1.0 and out["body"] == 0.5 and out["background"] == 0.0
    assert out["head_mass"] == pytest.approx(4 / (4 + 16 * 0.5))  # the head's share of the mass on the object
    assert out["head_area"] == pytest.approx(4 / 20)
    with pytest.raises(ValueError, match="same"):
        analysis.region_activation(maps[:, :4], head, body)


def _tiny_model(method: str = "cam"):
    from cirlib.methods import build_model

    torch.manual_seed(0)
    return build_model(method, "small_cnn", 3, image_size=16)


def test_localization_maps_are_the_upsampled_normalised_gt_class_maps():
    from cirlib.maps import localization_maps

    model = _tiny_model().train()
    x, y = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 2])
    maps = analysis.localization_maps(model, x, y)
    assert model.training  # its mode is restored
    model.eval()
    with torch.no_grad():
        _, cams = model(x, y, return_cam=True)
    assert maps.shape == (2, 16, 16) and torch.equal(maps, torch.from_numpy(localization_maps(cams, (16, 16))))
    assert float(maps.min()) == 0.0 and float(maps.max()) == pytest.approx(1.0)
    # per-map normalisation: batching changes no map (up to the float rounding of batched convolutions)
    assert torch.allclose(analysis.localization_maps(model, x, y, batch_size=1), maps, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        analysis.localization_maps(model, x, y, batch_size=0)


def test_complementary_head_maps_max_fusion_is_what_the_model_scores():
    model = _tiny_model("complementary").eval()
    x, y = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)), torch.tensor([1, 2])
    heads = analysis.complementary_head_maps(model, x, y)
    assert torch.allclose(heads["max fusion (the default)"], analysis.localization_maps(model, x, y), atol=1e-6)


def test_dataset_region_activation_pools_every_image(one_thread):
    from torch.utils.data import Subset

    from cirlib.data.synthetic import SyntheticWSOL

    data = SyntheticWSOL("test", size=6, image_size=32, num_classes=3)
    model = _tiny_model()
    pooled = analysis.dataset_region_activation(model, Subset(data, range(5)), data, batch_size=2)
    items = [data[i] for i in range(5)]
    maps = analysis.localization_maps(model, torch.stack([it["image"] for it in items]),
                                      torch.tensor([int(it["label"]) for it in items]))
    heads, bodies = analysis.synthetic_part_masks(data, [it["image_id"] for it in items])
    assert heads.shape == bodies.shape == (5, 32, 32)
    direct = analysis.region_activation(maps, heads, bodies)
    assert pooled == pytest.approx(direct, abs=1e-6)


def _run(v2: float, top1: float = 90.0) -> dict:
    return {"top1": top1, "maxboxacc": {"30": 80.0, "50": 60.0, "70": 20.0}, "maxboxacc_v2": v2, "pxap": None}


def test_results_table_puts_this_run_beside_the_seeds(tmp_path):
    import json

    summary = {"cam": {"n": 3, "mean": {"maxboxacc_v2": 55.0, "top1": 91.0}, "std": {"maxboxacc_v2": 1.5, "top1": 0.5}}}
    (tmp_path / "results.json").write_text(json.dumps({"summary": summary, "runs": []}))
    table = analysis.results_table(["cam", "has"], {"cam": _run(53.25), "has": _run(61.0)}, tmp_path,
                                   columns=("top1", "maxboxacc_v2", "pxap"))
    header, _, cam, has = table.splitlines()
    assert header == ("| method | seeds | top-1 (seeds) | MaxBoxAccV2 (seeds) | PxAP (seeds) | top-1 (this run) "
                      "| MaxBoxAccV2 (this run) | PxAP (this run) |")
    assert cam == "| cam | 3 | 91.0 ± 0.5 | 55.0 ± 1.5 | - | 90.0 | 53.2 | - |"
    assert has == "| has | 0 | - | - | - | 90.0 | 61.0 | - |"  # no seeds for has
    assert analysis.results_table(["cam"], {}, tmp_path / "missing") is None
    with pytest.raises(ValueError, match="top5"):
        analysis.results_table(["cam"], {"cam": _run(1.0)}, tmp_path, columns=("top5",))


def test_metrics_table_rows_and_head_share():
    regions = {"cam": {"head_mass": 0.5, "head_area": 0.2}, "has": None}
    lines = analysis.metrics_table({"cam": _run(40.0), "has": _run(50.0)}, regions).splitlines()
    assert lines[0] == ("| method | top-1 | MaxBoxAcc@30 | MaxBoxAcc@50 | MaxBoxAcc@70 | MaxBoxAccV2 | PxAP "
                        "| head share |")
    assert lines[2] == "| cam | 90.0 | 80.0 | 60.0 | 20.0 | 40.0 | - | 50.0% |"
    assert lines[3].endswith("| - |") and "20.0% of the object's pixels" in lines[4]
    plain = analysis.metrics_table({"cam": _run(40.0)}).splitlines()
    assert len(plain) == 3 and "head share" not in plain[0] and plain[2].endswith("| - |")  # no regions: no column
    with pytest.raises(ValueError, match="outside"):
        analysis.metrics_table({"cam": _run(140.0)})


def test_plot_method_maps_draws_one_row_per_method():
    import matplotlib.pyplot as plt

    from cirlib.data.synthetic import SyntheticWSOL

    data = SyntheticWSOL("test", size=3, image_size=32, num_classes=3)
    models = {"a": _tiny_model(), "b": _tiny_model()}
    metrics = {m: {"best_threshold": {"50": 0.3}} for m in models}
    fig = viz.plot_method_maps(models, metrics, [data[i] for i in range(3)], mean=data.mean, std=data.std)
    titles = [ax.get_title() for ax in fig.axes[:-1]]  # the last axes is the maps' colorbar
    assert len(titles) == 6 and titles[0].startswith("a: IoU ") and titles[3].startswith("b: IoU ")
    assert fig.axes[-1].get_ylabel() == "normalised map"
    plt.close(fig)


def test_evaluator_boxes_credit_the_contour_box_closest_to_the_gt():
    maps = np.zeros((1, 16, 16))
    maps[0, 2:6, 2:6] = 1.0  # matches the GT box
    maps[0, 10:14, 10:14] = 0.9  # a second blob elsewhere
    # the protocol's boxes end one past the blob (OpenCV's x + w, as the reference code draws them)
    boxes, ious = analysis.evaluator_boxes(maps, [np.array([[10, 10, 14, 14]])], 0.5)
    assert boxes[0].tolist() == [10, 10, 14, 14] and ious.tolist() == [1.0]  # the second blob's box
    _, far = analysis.evaluator_boxes(maps, [np.array([[10, 10, 14, 14]])], 0.95)  # only the first blob left
    assert far[0] == 0.0


def test_first_iou_below_and_box_coverage():
    assert analysis.first_iou_below({"50": 80.0, "10": 99.0, "70": 40.0, "90": 1.0}) == 70
    assert analysis.first_iou_below({"50": 80.0}) is None
    maps = np.zeros((1, 4, 4))
    maps[0, :2, :2] = 1.0  # kept: 4 pixels; the GT box (x 1-2, y 0-1, inclusive) holds 2 of them
    cover = analysis.box_coverage(maps, [np.array([[1, 0, 2, 1]])], 0.5)
    assert cover == {"inside": 2 / 4, "outside": 2 / 12}


def test_align_table_pads_columns_and_keeps_the_cells():
    table = "| method | V2 |\n| --- | --- |\n| CAM | 63.1 ± 1.9 |\n| full method | 80.9 ± 6.2 |"
    lines = analysis.align_table(table).splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2] == "| CAM         | 63.1 ± 1.9 |" and lines[1].startswith("| -----------")
    assert [c.strip() for c in lines[3].strip("|").split("|")] == ["full method", "80.9 ± 6.2"]


def test_acol_views_erase_what_classifier_a_finds():
    from cirlib.methods.acol import ACoLModel
    from cirlib.models import build_backbone

    torch.manual_seed(0)
    model = ACoLModel(build_backbone("small_cnn", width=4), num_classes=3, erase_threshold=0.5).eval()
    views = analysis.acol_views(model, torch.randn(3, 32, 32), 1)
    assert {k: tuple(v.shape) for k, v in views.items()} == {k: (32, 32) for k in ("a", "erased", "b")}
    assert float(views["a"].max()) == pytest.approx(1.0, abs=0.05) and float(views["erased"].max()) > 0.5


def test_plot_box_grid_one_row_per_image_and_a_colorbar():
    images, maps = torch.rand(3, 3, 8, 8), np.random.default_rng(0).random((3, 8, 8))
    gt = [np.array([[1, 1, 5, 5]])] * 3
    panels = {"CAM": {"maps": maps, "boxes": [np.array([0, 0, 4, 4])] * 3, "ious": np.array([0.5, 0.6, 0.7])}}
    fig = viz.plot_box_grid(images, gt, panels, rows=[2, 0])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["image 2", "CAM\nIoU 0.70", "image 0", "CAM\nIoU 0.50"] and len(fig.axes) == 5  # + colorbar
    viz.plt.close(fig)
    fig, ax = viz.plt.subplots()
    viz.show_erased(ax, torch.ones(3, 4, 4), np.eye(4), title="B sees")
    shown = ax.images[0].get_array()
    assert float(shown[0, 0, 0]) == pytest.approx(0.2) and float(shown[0, 1, 0]) == 1.0
    viz.plt.close(fig)


def test_compare_methods_applies_the_evidence_rule_to_a_results_summary():
    summary = {"full": {"mean": {"maxboxacc_v2": 80.9}, "std": {"maxboxacc_v2": 6.2}},
               "has": {"mean": {"maxboxacc_v2": 74.2}, "std": {"maxboxacc_v2": 3.8}},
               "cam": {"mean": {"maxboxacc_v2": 63.1}, "std": {"maxboxacc_v2": None}}}
    c = analysis.compare_methods(summary, "full", "has")
    assert (round(c.gap, 1), round(c.spread, 1), c.verdict) == (6.7, 10.0, "not different")
    assert analysis.compare_methods(summary, "cam", "has").worse  # a missing spread counts as 0
    with pytest.raises(ValueError, match="no seeds of \\['ssam'\\]"):
        analysis.compare_methods(summary, "ssam", "has")
