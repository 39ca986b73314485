"""Measurements the notebooks print to back their sentences (synthetic head / body masks, attention).

Each function takes plain arrays, so a notebook computes the number in the run it talks about, and a
unit test pins the definition down on a tiny hand-made case.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["above_threshold_coverage", "attention_received_by_region", "caam_row_concentration",
           "cells_of_mask"]


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def above_threshold_coverage(maps, head_masks, body_masks, tau: float) -> dict[str, float]:
    r"""Which pixels a CAM threshold keeps: the share of head, body and background pixels above it.

    The maps are binarised as the box evaluator does (quantised to uint8,
    :math:`q = \lfloor 255 s \rfloor`, kept where :math:`q > \lfloor \tau \max q \rfloor`); per image,

    * ``head``, ``body``, ``background``: the fraction of that region's pixels kept,
      :math:`|\{p \in R : q(p) > \lfloor\tau \max q\rfloor\}| / |R|`, averaged over images;
    * ``object_kept``: the same for head and body together;
    * ``kept_on_object``: the share of the kept pixels that lie on the object (precision).

    Args:
        maps: ``(N, H, W)`` normalised maps in [0, 1].
        head_masks, body_masks: ``(N, H, W)`` bool masks (the body excludes the head).
        tau: the CAM threshold in [0, 1).

    Returns:
        The five fractions in [0, 1].
    """
    s = _as_numpy(maps).astype(np.float64)
    head = _as_numpy(head_masks).astype(bool)
    body = _as_numpy(body_masks).astype(bool) & ~head
    if s.shape != head.shape or s.shape != body.shape:
        raise ValueError(f"above_threshold_coverage: maps {s.shape}, head_masks {head.shape}, body_masks "
                         f"{body.shape} must share one (N, H, W) shape.")
    if not 0.0 <= tau < 1.0:
        raise ValueError(f"above_threshold_coverage: tau={tau} must lie in [0, 1).")
    out: dict[str, list[float]] = {k: [] for k in ("head", "body", "background", "object_kept", "kept_on_object")}
    for si, hi, bi in zip(s, head, body):
        q = (np.clip(si, 0.0, 1.0) * 255).astype(np.uint8)
        kept = q > int(tau * q.max())
        obj = hi | bi
        for name, region in (("head", hi), ("body", bi), ("background", ~obj), ("object_kept", obj)):
            out[name].append(float(kept[region].mean()) if region.any() else 0.0)
        out["kept_on_object"].append(float(kept[obj].sum() / kept.sum()) if kept.any() else 0.0)
    return {k: float(np.mean(v)) if v else 0.0 for k, v in out.items()}


def cells_of_mask(mask, grid: tuple[int, int]) -> np.ndarray:
    """``(fh, fw)`` bool: the feature cells whose centre pixel lies on a ``(H, W)`` pixel mask.

    Cell ``(r, c)`` of an ``fh x fw`` grid over an ``H x W`` image has its centre at pixel
    ``((r + 0.5) H / fh - 0.5, (c + 0.5) W / fw - 0.5)``, rounded to the nearest pixel.
    """
    m = _as_numpy(mask).astype(bool)
    fh, fw = grid
    h, w = m.shape
    rows = np.clip(np.rint((np.arange(fh) + 0.5) * h / fh - 0.5).astype(int), 0, h - 1)
    cols = np.clip(np.rint((np.arange(fw) + 0.5) * w / fw - 0.5).astype(int), 0, w - 1)
    return m[np.ix_(rows, cols)]


def attention_received_by_region(attention, head_cells, body_cells) -> dict[str, float]:
    r"""Where a self-attention's weight lands, on a feature grid with head / body cells.

    With :math:`S \in \mathbb{R}^{N \times N}` (rows: queries, summing to 1) the attention a key
    cell receives is :math:`g_j = \sum_i S_{ij}` (mean 1). Per image:

    * ``head_share``, ``body_share``, ``background_share``: :math:`\sum_{j \in R} g_j / N`, the share
      of all attention that lands on region :math:`R`;
    * ``head_area``, ``body_area``: the share of the grid's cells in the region (what a uniform
      attention would give);
    * ``top_on_head``: whether the most-attended cell is a head cell;
    * ``head_per_cell``, ``body_per_cell``, ``background_per_cell``: the mean :math:`g_j` of a cell
      of the region (1 = an average cell).

    Images whose grid has no head or no body cell are skipped (the head can be smaller than a cell).

    Args:
        attention: ``(B, N, N)`` attention matrices.
        head_cells, body_cells: ``(B, fh, fw)`` bool cells (see :func:`cells_of_mask`), ``fh fw = N``.

    Returns:
        The means over the images kept, and ``images``, how many were kept.
    """
    s = _as_numpy(attention).astype(np.float64)
    head = _as_numpy(head_cells).astype(bool).reshape(len(s), -1)
    body = _as_numpy(body_cells).astype(bool).reshape(len(s), -1) & ~head
    if s.ndim != 3 or s.shape[1] != s.shape[2] or head.shape[1] != s.shape[1]:
        raise ValueError(f"attention_received_by_region: attention {s.shape} must be (B, N, N) with N = the "
                         f"cells of the masks ({head.shape[1]}).")
    keys = ("head_share", "body_share", "background_share", "head_area", "body_area", "top_on_head",
            "head_per_cell", "body_per_cell", "background_per_cell")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for si, hi, bi in zip(s, head, body):
        if not hi.any() or not bi.any():
            continue
        g = si.sum(axis=0)
        n = float(len(g))
        bg = ~(hi | bi)
        out["head_share"].append(float(g[hi].sum() / n))
        out["body_share"].append(float(g[bi].sum() / n))
        out["background_share"].append(float(g[bg].sum() / n))
        out["head_area"].append(float(hi.mean()))
        out["body_area"].append(float(bi.mean()))
        out["top_on_head"].append(float(hi[int(g.argmax())]))
        out["head_per_cell"].append(float(g[hi].mean()))
        out["body_per_cell"].append(float(g[bi].mean()))
        out["background_per_cell"].append(float(g[bg].mean()) if bg.any() else 0.0)
    result = {k: float(np.mean(v)) if v else float("nan") for k, v in out.items()}
    result["images"] = len(out["head_share"])
    return result


def caam_row_concentration(q, other=None) -> dict[str, float]:
    r"""How concentrated a CAAM matrix :math:`Q_x` (rows sum to 1) is on one column.

    Row :math:`i` gives the weights with which channel :math:`i` mixes the other branch's channels.
    When most rows put their largest weight on the same column :math:`j^*`, the term
    :math:`Q_x X_2` adds (nearly) the same map, channel :math:`j^*` of the other branch, to every
    channel: the module broadcasts one feature map rather than matching channels.

    Args:
        q: ``(C, C)`` or ``(B, C, C)`` row-stochastic matrices (a batch is pooled row-wise).
        other: optionally the other branch's features ``X_2``, ``(C, N)`` or ``(B, C, N)``: then
            ``norm_rank`` says where :math:`j^*` ranks by the channel's norm :math:`\|X_{2,j}\|`
            (0 = the largest; raw inner products favour large channels).

    Returns:
        ``{"channel": j*, "rows": rows whose argmax is j*, "of": all rows, "share": rows / of,
        "mean_weight": the mean weight of column j* over all rows, "distinct": distinct argmax columns}``,
        plus ``norm_rank`` with ``other``.
    """
    m = _as_numpy(q).astype(np.float64)
    m = m.reshape(-1, m.shape[-1])
    top = m.argmax(axis=1)
    counts = np.bincount(top, minlength=m.shape[-1])
    channel = int(counts.argmax())
    out = {"channel": channel, "rows": int(counts[channel]), "of": int(len(top)),
           "share": float(counts[channel] / len(top)), "mean_weight": float(m[:, channel].mean()),
           "distinct": int((counts > 0).sum())}
    if other is not None:
        x2 = _as_numpy(other).astype(np.float64)
        x2 = x2.reshape(-1, *x2.shape[-2:]) if x2.ndim == 3 else x2[None]
        norms = np.linalg.norm(x2, axis=-1).mean(axis=0)  # (C,) mean channel norm over the batch
        out["norm_rank"] = int((norms > norms[channel]).sum())
    return out


@torch.no_grad()
def complementary_head_maps(model, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The GT-class localization maps of a two-classifier model: each classifier alone and both fusions.

    Every map goes through the evaluator's pipeline (class map at feature size, bilinear upsampling,
    min-max normalisation; :func:`cirlib.viz.localization_maps`), so ``"max fusion (the default)"``
    equals what the model's own evaluation scores when its ``cam_fusion`` is ``"max"``.

    Args:
        model: a :class:`~cirlib.methods.complementary.ComplementaryModel` with two classifiers.
        images: ``(B, 3, H, W)`` normalised full images.
        labels: ``(B,)`` ground-truth classes.

    Returns:
        ``{"classifier 1 alone", "classifier 2 alone", "max fusion (the default)", "mean fusion"}``,
        each ``(B, H, W)`` in [0, 1] on the CPU.
    """
    import torch.nn.functional as F

    from cirlib.methods.complementary import normalize_class_maps
    from cirlib.metrics import normalize_cam
    from cirlib.models.heads import select_class_maps

    if len(model.heads) != 2:
        raise ValueError(f"complementary_head_maps needs a model with two classifiers, got {len(model.heads)}.")
    device = next(model.parameters()).device
    x, y = images.to(device), torch.as_tensor(labels).to(device)
    t, plain = model.full_features(x, need_plain=model._need_plain)
    src = model._cam_features(t, plain)
    normed = [normalize_class_maps(head.maps(src)) for head in model.heads]
    raw = {"classifier 1 alone": normed[0], "classifier 2 alone": normed[1],
           "max fusion (the default)": torch.maximum(normed[0], normed[1]),
           "mean fusion": (normed[0] + normed[1]) / 2}
    out = {}
    for name, maps in raw.items():
        picked = select_class_maps(maps, y)[:, None].float()
        up = F.interpolate(picked, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        out[name] = torch.as_tensor(normalize_cam(up)).cpu()
    return out


def complementary_head_metrics(model, dataset, renders=None, batch_size: int = 200,
                               cam_interval: float = 0.01) -> dict[str, dict]:
    """MaxBoxAcc (30/50/70, V2) of each classifier alone and of both fusions, on ``dataset``.

    Args:
        model: a two-classifier complementary model (see :func:`complementary_head_maps`).
        dataset: the test items (image, label, boxes, image_id).
        renders: the synthetic dataset whose ``render(i)`` gives head / body masks (adds the head's
            share of the activation, :func:`cirlib.viz.region_activation`), or ``None``.
        batch_size: evaluation batch size.
        cam_interval: CAM threshold step of the evaluator.

    Returns:
        ``{map name: {"maxboxacc": {"30", "50", "70"}, "maxboxacc_v2", "head_mass" (or None)}}``.
    """
    from cirlib.data import build_loader
    from cirlib.engine import default_cam_thresholds
    from cirlib.metrics import BoxEvaluator
    from cirlib.viz import region_activation

    evaluators: dict[str, BoxEvaluator] = {}
    maps_by_name: dict[str, list] = {}
    heads, bodies = [], []
    for batch in build_loader(dataset, batch_size=batch_size, shuffle=False):
        maps = complementary_head_maps(model, batch["image"], batch["label"])
        for name, m in maps.items():
            if name not in evaluators:
                evaluators[name] = BoxEvaluator(cam_thresholds=default_cam_thresholds(cam_interval),
                                                iou_thresholds=(30, 50, 70))
                maps_by_name[name] = []
            evaluators[name].update(m.numpy(), batch["boxes"])
            if renders is not None:
                maps_by_name[name].append(m.numpy())
        if renders is not None:
            items = [renders.render(int(str(i).rsplit("/", 1)[1])) for i in batch["image_id"]]
            heads.append(np.stack([r["head_mask"] for r in items]))
            bodies.append(np.stack([r["body_mask"] for r in items]))
    out = {}
    for name, evaluator in evaluators.items():
        scores = evaluator.compute()
        share = None
        if renders is not None:
            share = region_activation(np.concatenate(maps_by_name[name]), np.concatenate(heads),
                                      np.concatenate(bodies))["head_mass"]
        out[name] = {"maxboxacc": scores["maxboxacc"], "maxboxacc_v2": scores["maxboxacc_v2"], "head_mass": share}
    return out


def part_box_iou(part_masks, gt_boxes) -> np.ndarray:
    """Per image, the best IoU of the tightest box around a part (e.g. the head) with the GT boxes.

    Boxes are inclusive-corner ``x0, y0, x1, y1`` and IoU counts pixels inclusively, as the
    evaluator does (:func:`cirlib.metrics.box_iou_inclusive`); an empty mask gives 0.

    Args:
        part_masks: ``(N, H, W)`` bool masks of the part.
        gt_boxes: ``N`` arrays ``(k, 4)`` of GT boxes.

    Returns:
        ``(N,)`` IoUs in [0, 1].
    """
    from cirlib.metrics import box_iou_inclusive

    out = []
    for mask, boxes in zip(_as_numpy(part_masks).astype(bool), gt_boxes):
        if not mask.any():
            out.append(0.0)
            continue
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = np.array([[cols[0], rows[0], cols[-1], rows[-1]]], dtype=np.float64)
        out.append(float(box_iou_inclusive(box, np.asarray(_as_numpy(boxes), dtype=np.float64).reshape(-1, 4)).max()))
    return np.asarray(out)
