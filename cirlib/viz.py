"""Plotting helpers shared by the notebooks (matplotlib only, readable at slide size).

Every function draws into matplotlib axes and returns the figure; the notebook decides whether to
``plt.show()`` it or save it with :func:`save_figure`. What the figures show is computed in
:mod:`cirlib.analysis` (localization maps, region shares, tables); this module draws (one figure,
:func:`plot_method_maps`, also boxes the maps it shows, as the evaluator would).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patches
from matplotlib import patheffects

#: Every localization map is drawn with one perceptual colormap (uniform lightness steps, readable
#: in grey and by colour-blind readers), on a fixed [0, 1] scale, with a colorbar: jet's bright bands
#: invent edges the map does not have, and its red peak looks like a red box.
MAP_CMAP = "viridis"
#: Boxes are white with a black outline: no map value (viridis has no white) and no synthetic head
#: colour (saturated hues) can be taken for them. The ground truth is solid, a predicted box dashed.
GT_COLOR = "white"
PRED_COLOR = "white"
GT_STYLE = "solid"
PRED_STYLE = "dashed"
#: A caption fragment for figures that draw both kinds of box.
BOX_LEGEND = "GT box solid, predicted box dashed"
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "font.size": 11})


def to_numpy_image(image: torch.Tensor | np.ndarray, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None) -> np.ndarray:
    """A (3,H,W) tensor (normalised with ``mean``/``std`` if given) or (H,W,3) array as float RGB in [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu()
        if image.ndim == 3 and image.shape[0] in (1, 3):
            if mean is not None and std is not None:
                image = image * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)
            image = image.permute(1, 2, 0)
        image = image.numpy()
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    return np.clip(image, 0.0, 1.0)


def draw_box(ax: plt.Axes, box: Sequence[float], color: str = GT_COLOR, label: str | None = None,
             linewidth: float = 2.0, linestyle: str = GT_STYLE) -> None:
    """Draw an inclusive-corner box ``x0, y0, x1, y1`` (pixel centres) on ``ax``, outlined in black."""
    x0, y0, x1, y1 = (float(v) for v in box)
    rect = patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, edgecolor=color,
                             linewidth=linewidth, linestyle=linestyle, label=label)
    rect.set_path_effects([patheffects.withStroke(linewidth=linewidth + 1.5, foreground="black")])
    ax.add_patch(rect)


def show_image(ax: plt.Axes, image, boxes: Iterable[Sequence[float]] = (), pred_boxes: Iterable = (),
               cam: np.ndarray | torch.Tensor | None = None, title: str | None = None,
               mean=None, std=None, alpha: float = 0.5) -> plt.Axes:
    """An image with GT boxes (solid), predicted boxes (dashed) and an optional map overlay.

    The map (values in [0, 1]) is drawn with :data:`MAP_CMAP`; add one colorbar per figure with
    :func:`map_colorbar`.
    """
    ax.imshow(to_numpy_image(image, mean, std))
    if cam is not None:
        cam = cam.detach().float().cpu().numpy() if isinstance(cam, torch.Tensor) else np.asarray(cam)
        ax.imshow(cam, cmap=MAP_CMAP, alpha=alpha, vmin=0.0, vmax=1.0)
    for box in boxes:
        draw_box(ax, box, GT_COLOR, linestyle=GT_STYLE)
    for box in pred_boxes:
        draw_box(ax, box, PRED_COLOR, linestyle=PRED_STYLE)
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return ax


def show_map(ax: plt.Axes, values, title: str | None = None, vmin: float = 0.0, vmax: float | None = 1.0,
             cmap: str = MAP_CMAP):
    """A map on its own (no image below), ``(H, W)``, on the fixed scale ``[vmin, vmax]``; returns the image.

    ``vmax=None`` scales to the map's maximum (for maps that are not normalised, e.g. attention).
    """
    values = values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=values.max() if vmax is None else vmax)
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return image


