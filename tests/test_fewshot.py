"""Few-shot box baseline: the target is the box region (non-square too), the loss falls, CAM's evaluation contract."""

from __future__ import annotations

import pytest
import torch

from cirlib.methods.cam import CAMModel
from cirlib.methods.fewshot import FewShotBoxModel, box_mask, box_target
from cirlib.models import build_backbone

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("height,width", [(16, 16), (12, 40), (40, 12)])
def test_mask_is_the_union_of_the_inclusive_boxes(height, width):
    boxes = torch.tensor([[1.0, 2.0, 4.0, 5.0], [3.0, 0.0, 6.0, 1.0]])
    mask = box_mask(boxes, height, width)
    want = torch.zeros(height, width)
    want[2:6, 1:5] = 1.0  # rows y0..y1, columns x0..x1, both inclusive
    want[0:2, 3:7] = 1.0
    want = want[:height, :width]
    assert mask.shape == (height, width) and torch.equal(mask, want)
    assert box_mask(torch.zeros(0, 4), height, width).sum() == 0


@pytest.mark.parametrize("mode", ["area", "center"])
def test_target_equals_the_box_region_at_feature_resolution(mode):
    # 12 x 40 image, 3 x 10 map (stride 4): a box on whole cells is exactly those cells, in both modes.
    boxes = [torch.tensor([[8.0, 4.0, 19.0, 11.0]]), torch.tensor([[0.0, 0.0, 3.0, 11.0], [36.0, 8.0, 39.0, 11.0]])]
    target = box_target(boxes, (12, 40), (3, 10), mode)
    want = torch.zeros(2, 3, 10)
    want[0, 1:3, 2:5] = 1.0
    want[1, :, 0] = 1.0
    want[1, 2, 9] = 1.0
    assert torch.equal(target, want)


def test_area_target_is_the_covered_fraction():
    # One 2 x 2 pixel box in the corner of a 4 x 4 cell of a 8 x 8 image with a 2 x 2 map: a quarter.
    target = box_target([torch.tensor([[0.0, 0.0, 1.0, 1.0]])], (8, 8), (2, 2), "area")
    assert torch.allclose(target, torch.tensor([[[0.25, 0.0], [0.0, 0.0]]]))
    assert box_target([torch.tensor([[0.0, 0.0, 1.0, 1.0]])], (8, 8), (2, 2), "center").sum() == 0


def _model(seed: int = 0, **options) -> FewShotBoxModel:
    torch.manual_seed(seed)
    return FewShotBoxModel(build_backbone("small_cnn", width=4), 3, **options)


def test_loss_falls_on_a_fixed_batch():
    model = _model().train()
    torch.manual_seed(1)
    x, y = torch.randn(6, 3, 32, 48), torch.tensor([0, 1, 2, 0, 1, 2])
    boxes = [torch.tensor([[4.0 * i, 2.0, 4.0 * i + 20.0, 25.0]]) for i in range(6)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = []
    for _ in range(15):
        out = model.training_loss(x, y, boxes=boxes)
        history.append((float(out["loss"].detach()), out["loss_box"]))
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    assert all(torch.isfinite(torch.tensor(h)).all() for h in history)
    assert history[-1][0] < 0.8 * history[0][0]
    assert history[-1][1] < history[0][1]  # the box term itself falls, not only the cross-entropy
    assert out["logits"].shape == (6, 3) and set(out) >= {"loss_cls", "loss_box"}


def test_box_loss_weight_scales_the_box_term():
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    boxes = [torch.tensor([[0.0, 0.0, 15.0, 15.0]])] * 2
    zero = _model(box_loss_weight=0.0).training_loss(x, y, boxes=boxes)
    two = _model(box_loss_weight=2.0).training_loss(x, y, boxes=boxes)
    assert float(zero["loss"].detach()) == pytest.approx(zero["loss_cls"], rel=1e-6)
    assert float(two["loss"].detach()) == pytest.approx(two["loss_cls"] + 2.0 * two["loss_box"], rel=1e-6)


def test_missing_or_mismatched_boxes_are_clear_errors():
    model = _model()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="needs boxes="):
        model.training_loss(x, y)
    with pytest.raises(ValueError, match="1 box tensors for a batch of 2"):
        model.training_loss(x, y, boxes=[torch.zeros(1, 4)])
    with pytest.raises(ValueError, match="box_target='corners' is not one of area, center"):
        _model(box_target="corners")
    with pytest.raises(ValueError, match="box_loss_weight must be >= 0"):
        _model(box_loss_weight=-1.0)


