"""Training engine on the CPU: a seconds-long run, files, evaluation, NaN stop, samplers, schedules."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from cirlib.config import load_config
from cirlib.engine import (
    NonFiniteLossError,
    ResumableDistributedSampler,
    ShardSampler,
    Trainer,
    build_eval_loader,
    build_scheduler,
    build_train_loader,
    evaluate_model,
    fit,
    load_checkpoint,
    read_checkpoint,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "synthetic" / "tiny.yaml"


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(tmp_path: Path, *extra: str):
    return load_config(TINY, [f"output_dir={tmp_path / 'run'}", *extra])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny")
    cfg = load_config(TINY, [f"output_dir={out / 'run'}"])
    return cfg, fit(cfg, progress=False)


def test_fit_writes_config_checkpoints_and_metrics(tiny_run):
    cfg, result = tiny_run
    run = Path(cfg.output_dir)
    for name in ("config.yaml", "last.pt", "best.pt", "final.pt", "metrics.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".*.tmp")), "temporary files of atomic writes must not remain"
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["train"]["epochs"] == cfg.train.epochs and stored["data"]["image_size"] == 32
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 2
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    # step schedule: lr 0.02 in epoch 1, 0.02 * 0.5 in epoch 2 (lr_step=1, lr_decay=0.5)
    assert metrics["history"][0]["lr"] == pytest.approx(0.02)
    assert metrics["history"][1]["lr"] == pytest.approx(0.01)
    test = metrics["test"]
    assert test["num_images"] == 32
    for key in ("top1", "top5", "maxboxacc_v2", "gt_known_loc", "top1_loc", "pxap"):
        assert 0.0 <= test[key] <= 100.0, key
    assert set(test["maxboxacc"]) == {"30", "50", "70"}
    assert test == result.test
    last = read_checkpoint(run / "last.pt")
    assert last["epoch"] == 2 and last["step_in_epoch"] == 0 and last["global_step"] == 12
    assert last["rng"] and "torch" in last["rng"][0]


def test_training_reduces_the_loss(tiny_run):
    _, result = tiny_run
    losses = [h["train"]["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert all(math.isfinite(v) for v in losses)


def test_load_checkpoint_reproduces_the_reported_metrics(tiny_run):
    cfg, result = tiny_run
    model, stored = load_checkpoint(Path(cfg.output_dir) / "final.pt")
    assert stored.model.method == "cam" and not model.training
    from cirlib.data import build_dataset
    from torch.utils.data import Subset

    ds = build_dataset("synthetic", "test", image_size=32)
    loader = build_eval_loader(Subset(ds, range(32)), batch_size=7)  # another batching, same numbers
    again = evaluate_model(model, loader, device="cpu", progress=False)
    assert again == result.test


class _MaskModel(nn.Module):
    """A fake model whose CAM is the ground-truth mask (downsampled 2x) and whose logits are fixed."""

    method = "fake"

    def __init__(self, num_classes: int, wrong_every: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.wrong_every = wrong_every
        self.masks: torch.Tensor | None = None

    def forward(self, x, labels=None, return_cam=False):
        b = x.shape[0]
        logits = torch.zeros(b, self.num_classes)
        pred = labels.clone()
        pred[:: self.wrong_every] = (labels[:: self.wrong_every] + 1) % self.num_classes
        logits[torch.arange(b), pred] = 1.0
        cams = nn.functional.avg_pool2d(self.masks.float()[:, None], 1)[:, 0]  # set by the loader hook
        return (logits, cams) if return_cam else logits


def test_evaluate_model_perfect_cams_give_perfect_localization():
    from cirlib.data import build_dataset, collate_wsol

    ds = build_dataset("synthetic", "val", image_size=32)
    items = [ds[i] for i in range(12)]
    model = _MaskModel(ds.num_classes)

    class Loader(list):
        def __iter__(self):
            for batch in super().__iter__():
                model.masks = batch["mask"]
                yield batch

    loader = Loader([collate_wsol(items[:5]), collate_wsol(items[5:])])
    m = evaluate_model(model, loader, progress=False)
    assert m["num_images"] == 12
    assert m["maxboxacc"] == {"30": 100.0, "50": 100.0, "70": 100.0}
    assert m["gt_known_loc"] == pytest.approx(100.0)
    # every 4th image in a batch is misclassified: indices 0, 4 of the first batch, 0, 4 of the second
    assert m["top1"] == pytest.approx(100.0 * 8 / 12)
    assert m["top1_loc"] == pytest.approx(100.0 * 8 / 12)
    assert m["pxap"] == pytest.approx(100.0)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tiny(tmp_path, "train.epochs=1", "train.checkpoint_every_steps=2", "eval.val_split=null")
    from cirlib.data import build_dataset
    from cirlib.methods import build_model
    from torch.utils.data import Subset

    torch.manual_seed(0)
    model = build_model("cam", "small_cnn", 10, image_size=32)
    real_loss = model.training_loss
    calls = {"n": 0}

    def poisoned(images, labels):
        calls["n"] += 1
        out = real_loss(images, labels)
        if calls["n"] == 5:
            out["loss"] = out["loss"] * float("nan")
        return out

    model.training_loss = poisoned
    loader = build_train_loader(Subset(build_dataset("synthetic", "train", image_size=32), range(96)), 16)
    trainer = Trainer(model, loader, cfg, progress=False)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    msg = str(info.value)
    assert "nan" in msg and "step 5/6" in msg and "last.pt" in msg and "train.lr" in msg
    ckpt = read_checkpoint(Path(cfg.output_dir) / "last.pt")
    assert ckpt["global_step"] == 4 and ckpt["step_in_epoch"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    # the model in memory was not updated with the NaN loss either
    assert all(torch.isfinite(p).all() for p in model.parameters())
    metrics = json.loads((Path(cfg.output_dir) / "metrics.json").read_text())
    assert metrics["status"].startswith("stopped") and "nan" in metrics["error"]
    assert not (Path(cfg.output_dir) / "final.pt").exists()


def test_trainer_in_memory_for_notebooks(tmp_path):
    """write=False: no files, amp/channels_last requested but off on the CPU."""
    cfg = tiny(tmp_path, "train.epochs=1", "train.amp=bf16", "train.channels_last=true")
    from cirlib.data import build_dataset
    from cirlib.methods import build_model
    from torch.utils.data import DataLoader, Subset

    from cirlib.data import collate_wsol

    model = build_model("has", "small_cnn", 10, image_size=32)
    ds = Subset(build_dataset("synthetic", "train", image_size=32), range(32))
    loader = DataLoader(ds, batch_size=16, shuffle=True, collate_fn=collate_wsol)  # a plain loader works too
    trainer = Trainer(model, loader, cfg, write=False, progress=False)
    assert trainer.amp is False and trainer.channels_last is False
    result = trainer.fit()
    assert result.output_dir is None and result.metrics_path is None
    assert not (tmp_path / "run").exists()
    assert len(result.history) == 1 and result.history[0]["train"]["images"] == 32


def test_resumable_sampler_skips_and_depends_only_on_seed_and_epoch():
    data = list(range(50))
    a = ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=3)
    b = ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    full = list(a)
    b.set_start(20)
    assert list(b) == full[20:] and len(b) == 30
    a.set_epoch(3)
    assert list(a) != full and sorted(a) == data
    with pytest.raises(ValueError, match="set_start"):
        a.set_start(51)


def test_shard_sampler_partitions_exactly():
    shards = [list(ShardSampler(11, num_replicas=3, rank=r)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(11))
    assert [len(ShardSampler(11, 3, r)) for r in range(3)] == [len(s) for s in shards]


def test_schedules():
    cfg = load_config(None, ["train.epochs=4", "train.lr_step=2", "train.lr_decay=0.1", "train.lr=1.0"])
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, cfg.train, steps_per_epoch=3)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0] * 6 + [0.1] * 6)
    cfg = load_config(None, ["train.epochs=2", "train.lr_schedule=cosine", "train.lr=1.0"])
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_scheduler(opt, cfg.train, steps_per_epoch=2)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5 * (1 + np.cos(np.pi * s / 4)) for s in range(4)])


def test_new_layers_get_the_lr_multiplier(tmp_path):
    from cirlib.engine import build_optimizer
    from cirlib.methods import build_model

    cfg = load_config(None, ["train.lr=0.01", "train.new_layer_lr_mult=10"])
    opt = build_optimizer(build_model("cam", "small_cnn", 10, image_size=32), cfg.train)
    lrs = sorted({g["lr"] for g in opt.param_groups})
    assert lrs == pytest.approx([0.01, 0.1])
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in opt.param_groups)


def test_only_models_that_need_boxes_get_the_batchs_boxes(tmp_path):
    """The few-shot hook: ``needs_boxes = True`` models get ``boxes=``; every other model's call is unchanged."""
    from torch.utils.data import DataLoader, Subset

    from cirlib.data import build_dataset, collate_wsol
    from cirlib.methods import CAMModel
    from cirlib.models.backbones import build_backbone

    cfg = tiny(tmp_path, "train.epochs=1")
    dataset = Subset(build_dataset("synthetic", "train", image_size=32), range(16))
    expected = [item["boxes"] for item in dataset]

    class BoxModel(CAMModel):
        needs_boxes = True

        def training_loss(self, images, labels, boxes):
            seen.extend(boxes)
            return super().training_loss(images, labels)

    class PlainModel(CAMModel):
        def training_loss(self, images, labels):  # would fail with an unexpected boxes= keyword
            calls.append(len(labels))
            return super().training_loss(images, labels)

    seen, calls = [], []
    for cls in (BoxModel, PlainModel):
        loader = DataLoader(dataset, batch_size=8, shuffle=False, collate_fn=collate_wsol)
        Trainer(cls(build_backbone("small_cnn", width=4), 10), loader, cfg, write=False, progress=False).fit()
    assert len(seen) == 16 and all(torch.equal(a, b.float()) for a, b in zip(seen, expected))
    assert all(b.dtype == torch.float32 and b.shape[-1] == 4 for b in seen)
    assert calls == [8, 8]