def map_colorbar(fig: plt.Figure, axes, label: str = "normalised map", mappable=None) -> None:
    """One colorbar for the maps of ``axes`` (an axes or an array of them), beside them.

    Without ``mappable`` the bar shows :data:`MAP_CMAP` on [0, 1], the scale of every normalised map
    :func:`show_image` and :func:`show_map` draw; pass the image :func:`show_map` returned for another scale.
    """
    from matplotlib import cm, colors

    if mappable is None:
        mappable = cm.ScalarMappable(norm=colors.Normalize(0.0, 1.0), cmap=MAP_CMAP)
    axes_list = list(np.ravel(axes)) if isinstance(axes, np.ndarray) else axes
    fig.colorbar(mappable, ax=axes_list, label=label, shrink=0.8)


def image_grid(n_rows: int, n_cols: int, size: float = 2.6) -> tuple[plt.Figure, np.ndarray]:
    """A figure with an ``n_rows x n_cols`` array of axes (always 2-D).

    The figure uses matplotlib's constrained layout, which makes room for panel titles (also
    two-line ones), a ``suptitle`` and colorbars, so nothing overlaps when a reading group projects
    it; do not call ``fig.tight_layout()`` on it (that would switch the layout engine).
    """
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows + 0.4), squeeze=False,
                             layout="constrained")
    return fig, axes