def test_evaluation_is_cam_with_the_same_weights():
    model = _model(seed=3).eval()
    cam = CAMModel(build_backbone("small_cnn", width=4), 3).eval()
    cam.load_state_dict(model.state_dict())
    x, y = torch.randn(2, 3, 24, 40), torch.tensor([2, 0])
    with torch.no_grad():
        logits, cams = model(x, y, return_cam=True)
        want_logits, want_cams = cam(x, y, return_cam=True)
    assert FewShotBoxModel.needs_boxes and not getattr(CAMModel, "needs_boxes", False)
    assert cams.shape == (2, 6, 10) and torch.equal(cams, want_cams) and torch.equal(logits, want_logits)


# ----------------------------------------------------------------------------- data.train_per_class


def test_first_per_class_keeps_the_first_items_of_each_class_in_order():
    from cirlib.data import SyntheticWSOL
    from cirlib.data.builders import first_per_class

    dataset = SyntheticWSOL(split="train", size=60, image_size=32, num_classes=4, cache=False)
    chosen = first_per_class(dataset, 3)
    labels = dataset.labels.tolist()
    want = [i for i, k in enumerate(labels) if labels[:i].count(k) < 3]
    assert list(chosen.indices) == want and len(want) == 12
    assert sorted(labels[i] for i in chosen.indices) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert list(first_per_class(dataset, 3).indices) == want  # deterministic
    with pytest.raises(ValueError, match=r"data.train_per_class=16: 4 of the 4 classes have fewer training items "
                                         r"\(class 0: 15, class 1: 15"):
        first_per_class(dataset, 16)


def test_train_per_class_in_the_config_selects_the_training_split(tmp_path):
    from cirlib.config import ConfigError, config_from_dict
    from cirlib.engine import build_data

    base = {"data": {"train_per_class": 2, "options": {"size": 40, "num_classes": 4}, "image_size": 32}}
    train = build_data(config_from_dict(base), "train", train=True)
    assert len(train) == 8 and sorted(int(train[i]["label"]) for i in range(8)) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(build_data(config_from_dict(base), "test", train=False)) > 8  # evaluation splits keep every image
    base["data"]["train_limit"] = 5
    assert len(build_data(config_from_dict(base), "train", train=True)) == 5  # the limit applies after
    with pytest.raises(ConfigError, match="data.train_per_class=0 is invalid"):
        config_from_dict({"data": {"train_per_class": 0}})


def test_trains_with_the_trainer_which_passes_the_boxes(tmp_path):
    """The Trainer gives ``boxes=batch["boxes"]`` to a ``needs_boxes`` model (without them it would raise)."""
    import math
    from pathlib import Path

    from torch.utils.data import DataLoader

    from cirlib.config import load_config
    from cirlib.data import build_dataset, collate_wsol
    from cirlib.data.builders import first_per_class
    from cirlib.engine import Trainer

    tiny = Path(__file__).resolve().parents[1] / "configs" / "synthetic" / "tiny.yaml"
    torch.manual_seed(0)
    cfg = load_config(tiny, [f"output_dir={tmp_path / 'run'}", "train.epochs=3"])
    ds = first_per_class(build_dataset("synthetic", "train", image_size=32), 3)
    loader = DataLoader(ds, batch_size=10, shuffle=True, collate_fn=collate_wsol)
    model = FewShotBoxModel(build_backbone("small_cnn", width=8), num_classes=10)
    result = Trainer(model, loader, cfg, write=False, progress=False).fit()
    losses = [h["train"]["loss"] for h in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all(h["train"]["loss_box"] > 0 for h in result.history)


def test_train_time_estimate_counts_the_selected_images(tmp_path):
    from cirlib.runs.experiments import estimate_train_seconds, experiment_config

    cam = experiment_config("cam", device="cpu", output_dir=tmp_path)
    few = experiment_config("cam", device="cpu", output_dir=tmp_path)
    few.data.train_per_class = 5  # 10 synthetic classes: 50 of the 2000 images
    missing = tmp_path / "no_results.json"
    assert estimate_train_seconds(few, missing) == pytest.approx(estimate_train_seconds(cam, missing) * 50 / 2000)
