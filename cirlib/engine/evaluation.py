r"""Evaluation of a trained WSOL model: classification and localization metrics.

For each image the model gives the class activation map of the ground-truth class
(``model(x, labels, return_cam=True)``) at feature resolution. The map goes through the map
pipeline of the wsolevaluation reference (:func:`cirlib.maps.localization_maps`): bicubic upsampling
to the image size (``cv2.resize``, ``INTER_CUBIC``), then min-max normalisation per image,

.. math::  \hat A = \frac{A - \min A}{\max A - \min A},

and streamed into :class:`cirlib.metrics.BoxEvaluator` (MaxBoxAcc, MaxBoxAccV2, Top-1/Top-5/
GT-known Loc) and, when the dataset has masks, :class:`cirlib.metrics.PxAPEvaluator`.

With ``save_maps`` every scored map is also written as ``<save_maps>/<image_id>.npy`` (float64,
224 x 224 on the reference's inputs), the layout of the reference's ``inference.py`` that
``cirlib score`` reads, so scoring the folder gives the same numbers.

With several processes each rank evaluates its shard (:class:`ShardSampler`); the low-resolution
maps and per-image results are gathered on rank 0, which scores them with the same code as a
single process, so the numbers are identical.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from cirlib.engine.distributed import broadcast_object, gather_objects, is_distributed, is_main_process
from cirlib.engine.signals import batches
from cirlib.maps import localization_maps
from cirlib.scoring import save_scoremap

__all__ = ["evaluate_model", "default_cam_thresholds", "progress_disabled"]


def progress_disabled(progress: bool = True) -> bool:
    """Whether progress bars are off: ``progress=False``, ``TQDM_DISABLE`` set, or not rank 0."""
    env = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return (not progress) or env not in ("", "0", "false", "no") or not is_main_process()


def default_cam_thresholds(interval: float = 0.01) -> np.ndarray:
    """``arange(0, 1, interval)``: the CAM thresholds of the wsolevaluation protocol."""
    return np.arange(0.0, 1.0, interval)


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _collect_batch(model: nn.Module, batch: dict, device: torch.device, amp: bool, channels_last: bool) -> dict:
    images = batch["image"].to(device, non_blocking=True)
    labels = torch.as_tensor(batch["label"]).to(device, non_blocking=True)
    if channels_last and device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    with _autocast(device, amp):
        logits, cams = model(images, labels, return_cam=True)
    logits = logits.float()
    k = min(5, logits.shape[1])
    topk = logits.topk(k, dim=1).indices
    top1 = (topk[:, 0] == labels).cpu().numpy()
    top5 = (topk == labels[:, None]).any(dim=1).cpu().numpy()
    mask = batch.get("mask")
    return {
        "cams": cams.detach().float().cpu(),
        "size": tuple(images.shape[-2:]),
        "boxes": [torch.as_tensor(b).detach().cpu().numpy().reshape(-1, 4) for b in batch["boxes"]],
        "masks": None if mask is None else torch.as_tensor(mask).cpu().bool(),
        "top1": top1,
        "top5": top5,
        "image_ids": list(batch.get("image_id", [])),
    }


class _Scorer:
    """Upsample, normalise and stream a batch of CAMs into the evaluators."""

    def __init__(self, cam_thresholds: np.ndarray, iou_thresholds: Sequence[float],
                 save_maps: str | os.PathLike | None = None) -> None:
        from cirlib.metrics import BoxEvaluator, PxAPEvaluator

        self.save_maps = save_maps

        self.box = BoxEvaluator(cam_thresholds=cam_thresholds, iou_thresholds=tuple(iou_thresholds))
        self.pxap = PxAPEvaluator()
        self.masks_everywhere = True
        self.n = 0
        self.top1 = 0
        self.top5 = 0

    def update(self, rec: dict) -> None:
        maps = localization_maps(rec["cams"], rec["size"])
        if self.save_maps is not None:
            if len(rec["image_ids"]) != len(maps):
                raise ValueError("evaluate_model(save_maps=...): the loader's batches carry no image_id, which "
                                 "names each map's file; use a cirlib dataset (its items have image_id).")
            for image_id, scoremap in zip(rec["image_ids"], maps):
                save_scoremap(self.save_maps, str(image_id), scoremap)
        self.box.update(maps, rec["boxes"], top1_correct=rec["top1"], top5_correct=rec["top5"])
        if rec["masks"] is None:
            self.masks_everywhere = False
        elif self.masks_everywhere:
            self.pxap.update(maps, rec["masks"].numpy())
        self.n += len(rec["top1"])
        self.top1 += int(rec["top1"].sum())
        self.top5 += int(rec["top5"].sum())

    def compute(self) -> dict:
        if self.n == 0:
            raise ValueError("evaluate_model: the loader yielded no images; check the split and data.eval_limit.")
        box = self.box.compute()
        out: dict[str, Any] = {
            "top1": 100.0 * self.top1 / self.n,
            "top5": 100.0 * self.top5 / self.n,
        }
        for key in ("maxboxacc", "maxboxacc_v2", "maxboxacc_single", "top1_loc", "top5_loc", "gt_known_loc",
                    "best_threshold"):
            if key in box:
                out[key] = box[key]
        out["pxap"] = float(self.pxap.compute()["pxap"]) if self.masks_everywhere else None
        out["num_images"] = self.n
        out["curves"] = box.get("curves")
        return out


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    loader,
    device: str | torch.device = "cpu",
    cam_thresholds: Sequence[float] | np.ndarray | None = None,
    iou_thresholds: Sequence[float] = (30, 50, 70),
    cam_interval: float = 0.01,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = True,
    desc: str = "eval",
    return_curves: bool = False,
    save_maps: str | os.PathLike | None = None,
) -> dict:
    """Evaluate classification and localization of ``model`` on ``loader``.

    Args:
        model: a WSOL model following the model contract (``forward(x, labels, return_cam)``).
        loader: yields ``collate_wsol`` batches. Under ``torchrun`` give each rank its shard
            (:class:`cirlib.engine.distributed.ShardSampler`); results are gathered on rank 0.
        device: where the forward pass runs (CAMs are upsampled and scored on the CPU).
        cam_thresholds: CAM thresholds; default ``arange(0, 1, cam_interval)``.
        iou_thresholds: IoU thresholds in percent for MaxBoxAcc.
        cam_interval: threshold step when ``cam_thresholds`` is None.
        amp: bf16 autocast for the forward pass (CUDA only).
        channels_last: NHWC input (CUDA only).
        progress: show a tqdm bar (also off with ``TQDM_DISABLE`` and on ranks other than 0).
        desc: progress-bar label.
        return_curves: keep the BoxAcc curves in the result (large with interval 0.001).
        save_maps: also write every scored map to ``save_maps/<image_id>.npy`` (``cirlib score`` input).

    Returns:
        ``{"top1", "top5", "maxboxacc": {"30", "50", "70"}, "maxboxacc_v2", "top1_loc",
        "top5_loc", "gt_known_loc", "pxap" (None without masks), "best_threshold",
        "num_images"}``, accuracies in percent; the same dict on every rank.
    """
    device = torch.device(device) if not isinstance(device, torch.device) else device
    thresholds = default_cam_thresholds(cam_interval) if cam_thresholds is None else np.asarray(cam_thresholds)
    was_training = model.training
    model.eval()
    scorer = _Scorer(thresholds, iou_thresholds, save_maps) if not is_distributed() else None
    records: list[dict] = []
    try:
        total = len(loader) if hasattr(loader, "__len__") else None
        with batches(loader) as iterator:
            for batch in tqdm(iterator, total=total, desc=desc, leave=False, disable=progress_disabled(progress)):
                rec = _collect_batch(model, batch, device, amp, channels_last)
                if scorer is not None:
                    scorer.update(rec)
                else:
                    records.append(rec)
    finally:
        model.train(was_training)

    if scorer is None:  # several processes: score everything on rank 0, then share
        gathered = gather_objects(records)
        result = None
        if is_main_process():
            scorer = _Scorer(thresholds, iou_thresholds, save_maps)
            for rank_records in gathered:
                for rec in rank_records:
                    scorer.update(rec)
            result = scorer.compute()
        result = broadcast_object(result)
    else:
        result = scorer.compute()
    if not return_curves:
        result.pop("curves", None)
    return result