def _legend_outside(ax: plt.Axes) -> None:
    """The legend to the right of the axes, off the curves."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def plot_boxacc_curves(curves: dict[str, np.ndarray], cam_thresholds: np.ndarray,
                       iou_threshold: int = 50, ax: plt.Axes | None = None, legend: bool = True) -> plt.Figure:
    """BoxAcc against the CAM threshold, one line per method (``curves[name]`` a 1-D array in %).

    The legend (``legend=True``) sits to the right of the axes, never over the curves.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.0, 4.2), layout="constrained")
    else:
        fig = ax.figure
    for name, curve in curves.items():
        ax.plot(cam_thresholds, curve, label=name, linewidth=2)
    ax.set_xlabel("CAM threshold")
    ax.set_ylabel(f"BoxAcc @ IoU {iou_threshold} (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if legend:
        _legend_outside(ax)
    return fig


def plot_maxboxacc_vs_iou(values: dict[str, dict[str, float]], ax: plt.Axes | None = None) -> plt.Figure:
    """MaxBoxAcc against the IoU threshold, one line per method (``values[name][iou] = %``).

    The legend sits to the right of the axes, off the curves.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.0, 4.2), layout="constrained")
    else:
        fig = ax.figure
    for name, by_iou in values.items():
        ious = sorted(by_iou, key=float)
        ax.plot([float(i) for i in ious], [by_iou[i] for i in ious], marker="o", label=name, linewidth=2)
    ax.set_xlabel("IoU threshold (%)")
    ax.set_ylabel("MaxBoxAcc (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    return fig


def plot_method_maps(models: dict[str, torch.nn.Module], metrics: dict[str, dict], items: Sequence[dict],
                     mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                     iou_threshold: str = "50") -> plt.Figure:
    """One row per method: its GT-class map, the GT boxes (solid) and its boxes (dashed) on ``items``.

    The boxes are drawn the way the metric finds them: the map of
    :func:`cirlib.analysis.localization_maps` thresholded at the method's best CAM threshold for
    ``iou_threshold`` (``metrics[method]["best_threshold"]``), every contour's box; each panel's
    title gives the best IoU of those boxes with the GT boxes.

    Args:
        models: ``{method: model}``, one row each, in order.
        metrics: ``{method: test metrics}`` (for the best thresholds).
        items: dataset items (``"image"``, ``"label"``, ``"boxes"``), one column each.
        mean, std: the dataset's normalisation, to show the images.
        iou_threshold: ``"30"``, ``"50"`` or ``"70"``: whose best CAM threshold draws the boxes.
    """
    from cirlib.analysis import localization_maps
    from cirlib.metrics import box_iou_inclusive, scoremap_to_boxes

    x = torch.stack([it["image"] for it in items])
    y = torch.tensor([int(it["label"]) for it in items])
    fig, axes = image_grid(len(models), len(items))
    for row, (method, model) in enumerate(models.items()):
        tau = metrics[method]["best_threshold"][iou_threshold]
        for ax, it, cam in zip(axes[row], items, localization_maps(model, x, y)):
            boxes = scoremap_to_boxes(cam, tau, multi_contour=True)
            iou = box_iou_inclusive(boxes, torch.as_tensor(it["boxes"]).numpy()).max()
            show_image(ax, it["image"], boxes=it["boxes"], pred_boxes=boxes, cam=cam, mean=mean, std=std,
                       title=f"{method}: IoU {iou:.2f}")
    map_colorbar(fig, axes)
    return fig


def plot_box_grid(images, gt_boxes, panels: dict[str, dict], rows: Sequence[int],
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                  size: float = 2.4) -> plt.Figure:
    """One row per image: the image with its GT box, then each method's map, its box and its IoU.

    Args:
        images: ``(N, 3, H, W)`` normalised images.
        gt_boxes: ``N`` arrays ``(k, 4)`` of GT boxes (drawn solid).
        panels: ``{label: {"maps": (N, H, W), "boxes": N boxes, "ious": (N,)}}``, one column each
            (:func:`cirlib.analysis.evaluator_boxes` gives boxes and IoUs); boxes drawn dashed.
        rows: the image indices to show, one row each.
        mean, std: the dataset's normalisation, to show the images.
        size: inches per panel.
    """
    fig, axes = image_grid(len(rows), 1 + len(panels), size=size)
    for r, k in enumerate(rows):
        show_image(axes[r, 0], images[k], boxes=gt_boxes[k], title=f"image {k}", mean=mean, std=std)
        for ax, (label, p) in zip(axes[r, 1:], panels.items()):
            show_image(ax, images[k], boxes=gt_boxes[k], pred_boxes=[p["boxes"][k]], cam=p["maps"][k],
                       title=f"{label}\nIoU {p['ious'][k]:.2f}", mean=mean, std=std)
    map_colorbar(fig, axes[:, 1:])
    return fig


def show_erased(ax: plt.Axes, image, erased, title: str | None = None, mean=None, std=None,
                boxes: Iterable[Sequence[float]] = ()) -> plt.Axes:
    """An image with a binary mask's pixels darkened (a mask is not a map: no colormap, no colorbar).

    ``erased`` is ``(H, W)`` in [0, 1]; pixels above 0.5 are drawn at a fifth of their brightness.
    """
    rgb = to_numpy_image(image, mean, std)
    mask = np.asarray(erased.detach().cpu() if isinstance(erased, torch.Tensor) else erased) > 0.5
    ax.imshow(np.where(mask[..., None], 0.2 * rgb, rgb))
    for box in boxes:
        draw_box(ax, box, GT_COLOR, linestyle=GT_STYLE)
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return ax


def _upsample(grid, size: tuple[int, int]) -> np.ndarray:
    """A feature-grid map ``(fh, fw)`` bilinearly upsampled to ``size`` pixels, for an overlay."""
    t = torch.as_tensor(np.asarray(grid, dtype=np.float32))[None, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def plot_query_attention(image, box: Sequence[float], row, received, query_xy: tuple[int, int],
                         mean=None, std=None) -> plt.Figure:
    """SSAM's attention of one query pixel beside the attention every position receives.

    Three panels: the image with its GT box and the query (a cross); where the query looks (its row of
    :math:`S`); the attention received :math:`g` (the gate). Both maps are divided by their maximum and
    share one colorbar. The query is labelled ``(x, y)``: column, then row.

    Args:
        image: ``(3, H, W)`` normalised image (``mean``/``std`` undo the normalisation).
        box: the GT box ``x0, y0, x1, y1``.
        row, received: ``(fh, fw)`` maps, as :func:`cirlib.analysis.query_attention` returns them.
        query_xy: the query pixel ``(x, y)``.
    """
    size = tuple(np.asarray(image).shape[-2:]) if not isinstance(image, torch.Tensor) else tuple(image.shape[-2:])
    row, received = np.asarray(row, dtype=np.float64), np.asarray(received, dtype=np.float64)
    qx, qy = query_xy
    fig, axes = image_grid(1, 3, size=3.6)
    show_image(axes[0, 0], image, boxes=[box], title="image, GT box, query (+)", mean=mean, std=std)
    show_image(axes[0, 1], image, cam=_upsample(row / row.max(), size), mean=mean, std=std,
               title=f"where query (x, y) = ({qx}, {qy}) looks")
    show_image(axes[0, 2], image, cam=_upsample(received / received.max(), size), mean=mean, std=std,
               title="attention received g (the gate)")
    for ax in axes[0, :2]:
        ax.plot([qx], [qy], marker="+", color="white", markersize=16, markeredgewidth=3,
                path_effects=[patheffects.withStroke(linewidth=5, foreground="black")])
    map_colorbar(fig, axes[0, 1:], label="attention / its maximum")
    return fig


def plot_fusion_maps(example: dict, index: int = 0, box: Sequence[float] | None = None,
                     mean=None, std=None) -> plt.Figure:
    """The two views, the mask and the maps a fusion loss compares, for one image of a split.

    ``example`` is :func:`cirlib.analysis.fusion_example`'s result. Top row: :math:`I_1`, :math:`I_2`,
    the share :math:`m` of each feature cell that :math:`I_1` shows, :math:`\\hat A_1`; bottom row:
    :math:`\\hat A_2`, the stitched and max targets, :math:`\\hat A_{full}`. Every map is on [0, 1]
    with one colorbar; the mask in grey.
    """
    fig, axes = image_grid(2, 4, size=3.0)
    boxes = [] if box is None else [box]
    show_image(axes[0, 0], example["i1"][index], boxes=boxes, title="$I_1$", mean=mean, std=std)
    show_image(axes[0, 1], example["i2"][index], boxes=boxes, title="$I_2$", mean=mean, std=std)
    show_map(axes[0, 2], example["m"][index], title="$m$ (share shown in $I_1$)", cmap="gray")
    panels = [(axes[0, 3], "a1", "$\\hat A_1$ on $I_1$"), (axes[1, 0], "a2", "$\\hat A_2$ on $I_2$"),
              (axes[1, 1], "stitched", "stitched target"), (axes[1, 2], "max", "max target"),
              (axes[1, 3], "a_full", "$\\hat A_{full}$ (full image)")]
    for ax, key, title in panels:
        show_map(ax, example[key][index], title=title)
    map_colorbar(fig, axes[:, 3], label="normalised map")
    return fig


def save_figure(fig: plt.Figure, folder: str | os.PathLike | None, name: str) -> Path | None:
    """Save ``fig`` as ``folder/name.png`` (nothing when ``folder`` is empty); returns the path."""
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    os.replace(tmp, path)
    return path


def interact_or_static(function, interactive: bool, static: dict | None = None,
                       controls: dict[str, dict] | None = None) -> str:
    """Draw ``function``'s figure once: under sliders when ``interactive``, else statically.

    ``ipywidgets.interact`` calls the function at once with the sliders' values, so a static call
    before it would draw the same figure twice. Here exactly one of the two happens: with
    ``interactive`` true and ipywidgets installed, the widget (its first drawing uses the values in
    ``static``); otherwise ``function(**static)``.

    Args:
        function: draws one figure and calls ``plt.show()``.
        interactive: the notebook's ``INTERACTIVE`` parameter.
        static: keyword arguments of the static drawing, also the sliders' starting values.
        controls: ``{argument: {"kind": "int" | "float", "description": "readable label", "min": ...,
            "max": ..., "step": ...}}``; labels are shown in full (``description_width="initial"``).

    Returns:
        ``"widget"`` or ``"static"``, what was drawn.
    """
    static = dict(static or {})
    if interactive:
        try:
            import ipywidgets as widgets
        except ImportError:
            print("ipywidgets is not installed: a static figure instead of the sliders.")
        else:
            sliders = {}
            for name, spec in (controls or {}).items():
                spec = dict(spec)
                kind = spec.pop("kind", "int")
                cls = widgets.FloatSlider if kind == "float" else widgets.IntSlider
                spec.setdefault("value", static.get(name, spec.get("min", 0)))
                spec.setdefault("description", name)
                sliders[name] = cls(style={"description_width": "initial"},
                                    layout=widgets.Layout(width="460px"), continuous_update=False, **spec)
            fixed = {k: widgets.fixed(v) for k, v in static.items() if k not in sliders}
            widgets.interact(function, **sliders, **fixed)
            return "widget"
    function(**static)
    return "static"


def plot_caam_pair(image, i1, i2, q12, q21, boxes=(), patch_size: int | None = None, mean=None,
                   std=None) -> plt.Figure:
    r"""One complementary pair and its two CAAM matrices :math:`Q_x`, :math:`Q_{x_2}` (rows sum to 1).

    Args:
        image, i1, i2: the full image and its complementary pair, ``(3, H, W)`` normalised.
        q12, q21: ``(C, C)`` attention of branch 1 on branch 2's channels and the mirror.
        boxes: the image's GT boxes (solid).
        patch_size: the patch side of the split, for the title.
        mean, std: the dataset's normalisation, to show the images.
    """
    fig, axes = image_grid(1, 5, size=3.2)
    axes = axes[0]
    side = f" (patches of {patch_size} px)" if patch_size else ""
    show_image(axes[0], image, boxes=boxes, title="image I, GT box (solid)", mean=mean, std=std)
    show_image(axes[1], i1, title="I1" + side, mean=mean, std=std)
    show_image(axes[2], i2, title="I2: what I1 hides", mean=mean, std=std)
    for ax, q, name in ((axes[3], q12, r"$Q_x$ = softmax($X X_2^T$)"), (axes[4], q21, r"$Q_{x_2}$ = softmax($X_2 X^T$)")):
        im = show_map(ax, q, title=name)
        ax.set_axis_on()
        ax.set_xlabel("channel of the other branch")
        ax.set_ylabel("channel of this branch")
    map_colorbar(fig, list(axes[3:]), label="attention weight", mappable=im)
    return fig


def plot_gamma_sweep(sweep: dict[str, list[float]], learned_gamma: float, n_images: int) -> plt.Figure:
    r"""What CAAM's :math:`\gamma` moves: feature change, map mass in the GT box, top-1 (:func:`cirlib.analysis.caam_gamma_sweep`).

    A dashed vertical line marks the learned :math:`\gamma`.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.0), layout="constrained")
    panels = (("relative_feature_change", r"$\|F^c_x - F_x\| / \|F_x\|$", "feature change of branch 1", None),
              ("mass_in_box", "map mass inside the GT box", "localization proxy", (0, 1)),
              ("top1", "top-1 (%)", f"classification ({n_images} test images)", (0, 100)))
    for ax, (key, ylabel, title, ylim) in zip(axes, panels):
        ax.plot(sweep["gamma"], sweep[key], marker="o")
        ax.axvline(learned_gamma, color="0.3", linestyle="--", label=rf"learned $\gamma$ = {learned_gamma:+.2f}")
        ax.set(xlabel=r"$\gamma$", ylabel=ylabel, title=title)
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper center")
    return fig


