"""What the notebooks compute and print to back their sentences; :mod:`cirlib.viz` only draws.

* the evaluator's localization maps of a model (:func:`localization_maps`);
* where maps and attention go on the synthetic images' head / body masks (:func:`region_activation`,
  :func:`dataset_region_activation`, :func:`above_threshold_coverage`,
  :func:`attention_received_by_region`, ...);
* the tables the notebooks print (:func:`metrics_table`, :func:`results_table`), built by the one
  formatter of the results layer, :func:`cirlib.runs.results.format_table`.

The measurements take plain arrays, so a notebook computes the number in the run it talks about, and a
unit test pins the definition down on a tiny hand-made case.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from cirlib.paths import RESULTS_DIR
from cirlib.runs.results import format_table, load_results

__all__ = [
    "compare_methods",
    "acol_views",
    "align_table",
    "box_coverage",
    "first_iou_below",
    "evaluator_boxes",
    "RUN_COLUMNS",
    "above_threshold_coverage",
    "best_box_area_ratio",
    "attention_received_by_region",
    "fusion_example",
    "gate_factors",
    "localization_maps_with",
    "map_regions",
    "query_attention",
    "caam_broadcast",
    "caam_gamma_sweep",
    "caam_row_concentration",
    "cells_of_mask",
    "complementary_head_maps",
    "complementary_head_metrics",
    "coverage_table",
    "dataset_region_activation",
    "head_box_ious",
    "fully_hidden_share",
    "localization_maps",
    "mass_in_box",
    "metrics_table",
    "part_box_iou",
    "region_activation",
    "results_table",
    "row_entropy",
    "synthetic_part_masks",
    "synthetic_part_statistics",
]


def _as_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def localization_maps(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                      batch_size: int | None = None) -> torch.Tensor:
    r"""The evaluator's localization maps: CAM at feature size, upsampled, min-max normalised.

    Exactly what :func:`cirlib.engine.evaluate_model` scores: ``model(x, labels, return_cam=True)``,
    then the map pipeline :func:`cirlib.maps.localization_maps` (the reference's bicubic
    upsampling to the image size, then :math:`(A - \min A) / (\max A - \min A)` per map).

    Args:
        model: a WSOL model (model contract of ``docs/architecture.md``); put in eval mode for the call.
        images: ``(B, 3, H, W)`` normalised images (moved to the model's device).
        labels: ``(B,)`` classes whose map to take (GT-known); ``None`` = the top-1 prediction.
        batch_size: images per forward pass (bounds the memory); ``None`` = all at once. Each map
            is normalised on its own, so the result does not depend on it.

    Returns:
        ``(B, H, W)`` float maps in [0, 1], on the CPU.
    """
    from cirlib import maps as map_pipeline

    if batch_size is not None and batch_size < 1:
        raise ValueError(f"localization_maps: batch_size must be >= 1 (or None), got {batch_size}.")
    device = next(model.parameters()).device
    labels = None if labels is None else torch.as_tensor(labels)
    step = batch_size or max(len(images), 1)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(images), step):
                x = images[start:start + step].to(device)
                y = None if labels is None else labels[start:start + step].to(device)
                _, cams = model(x, y, return_cam=True)
                out.append(torch.from_numpy(map_pipeline.localization_maps(cams, tuple(images.shape[-2:]))))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, *images.shape[-2:])


def region_activation(maps: np.ndarray | torch.Tensor, head_masks: np.ndarray,
                      body_masks: np.ndarray) -> dict[str, float]:
    r"""How a batch of normalised maps spreads over head, body and background.

    With :math:`s` a map in [0, 1], :math:`H, B` the head and body masks and :math:`G` the rest:

    * ``head``, ``body``, ``background``: mean activation :math:`\frac{1}{|R|}\sum_{R} s` over each
      region, averaged over images;
    * ``head_mass``: share of the object's activation on the head,
      :math:`\sum_H s / \sum_{H \cup B} s` (averaged over images; 0 for an all-zero map);
    * ``head_area``: share of the object's pixels that are head, :math:`|H| / |H \cup B|` (what
      ``head_mass`` would be for a map spread evenly over the object).

    Args:
        maps: ``(N, H, W)`` maps in [0, 1].
        head_masks: ``(N, H, W)`` bool head masks (synthetic ``render(i)["head_mask"]``).
        body_masks: ``(N, H, W)`` bool body masks (head excluded).

    Returns:
        ``{"head", "body", "background", "head_mass", "head_area"}`` as floats.
    """
    s = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps, dtype=np.float64)
    head = np.asarray(head_masks, dtype=bool)
    body = np.asarray(body_masks, dtype=bool) & ~head
    if s.shape != head.shape or s.shape != body.shape:
        raise ValueError(f"region_activation: maps {s.shape}, head_masks {head.shape} and body_masks {body.shape} "
                         "must have the same (N, H, W) shape.")
    rest = ~(head | body)
    out = {"head": [], "body": [], "background": [], "head_mass": [], "head_area": []}
    for i in range(s.shape[0]):
        si = s[i].astype(np.float64)
        for name, region in (("head", head[i]), ("body", body[i]), ("background", rest[i])):
            out[name].append(float(si[region].mean()) if region.any() else 0.0)
        obj = float(si[head[i] | body[i]].sum())
        out["head_mass"].append(float(si[head[i]].sum()) / obj if obj > 0 else 0.0)
        out["head_area"].append(float(head[i].sum()) / max(float((head[i] | body[i]).sum()), 1.0))
    return {k: float(np.mean(v)) if v else 0.0 for k, v in out.items()}


#: The columns of one run that :func:`metrics_table` shows (keys of :data:`cirlib.runs.results.COLUMNS`).
RUN_COLUMNS = ("top1", "maxboxacc_30", "maxboxacc_50", "maxboxacc_70", "maxboxacc_v2", "pxap")


def metrics_table(metrics: dict[str, dict], regions: dict[str, dict | None] | None = None) -> str:
    """One row per method of this run: top-1, MaxBoxAcc at IoU 30/50/70, MaxBoxAccV2, PxAP (all in %).

    Args:
        metrics: ``{method: test metrics}`` (``train_or_load(...).metrics``).
        regions: ``{method: region_activation(...) or None}``: adds the column "head share", the
            head's share of the activation on the object (``-`` for ``None``), and a last line saying
            how much of the object the head is. ``None``: no such column.

    Returns:
        The Markdown table of :func:`cirlib.runs.results.format_table`.

    Raises:
        ValueError: a metric outside [0, 100] (a broken run, not a number to print).
    """
    extra = None
    if regions is not None:
        extra = {"head share": {m: format(r["head_mass"], ".1%") for m, r in regions.items() if r is not None}}
    table = format_table(list(metrics), this_run=metrics, run_columns=RUN_COLUMNS, extra=extra)
    some = next((r for r in (regions or {}).values() if r is not None), None)
    if some is not None:
        table += (f"\n(head share: the head's share of the activation on the object; the head is "
                  f"{some['head_area']:.1%} of the object's pixels)")
    return table


def results_table(methods: Sequence[str], this_run: dict[str, dict], path: str | os.PathLike = RESULTS_DIR,
                  columns: Sequence[str] = ("maxboxacc_30", "maxboxacc_50", "maxboxacc_70", "maxboxacc_v2"),
                  ) -> str | None:
    """``make results``' seeds (mean ± std) beside this run's numbers; ``None`` when there is no results file.

    Args:
        methods: methods to show, in order (``"cam"``, ``"has"``, ...).
        this_run: ``{method: test metrics}`` of this notebook's single-seed run.
        path: the results folder or file (:func:`cirlib.runs.results.load_results`; default ``results/``).
        columns: keys of :data:`cirlib.runs.results.COLUMNS` (default MaxBoxAcc 30/50/70 and MaxBoxAccV2),
            each shown over the seeds and for this run.

    Returns:
        The Markdown table of :func:`cirlib.runs.results.format_table`, or ``None`` without a results file.
    """
    stored = load_results(path)
    if stored is None:
        return None
    return format_table(methods, seeds=stored.summary, this_run=this_run, seed_columns=columns, run_columns=columns)


def synthetic_part_masks(renders, image_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The head and body masks of synthetic test images, from their ``image_id`` (``".../<index>"``).

    Args:
        renders: the synthetic dataset (its ``render(i)`` gives ``head_mask`` and ``body_mask``).
        image_ids: the batch's ``image_id`` strings.

    Returns:
        ``(heads, bodies)``, each ``(N, H, W)`` bool.
    """
    items = [renders.render(int(str(i).rsplit("/", 1)[1])) for i in image_ids]
    return np.stack([r["head_mask"] for r in items]), np.stack([r["body_mask"] for r in items])


