"""The helpers of notebooks 00-02: part statistics of the synthetic data, box sizes, their figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cirlib import analysis, viz  # noqa: E402
from cirlib.data import SyntheticWSOL  # noqa: E402


@pytest.fixture(scope="module")
def tiny() -> SyntheticWSOL:
    return SyntheticWSOL("train", size=30, image_size=32, seed=5)


def test_head_box_ious_are_the_part_box_iou_of_the_head(tiny):
    ious = analysis.head_box_ious(tiny, 10)
    renders = [tiny.render(i) for i in range(10)]
    expected = analysis.part_box_iou(np.stack([r["head_mask"] for r in renders]), [r["box"][None] for r in renders])
    assert ious.shape == (10,) and np.allclose(ious, expected) and (ious < 0.5).all()
    assert analysis.head_box_ious([{"image": 0}], 1) is None  # no part masks: CUB, ILSVRC


def test_part_statistics_of_the_synthetic_data(tiny):
    stats = analysis.synthetic_part_statistics(tiny, 20)
    assert stats["head_share_of_object"] < stats["object_share_of_image"] < 1.0
    assert stats["head_colour_accuracy"] >= 0.9  # the head's colour is the class, by construction
    assert stats["body_only_accuracy_bound"] == 1.0 / tiny.spec.classes_per_group
    assert np.isclose(stats["head_box_mean_iou"], analysis.head_box_ious(tiny, 20).mean())
    assert set(stats["head_box_acc"]) == {"30", "50", "70"}
    assert analysis.synthetic_part_statistics([{"image": 0}]) is None


def test_box_area_ratio_of_a_box_around_the_object_and_of_one_around_its_half():
    maps = np.zeros((2, 20, 20))
    maps[0, 5:15, 5:15] = 1.0  # exactly the GT box
    maps[1, 5:15, 5:10] = 1.0  # its left half
    gt = [np.array([[5, 5, 14, 14]])] * 2
    # the evaluator's box of a w-pixel-wide contour ends at x0 + w (the reference's convention): 11 x 11, 6 x 11
    assert np.allclose(analysis.best_box_area_ratio(maps, gt, 0.5), [121 / 100, 66 / 100])


def test_coverage_table_is_aligned():
    c = {"head": 1.0, "body": 0.5, "background": 0.1, "kept_on_object": 0.6, "object_kept": 0.55}
    table = analysis.coverage_table({"30": c, "70": c}, {"30": 0.15, "70": 0.5}, {"30": 98.0, "70": 8.25})
    lines = table.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1
    assert "50.0%" in lines[1] and "8.2%" in lines[2]


def test_intro_figures_draw(tiny):
    assert len(viz.plot_synthetic_parts(tiny, 2).axes) == 8
    assert len(viz.plot_head_shortcut(tiny, analysis.head_box_ious(tiny, 10)).axes) == 2
    item = tiny[0]
    m = torch.zeros(32, 32, dtype=torch.float64)
    m[8:20, 8:20] = 1.0
    fig = viz.plot_threshold(m, item, 0.5, mean=tiny.mean, std=tiny.std)
    assert len(fig.axes) == 4  # map, kept pixels, boxes, colorbar
    x = torch.stack([tiny[i]["image"] for i in range(2)])
    assert len(viz.plot_hidden_images(x, [tiny[0], tiny[1]], (0, 8), 0.5).axes) == 4
    plt.close("all")