def plot_synthetic_parts(dataset, n_rows: int = 3) -> plt.Figure:
    """The anatomy of synthetic objects: per row an image, its head mask, body mask and GT box (solid).

    Args:
        dataset: a :class:`~cirlib.data.SyntheticWSOL` (its ``render(i)`` gives the masks).
        n_rows: images shown, the first ``n_rows``.
    """
    fig, axes = image_grid(n_rows, 4)
    for row, ax in enumerate(axes):
        r = dataset.render(row)
        show_image(ax[0], r["rgb"], title=f"class {r['label']}, group {r['group']}")
        ax[1].imshow(r["head_mask"], cmap="gray")
        ax[1].set_title("head: class colour")
        ax[2].imshow(r["body_mask"], cmap="gray")
        ax[2].set_title("body: group texture")
        show_image(ax[3], r["rgb"], boxes=[r["box"]], title="GT box: head + body")
        for a in ax:
            a.set_axis_off()
    return fig


def plot_head_shortcut(dataset, head_ious: np.ndarray) -> plt.Figure:
    """Left: each class's head colour and body-texture group; right: the IoUs of head-only boxes.

    Args:
        dataset: a :class:`~cirlib.data.SyntheticWSOL`.
        head_ious: IoUs of the head's tight box with the GT box
            (:func:`cirlib.analysis.head_box_ious`).
    """
    from cirlib.data import class_colors

    k = dataset.num_classes
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    axes[0].imshow(class_colors(k)[None], aspect="auto")
    axes[0].set_xticks(range(k), [f"{c}\ng{dataset.class_to_group[c]}" for c in range(k)])
    axes[0].set_yticks([])
    axes[0].set_title("head colour of each class (g = body-texture group)")
    axes[1].hist(head_ious, bins=20, range=(0, 1), color="0.35")
    axes[1].axvline(0.5, color="k", linestyle="--", label="IoU 0.5")
    axes[1].set_xlabel("IoU of the head's box with the GT box")
    axes[1].set_ylabel("images")
    axes[1].legend()
    return fig