def dataset_region_activation(model: torch.nn.Module, dataset, renders, batch_size: int = 200) -> dict[str, float]:
    """:func:`region_activation` of a model's GT-class localization maps over a whole synthetic dataset.

    Args:
        model: a WSOL model (maps by :func:`localization_maps`).
        dataset: the test items (image, label, image_id), e.g. a ``Subset`` of ``renders``.
        renders: the synthetic dataset whose ``render(i)`` gives the head / body masks.
        batch_size: evaluation batch size.

    Returns:
        ``{"head", "body", "background", "head_mass", "head_area"}`` over every image.
    """
    from cirlib.data import build_loader

    maps, heads, bodies = [], [], []
    for batch in build_loader(dataset, batch_size=batch_size, shuffle=False):
        maps.append(localization_maps(model, batch["image"], batch["label"]).numpy())
        head, body = synthetic_part_masks(renders, batch["image_id"])
        heads.append(head)
        bodies.append(body)
    return region_activation(np.concatenate(maps), np.concatenate(heads), np.concatenate(bodies))


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


def localization_maps_with(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                           **attributes) -> torch.Tensor:
    """:func:`localization_maps` with some of the model's attributes changed for this call, then restored.

    A what-if on a trained model without retraining it, e.g. ``cam_from="attended"`` (read the class maps
    from the attended features instead of the backbone's) or ``fusion_weight=0.0`` (a setting that only
    the training loss reads).

    Raises:
        ValueError: an attribute the model does not have (a typo would otherwise change nothing).
    """
    missing = [name for name in attributes if not hasattr(model, name)]
    if missing:
        raise ValueError(f"localization_maps_with: {type(model).__name__} has no attribute {missing[0]!r}; "
                         f"pass one of its settings, e.g. cam_from or fusion_weight.")
    saved = {name: getattr(model, name) for name in attributes}
    try:
        for name, value in attributes.items():
            setattr(model, name, value)
        return localization_maps(model, images, labels)
    finally:
        for name, value in saved.items():
            setattr(model, name, value)