def plot_threshold(map_: np.ndarray | torch.Tensor, item: dict, tau: float, mean=None, std=None) -> plt.Figure:
    """One map at one CAM threshold: the map, the pixels the evaluator keeps, and the boxes they give.

    The kept pixels are those of :func:`cirlib.metrics.scoremap_to_boxes`: the map quantised to
    8 bits, :math:`q > \\lfloor \\tau \\max q \\rfloor`. The right panel draws every contour's box
    (dashed), the GT box (solid) and the best IoU.

    Args:
        map_: ``(H, W)`` normalised map of ``item``'s image.
        item: a dataset item (``"image"``, ``"boxes"``).
        tau: the CAM threshold in [0, 1).
        mean, std: the dataset's normalisation.
    """
    from cirlib.metrics import box_iou_inclusive, quantize_scoremap, scoremap_to_boxes

    m = map_.detach().cpu().numpy() if isinstance(map_, torch.Tensor) else np.asarray(map_)
    q = quantize_scoremap(m)
    boxes = scoremap_to_boxes(m, tau, multi_contour=True)
    iou = box_iou_inclusive(boxes, torch.as_tensor(item["boxes"]).numpy()).max()
    fig, axes = image_grid(1, 3, size=3.2)
    show_image(axes[0, 0], item["image"], cam=m, mean=mean, std=std, title="map")
    axes[0, 1].imshow(q > int(tau * q.max()), cmap="gray")
    axes[0, 1].set_title(f"kept: s > {tau:.2f} max")
    axes[0, 1].set_axis_off()
    show_image(axes[0, 2], item["image"], boxes=item["boxes"], pred_boxes=boxes, mean=mean, std=std,
               title=f"best IoU {iou:.2f}")
    map_colorbar(fig, axes[0, 0])
    return fig


def plot_hidden_images(images: torch.Tensor, items: Sequence[dict], sizes: Sequence[int], hide_prob: float,
                       seed: int = 0, mean=None, std=None) -> plt.Figure:
    """Hide-and-Seek training inputs: one row per image, one column per patch side, GT box solid.

    Each column hides the images with :func:`cirlib.methods.hide_patches` at its patch side and
    probability ``hide_prob`` (the same seed per column); the title gives the side and, per image,
    the hidden fraction of the pixels.

    Args:
        images: ``(N, 3, H, W)`` normalised images.
        items: their dataset items (for the GT boxes).
        sizes: patch sides, one column each (0 hides nothing).
        hide_prob: the probability :math:`p` of hiding a patch.
        seed: seed of the masks.
        mean, std: the dataset's normalisation.
    """
    from cirlib.methods import hide_patches

    fig, axes = image_grid(len(items), len(sizes))
    for col, s in enumerate(sizes):
        hidden, mask = hide_patches(images, s, hide_prob, generator=torch.Generator().manual_seed(seed))
        for row, it in enumerate(items):
            share = 1 - mask[row].float().mean().item()
            show_image(axes[row, col], hidden[row], boxes=it["boxes"], mean=mean, std=std,
                       title=f"s = {s}: {share:.0%} hidden")
    return fig