def query_attention(attention, grid: tuple[int, int], image_size: tuple[int, int],
                    query_xy: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    r"""Where one query pixel looks, and the attention every cell receives, on the feature grid.

    The query pixel :math:`(x, y)` of an :math:`H \times W` image lies in cell
    :math:`(r, c) = (\min(\lfloor y f_h / H \rfloor, f_h - 1), \min(\lfloor x f_w / W \rfloor, f_w - 1))`;
    its attention is row :math:`i = r f_w + c` of :math:`S`, and a cell receives
    :math:`g_j = \sum_i S_{ij}` (what SSAM's gate uses).

    Args:
        attention: ``(N, N)`` attention of one image (rows: queries, row-major over the grid).
        grid: ``(fh, fw)`` with ``fh fw = N``.
        image_size: ``(H, W)`` in pixels.
        query_xy: the query pixel, ``(x, y)`` (column, row).

    Returns:
        ``(row, received)``, each ``(fh, fw)``.
    """
    s = _as_numpy(attention).astype(np.float64)
    fh, fw = grid
    (h, w), (x, y) = image_size, query_xy
    if s.shape != (fh * fw, fh * fw):
        raise ValueError(f"query_attention: attention {s.shape} must be (N, N) with N = {fh} x {fw}.")
    if not (0 <= x < w and 0 <= y < h):
        raise ValueError(f"query_attention: query (x, y) = ({x}, {y}) lies outside the {w} x {h} image.")
    r, c = min(int(y * fh / h), fh - 1), min(int(x * fw / w), fw - 1)
    return s[r * fw + c].reshape(fh, fw), s.sum(axis=0).reshape(fh, fw)


def gate_factors(received_by_region: dict[str, float], beta: float) -> dict[str, float]:
    r"""SSAM's gate factor :math:`1 + \beta (g - 1)` for the mean cell of the head, body and background.

    Args:
        received_by_region: :func:`attention_received_by_region`'s result (``*_per_cell``: mean :math:`g`).
        beta: the learned scale :math:`\beta`.

    Returns:
        ``{"head", "body", "background"}``: the factor the gate multiplies that region's features by
        (linear in :math:`g`, so the factor of the mean cell is the mean factor).
    """
    return {k: 1.0 + beta * (received_by_region[f"{k}_per_cell"] - 1.0) for k in ("head", "body", "background")}


def map_regions(maps, head_masks, body_masks, tau: float) -> dict[str, float]:
    """Where maps put their mass (:func:`region_activation`) and what a threshold keeps (``kept_*``).

    The keys of :func:`region_activation`, and those of :func:`above_threshold_coverage` at ``tau``
    prefixed with ``kept_`` (``kept_body``: the share of body pixels above the threshold,
    ``kept_kept_on_object``: the share of kept pixels on the object).
    """
    kept = above_threshold_coverage(maps, head_masks, body_masks, tau)
    return {**region_activation(maps, head_masks, body_masks), **{f"kept_{k}": v for k, v in kept.items()}}


def fusion_example(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, patch_size: int,
                   seed: int = 0) -> dict:
    r"""The maps a complementary model's fusion loss compares, for one seeded split of ``images``.

    The same maps as training (``model.fusion_maps``): :math:`A_1` (classifier 1 on :math:`I_1`),
    :math:`A_2` (classifier 2 on :math:`I_2`), :math:`A_{full}` (classifier 1 on the full image), at
    feature size; :math:`m` is the share of each feature cell that :math:`I_1` shows. With
    :math:`\hat A` the per-image min-max normalisation, the targets are the stitched
    :math:`\widehat{m \hat A_1 + (1 - m) \hat A_2}` and the max :math:`\widehat{\max(\hat A_1, \hat A_2)}`.

    Returns:
        ``{"i1", "i2"`` (images), ``"m", "a1", "a2", "stitched", "max", "a_full"`` (``(B, h, w)``, in [0, 1]),
        ``"losses"``: ``{kind: the fusion loss of each kind, mean over the batch}``}.
    """
    from cirlib.methods import complementary_pair
    from cirlib.methods.fusion_loss import FUSION_LOSSES, attention_fusion_loss, downsample_mask
    from cirlib.models.heads import minmax_normalize as norm

    i1, i2, mask = complementary_pair(images, patch_size, model.hide_prob,
                                      generator=torch.Generator().manual_seed(seed))
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            maps = model.fusion_maps(images.to(dev), labels.to(dev), pair=(i1.to(dev), i2.to(dev), mask.to(dev)),
                                     full_image=True)
    finally:
        model.train(was_training)
    a1, a2, a_full = maps.a1.cpu(), maps.a2.cpu(), maps.a_full[0].cpu()
    m = downsample_mask(mask, tuple(a1.shape[-2:]))
    losses = {kind: float(attention_fusion_loss(kind, None if kind == "consistency" else a_full, a1, a2, mask))
              for kind in FUSION_LOSSES}
    return {"i1": i1, "i2": i2, "m": m, "a1": norm(a1), "a2": norm(a2), "a_full": norm(a_full),
            "stitched": norm(m * norm(a1) + (1 - m) * norm(a2)), "max": norm(torch.maximum(norm(a1), norm(a2))),
            "losses": losses}


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

    Every map goes through the evaluator's pipeline (:mod:`cirlib.maps`: class map at feature size,
    :func:`~cirlib.maps.fuse` of the two classifiers' normalised maps for the fusions, bicubic
    upsampling, min-max normalisation), so ``"max fusion (the default)"`` equals what the model's
    own evaluation scores; ``"mean fusion"`` is the alternative for comparison only.

    Args:
        model: a :class:`~cirlib.methods.complementary.ComplementaryModel` with two classifiers.
        images: ``(B, 3, H, W)`` normalised full images.
        labels: ``(B,)`` ground-truth classes.

    Returns:
        ``{"classifier 1 alone", "classifier 2 alone", "max fusion (the default)", "mean fusion"}``,
        each ``(B, H, W)`` in [0, 1] on the CPU.
    """
    from cirlib import maps as map_pipeline
    from cirlib.models.heads import select_class_maps

    if len(model.heads) != 2:
        raise ValueError(f"complementary_head_maps needs a model with two classifiers, got {len(model.heads)}.")
    device = next(model.parameters()).device
    x, y = images.to(device), torch.as_tensor(labels).to(device)
    was_training = model.training
    model.eval()  # what evaluation scores: BatchNorm's running statistics, left untouched
    try:
        with torch.no_grad():
            _, class_maps = model.classifier_maps(x)
    finally:
        model.train(was_training)
    first, second = (select_class_maps(maps, y).float() for maps in class_maps)
    at_feature_size = {"classifier 1 alone": first, "classifier 2 alone": second,
                       "max fusion (the default)": map_pipeline.fuse([first, second], rule="max"),
                       "mean fusion": map_pipeline.fuse([first, second], rule="mean")}
    size = tuple(images.shape[-2:])
    return {name: torch.from_numpy(map_pipeline.localization_maps(maps, size))
            for name, maps in at_feature_size.items()}


def complementary_head_metrics(model, dataset, renders=None, batch_size: int = 200,
                               cam_interval: float = 0.01) -> dict[str, dict]:
    """MaxBoxAcc (30/50/70, V2) of each classifier alone and of both fusions, on ``dataset``.

    Args:
        model: a two-classifier complementary model (see :func:`complementary_head_maps`).
        dataset: the test items (image, label, boxes, image_id).
        renders: the synthetic dataset whose ``render(i)`` gives head / body masks (adds the head's
            share of the activation, :func:`region_activation`), or ``None``.
        batch_size: evaluation batch size.
        cam_interval: CAM threshold step of the evaluator.

    Returns:
        ``{map name: {"maxboxacc": {"30", "50", "70"}, "maxboxacc_v2", "head_mass" (or None)}}``.
    """
    from cirlib.data import build_loader
    from cirlib.engine import default_cam_thresholds
    from cirlib.metrics import BoxEvaluator
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
            head, body = synthetic_part_masks(renders, batch["image_id"])
            heads.append(head)
            bodies.append(body)
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


# ----------------------------------------------------------------------------- notebooks 03 and 04


def fully_hidden_share(region_masks, patch_size: int, hide_prob: float = 0.5, draws: int = 20,
                       seed: int = 0) -> float:
    r"""How often the first complementary image :math:`I_1` hides a whole region (only :math:`I_2` shows it).

    For each image and each of ``draws`` patch masks :math:`M` (:func:`cirlib.methods.patch_grid_mask`,
    True where :math:`I_1` shows), the region :math:`R` is fully hidden when :math:`R \cap M = \emptyset`.
    A region that spans :math:`k` patches is fully hidden with probability :math:`p^k`, so larger
    patches hide a small part (the head) whole more often.

    Args:
        region_masks: ``(B, H, W)`` bool, one non-empty region per image.
        patch_size: patch side :math:`s` in pixels.
        hide_prob: :math:`p`, the probability that a patch is hidden.
        draws: masks drawn per image.
        seed: seed of the masks.

    Returns:
        The share of (image, draw) pairs with the region fully hidden, in [0, 1].
    """
    from cirlib.methods import patch_grid_mask

    regions = torch.as_tensor(_as_numpy(region_masks)).bool()
    if regions.ndim != 3 or not regions.flatten(1).any(1).all():
        raise ValueError(f"fully_hidden_share: need (B, H, W) masks with a non-empty region each, "
                         f"got shape {tuple(regions.shape)}.")
    b, h, w = regions.shape
    g = torch.Generator().manual_seed(seed)
    shown = patch_grid_mask(b * draws, h, w, patch_size, hide_prob, generator=g)[:, 0]
    hidden = ~(shown & regions.repeat(draws, 1, 1)).flatten(1).any(1)
    return float(hidden.float().mean())


def mass_in_box(maps, boxes) -> float:
    r"""Mean over images of the share of a map's mass inside its GT box(es): :math:`\sum_{p \in B} m_p / \sum_p m_p`.

    Args:
        maps: ``(N, H, W)`` non-negative maps.
        boxes: per image, ``(K, 4)`` boxes ``(x0, y0, x1, y1)`` with inclusive corners.
    """
    fractions = []
    for m, bx in zip(_as_numpy(maps).astype(np.float64), boxes):
        inside = np.zeros(m.shape, dtype=bool)
        for x0, y0, x1, y1 in np.asarray(_as_numpy(bx)).reshape(-1, 4).astype(int).tolist():
            inside[y0:y1 + 1, x0:x1 + 1] = True
        fractions.append(float(m[inside].sum() / max(m.sum(), 1e-12)))
    return float(np.mean(fractions))


def row_entropy(q) -> float:
    r"""Mean entropy :math:`-\sum_j q_{ij} \log q_{ij}` (nats) of the rows of row-stochastic matrices ``(..., C, C)``.

    0 for one-hot rows, :math:`\log C` for uniform ones.
    """
    m = _as_numpy(q).astype(np.float64)
    return float(-(m * np.log(np.clip(m, 1e-12, None))).sum(-1).mean())


def caam_broadcast(q, other) -> dict[str, float | list[int]]:
    r""":func:`caam_row_concentration` of each image of a batch, summarised.

    Args:
        q: ``(B, C, C)`` CAAM matrices :math:`Q_x`.
        other: ``(B, C, N)`` the other branch's features :math:`X_2`.

    Returns:
        ``{"median_share", "min_share", "max_share"}``: the share of an image's rows whose largest
        weight falls on its most popular column; ``"strongest"``: the share of images where that
        column is the other branch's largest-norm channel; ``"winners"``: the winning channels.
    """
    per_image = [caam_row_concentration(q[i], other=other[i]) for i in range(len(q))]
    shares = np.array([p["share"] for p in per_image])
    return {"median_share": float(np.median(shares)), "min_share": float(shares.min()),
            "max_share": float(shares.max()),
            "strongest": float(np.mean([p["norm_rank"] == 0 for p in per_image])),
            "winners": sorted({int(p["channel"]) for p in per_image})}


@torch.no_grad()
def caam_gamma_sweep(model, images: torch.Tensor, labels: torch.Tensor, boxes, pair: tuple[torch.Tensor, torch.Tensor],
                     gammas: Sequence[float]) -> dict[str, list[float]]:
    r"""Set CAAM's :math:`\gamma` of a trained model to each value and measure what moves.

    For each :math:`\gamma`: the relative feature change :math:`\|F^c_x - F_x\| / \|F_x\|` of branch 1
    on the pair's backbone features, the map mass inside the GT box (:func:`mass_in_box` of the
    evaluator's maps, :func:`localization_maps`) and the top-1 accuracy (%) on ``images``. The learned
    parameter is restored afterwards.

    Args:
        model: a complementary model with CAAM (``model.caam``), in eval mode.
        images, labels, boxes: test images ``(B, 3, H, W)``, their labels and GT boxes.
        pair: ``(F_x, F_x2)`` backbone features of a complementary pair.
        gammas: effective values of :math:`\gamma` (inside ``(-1, 1)`` under the ``tanh`` scale).

    Returns:
        ``{"gamma", "relative_feature_change", "mass_in_box", "top1"}``, one list entry per value.
    """
    import math

    caam, device = model.caam, next(model.parameters()).device
    saved = caam.gamma.detach().clone()
    out: dict[str, list[float]] = {"gamma": [float(g) for g in gammas], "relative_feature_change": [],
                                   "mass_in_box": [], "top1": []}
    f1, f2 = (f.to(device) for f in pair)
    try:
        for value in gammas:
            caam.gamma.fill_(value if caam.scale == "linear" else math.atanh(value))
            out["relative_feature_change"].append(float((caam(f1, f2)[0] - f1).norm() / f1.norm()))
            out["mass_in_box"].append(mass_in_box(localization_maps(model, images, labels), boxes))
            predicted = model(images.to(device)).argmax(1).cpu()
            out["top1"].append(100.0 * float((predicted == torch.as_tensor(labels)).float().mean()))
    finally:
        caam.gamma.copy_(saved)
    return out


def head_box_ious(dataset, n: int = 200) -> np.ndarray | None:
    """:func:`part_box_iou` of the head over the first ``n`` synthetic images: a perfect head detector's boxes.

    Returns:
        ``(n,)`` IoUs of the head's tight box with the GT box, or ``None`` for a dataset without
        part masks (no ``render``: CUB, ILSVRC).
    """
    if not hasattr(dataset, "render"):
        return None
    renders = [dataset.render(i) for i in range(min(n, len(dataset)))]
    return part_box_iou(np.stack([r["head_mask"] for r in renders]), [r["box"][None] for r in renders])


def synthetic_part_statistics(dataset, n: int = 200) -> dict | None:
    r"""What the first ``n`` synthetic images are made of, and how far each part gets a classifier.

    * ``object_share_of_image``: mean :math:`|O| / (HW)`, :math:`O` the object (head and body);
    * ``head_share_of_object``: mean :math:`|H| / |O|`, :math:`H` the head;
    * ``head_colour_accuracy``: share of images whose class is the one with the nearest head colour
      (:func:`cirlib.data.class_colors`) to the mean colour of the head pixels, no learning;
    * ``body_only_accuracy_bound``: :math:`1/g`, the best a reader of the body texture alone can do
      when :math:`g` classes share each texture;
    * ``head_box_mean_iou`` and ``head_box_acc`` (``{"30", "50", "70"}``, in %): the IoU of the head's
      tight box with the GT box (:func:`head_box_ious`), its mean and how often it reaches each threshold.

    Returns:
        The dict above, or ``None`` for a dataset without part masks (CUB, ILSVRC).
    """
    if not hasattr(dataset, "render"):
        return None
    from cirlib.data import class_colors

    renders = [dataset.render(i) for i in range(min(n, len(dataset)))]
    palette = class_colors(dataset.num_classes)
    head_rgb = np.stack([r["rgb"][r["head_mask"]].mean(axis=0) / 255.0 for r in renders])
    nearest = ((head_rgb[:, None, :] - palette[None]) ** 2).sum(axis=2).argmin(axis=1)
    ious = head_box_ious(dataset, n)
    return {
        "object_share_of_image": float(np.mean([r["mask"].sum() / r["mask"].size for r in renders])),
        "head_share_of_object": float(np.mean([r["head_mask"].sum() / r["mask"].sum() for r in renders])),
        "head_colour_accuracy": float(np.mean(nearest == np.array([r["label"] for r in renders]))),
        "body_only_accuracy_bound": 1.0 / dataset.spec.classes_per_group,
        "head_box_mean_iou": float(ious.mean()),
        "head_box_acc": {str(d): float(np.mean(ious >= d / 100)) * 100 for d in (30, 50, 70)},
    }


def best_box_area_ratio(maps, gt_boxes, tau: float) -> np.ndarray:
    r"""Per image, how big the evaluator's box is against the GT box: :math:`|B^*| / |B^{gt}|`.

    :math:`B^*` is the box (multi contour, :func:`cirlib.metrics.scoremap_to_boxes` at CAM threshold
    ``tau``) with the best IoU with a GT box, :math:`B^{gt}` that GT box; areas count pixels
    inclusively. Above 1 the box is larger than the object's box, below 1 smaller.

    Args:
        maps: ``(N, H, W)`` normalised maps.
        gt_boxes: ``N`` arrays ``(k, 4)`` of GT boxes.
        tau: the CAM threshold.

    Returns:
        ``(N,)`` area ratios.
    """
    from cirlib.metrics import box_iou_inclusive, scoremap_to_boxes

    def area(b: np.ndarray) -> np.ndarray:
        return (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)

    out = []
    for s, gt in zip(_as_numpy(maps), gt_boxes):
        gt = np.asarray(_as_numpy(gt), dtype=np.float64).reshape(-1, 4)
        boxes = np.asarray(scoremap_to_boxes(s, tau, multi_contour=True), dtype=np.float64).reshape(-1, 4)
        iou = box_iou_inclusive(boxes, gt)
        i, j = np.unravel_index(int(iou.argmax()), iou.shape)
        out.append(float(area(boxes[i]) / area(gt[j])))
    return np.asarray(out)


def coverage_table(coverage: dict[str, dict[str, float]], thresholds: dict[str, float],
                   maxboxacc: dict[str, float]) -> str:
    """The pixels each best CAM threshold keeps (:func:`above_threshold_coverage`), one aligned row per IoU.

    Args:
        coverage: ``{iou: above_threshold_coverage(...)}`` for ``"30"``, ``"50"``, ``"70"``.
        thresholds: ``{iou: the best CAM threshold}``.
        maxboxacc: ``{iou: MaxBoxAcc in %}``.

    Returns:
        A plain-text table with aligned columns, no trailing newline.
    """
    header = ("best threshold for", "tau", "head kept", "body kept", "bg kept", "on object", "MaxBoxAcc")
    rows = [header] + [(f"IoU {d}", f"{thresholds[d]:.2f}", *(f"{c[k]:.1%}" for k in
                        ("head", "body", "background", "kept_on_object")), f"{maxboxacc[d]:.1f}%")
                       for d, c in coverage.items()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(r, widths))) for r in rows)


def evaluator_boxes(maps, gt_boxes, threshold: float) -> tuple[list[np.ndarray], np.ndarray]:
    r"""Per image, the box the metric credits at one CAM threshold, and its IoU.

    The map is thresholded at :math:`\tau` and every contour gives a box
    (:func:`cirlib.metrics.scoremap_to_boxes` with ``multi_contour``); the credited box is the one
    with the best IoU with a GT box, :math:`\mathrm{IoU}_k = \max_{b, g} \mathrm{IoU}(b, g)`, what
    BoxAcc counts at that threshold.

    Args:
        maps: ``(N, H, W)`` normalised maps (:func:`localization_maps`).
        gt_boxes: ``N`` arrays ``(k, 4)`` of inclusive-corner GT boxes ``x0, y0, x1, y1``.
        threshold: the CAM threshold :math:`\tau` (e.g. the method's best one at IoU 50).

    Returns:
        ``(boxes, ious)``: ``N`` boxes ``(4,)`` and the ``(N,)`` IoUs in [0, 1].
    """
    from cirlib.metrics import box_iou_inclusive, scoremap_to_boxes

    boxes, ious = [], []
    for scoremap, gt in zip(_as_numpy(maps), gt_boxes):
        candidates = scoremap_to_boxes(scoremap, threshold, multi_contour=True)
        iou = box_iou_inclusive(candidates, np.asarray(_as_numpy(gt), dtype=np.float64).reshape(-1, 4)).max(axis=1)
        boxes.append(candidates[int(iou.argmax())])
        ious.append(float(iou.max()))
    return boxes, np.asarray(ious)


def first_iou_below(maxboxacc_by_iou: dict[str, float], level: float = 50.0) -> int | None:
    r"""The smallest IoU threshold :math:`\delta` with :math:`\mathrm{MaxBoxAcc}@\delta < ` ``level`` (%).

    Args:
        maxboxacc_by_iou: ``{"10": 99.0, "15": ..., "95": ...}`` (the evaluator's ``"maxboxacc"``).
        level: the accuracy, in %, whose crossing is sought.

    Returns:
        The IoU threshold (an int, in %), or ``None`` when MaxBoxAcc never falls below ``level``.
    """
    return next((int(k) for k in sorted(maxboxacc_by_iou, key=float) if maxboxacc_by_iou[k] < level), None)


def box_coverage(maps, gt_boxes, threshold: float) -> dict[str, float]:
    r"""How much of the GT boxes and of the background a map keeps above its CAM threshold.

    With :math:`S = \{s \ge \tau\}` the kept pixels and :math:`G` the pixels inside a GT box
    (inclusive corners), pooled over all images:

    .. math:: \text{inside} = \frac{|S \cap G|}{|G|},\qquad \text{outside} = \frac{|S \setminus G|}{|\bar G|}.

    Args:
        maps: ``(N, H, W)`` normalised maps.
        gt_boxes: ``N`` arrays ``(k, 4)`` of inclusive-corner GT boxes.
        threshold: the CAM threshold :math:`\tau`.

    Returns:
        ``{"inside", "outside"}``, fractions in [0, 1].
    """
    s = _as_numpy(maps)
    gt = np.zeros(s.shape, dtype=bool)
    for k, boxes in enumerate(gt_boxes):
        for x0, y0, x1, y1 in np.rint(np.asarray(_as_numpy(boxes), dtype=np.float64).reshape(-1, 4)).astype(int):
            gt[k, y0:y1 + 1, x0:x1 + 1] = True
    kept = s >= threshold
    return {"inside": float((kept & gt).sum() / max(gt.sum(), 1)),
            "outside": float((kept & ~gt).sum() / max((~gt).sum(), 1))}


def align_table(table: str) -> str:
    """A Markdown table (:func:`cirlib.runs.results.format_table`) with every column padded to one width.

    Still valid Markdown; printed in a notebook, the columns line up. Numbers are right-aligned,
    text left-aligned.
    """
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.splitlines()]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]

    def cell(text: str, width: int) -> str:
        if set(text) == {"-"}:
            return "-" * width
        numeric = text[:1].isdigit() or text[:1] in "+-" and text[1:2].isdigit()
        return text.rjust(width) if numeric else text.ljust(width)

    return "\n".join("| " + " | ".join(cell(t, w) for t, w in zip(row, widths)) + " |" for row in rows)


def acol_views(model: torch.nn.Module, image: torch.Tensor, label: int) -> dict[str, torch.Tensor]:
    r"""What ACoL's two classifiers do on one image, at image size (:mod:`cirlib.methods.acol`).

    Classifier A's GT-class map :math:`M^A`, min-max normalised; the locations B does not see,
    :math:`\bar M^A > \delta`; and B's GT-class map on the erased features :math:`F \odot [\bar M^A \le \delta]`.
    Feature-size maps are upsampled bilinearly to the image.

    Args:
        model: a trained :class:`cirlib.methods.acol.ACoLModel`.
        image: ``(3, H, W)`` normalised image.
        label: its class.

    Returns:
        ``{"a", "erased", "b"}``: ``(H, W)`` tensors in [0, 1] on the CPU (``erased`` is 0 or 1 before upsampling).
    """
    from cirlib.methods.acol import erase_mask
    from cirlib.models.heads import minmax_normalize

    device = next(model.parameters()).device
    with torch.no_grad():
        features = model.backbone(image[None].to(device))
        map_a = model.head_a.forward_with_maps(features)[1][0, label]
        keep = erase_mask(map_a[None], model.erase_threshold)
        map_b = model.head_b.maps(features * keep)[0, label]

    def up(m: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(m[None, None].float().cpu(), size=tuple(image.shape[-2:]),
                                               mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)

    return {"a": up(minmax_normalize(map_a)), "erased": up(1.0 - keep[0, 0]), "b": up(minmax_normalize(map_b))}


def compare_methods(summary: dict[str, dict], a: str, b: str, column: str = "maxboxacc_v2"):
    r"""Method ``a`` against ``b`` over the seeds of a results file, by the evidence rule.

    :math:`\bar a - \bar b > s_a + s_b` (:func:`cirlib.evidence.compare`), with the means and sample
    standard deviations of ``summary`` (:attr:`cirlib.runs.results.StoredResults.summary`).

    Args:
        summary: ``{method: {"mean": {column: ...}, "std": {column: ...}}}``.
        a, b: the two methods.
        column: the metric (a key of :data:`cirlib.runs.results.COLUMNS`).

    Returns:
        The :class:`cirlib.evidence.Comparison` (``.better``, ``.worse``, ``.verdict``, ``.gap``, ``.spread``).
    """
    from cirlib.evidence import compare

    missing = [m for m in (a, b) if m not in summary]
    if missing:
        raise ValueError(f"compare_methods: no seeds of {missing} in the results file; run `make results`.")
    mean, std = (lambda m: summary[m]["mean"][column]), (lambda m: summary[m]["std"][column] or 0.0)
    return compare(mean(a), mean(b), std(a), std(b))
