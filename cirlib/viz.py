"""Plotting helpers shared by the notebooks (matplotlib only, readable at slide size).

Every function draws into matplotlib axes and returns the figure; the notebook decides whether to
``plt.show()`` it or save it with :func:`save_figure`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patches

GT_COLOR = "#00c853"  # green: ground truth
PRED_COLOR = "#ff1744"  # red: predicted box
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
             linewidth: float = 2.0) -> None:
    """Draw an inclusive-corner box ``x0, y0, x1, y1`` (pixel centres) on ``ax``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                                   edgecolor=color, linewidth=linewidth, label=label))


def show_image(ax: plt.Axes, image, boxes: Iterable[Sequence[float]] = (), pred_boxes: Iterable = (),
               cam: np.ndarray | torch.Tensor | None = None, title: str | None = None,
               mean=None, std=None, alpha: float = 0.5) -> plt.Axes:
    """An image with GT boxes (green), predicted boxes (red) and an optional CAM overlay (jet)."""
    ax.imshow(to_numpy_image(image, mean, std))
    if cam is not None:
        cam = cam.detach().float().cpu().numpy() if isinstance(cam, torch.Tensor) else np.asarray(cam)
        ax.imshow(cam, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
    for box in boxes:
        draw_box(ax, box, GT_COLOR)
    for box in pred_boxes:
        draw_box(ax, box, PRED_COLOR)
    if title:
        ax.set_title(title)
    ax.set_axis_off()
    return ax


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


# ----------------------------------------------------------------------------- notebook analysis helpers
# (appended for notebooks 00-03; they compute what the figures show, so the notebooks can print numbers)


@torch.no_grad()
def localization_maps(model: torch.nn.Module, images: torch.Tensor,
                      labels: torch.Tensor | None = None) -> torch.Tensor:
    r"""The evaluator's localization maps: CAM at feature size, upsampled, min-max normalised.

    Exactly what :func:`cirlib.engine.evaluate_model` scores: ``model(x, labels, return_cam=True)``,
    bilinear upsampling to the image size (``align_corners=False``), then
    :math:`(A - \min A) / (\max A - \min A)` per map (:func:`cirlib.metrics.normalize_cam`).

    Args:
        model: a WSOL model (model contract of ``docs/architecture.md``); put in eval mode for the call.
        images: ``(B, 3, H, W)`` normalised images (moved to the model's device).
        labels: ``(B,)`` classes whose map to take (GT-known); ``None`` = the top-1 prediction.

    Returns:
        ``(B, H, W)`` float maps in [0, 1], on the CPU.
    """
    from cirlib.metrics import normalize_cam

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        x = images.to(device)
        y = None if labels is None else torch.as_tensor(labels).to(device)
        _, cams = model(x, y, return_cam=True)
    finally:
        model.train(was_training)
    up = torch.nn.functional.interpolate(cams.float()[:, None], size=tuple(images.shape[-2:]),
                                         mode="bilinear", align_corners=False)[:, 0]
    return normalize_cam(up).cpu()


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


def results_table(methods: Sequence[str], this_run: dict[str, dict], path: str | os.PathLike | None = None) -> str | None:
    """This run's numbers beside the 3-seed table of ``make results``, as text; ``None`` without the file.

    Args:
        methods: methods to show, in order (``"cam"``, ``"has"``, ...).
        this_run: ``{method: test metrics}`` of this notebook's single-seed run.
        path: the results file; default ``cirlib.paths.RESULTS_DIR / "results.json"``.

    Returns:
        A fixed-width table (MaxBoxAcc 30/50/70 and MaxBoxAccV2; "mean ± std (n seeds)" from the file,
        this run's value beside it), or ``None`` when the file does not exist or cannot be read.
    """
    import json

    from cirlib.paths import RESULTS_DIR

    path = Path(path) if path is not None else RESULTS_DIR / "results.json"
    if not path.is_file():
        return None
    try:
        with open(path) as handle:
            summary = json.load(handle).get("summary", {})
    except (OSError, ValueError):
        return None
    keys = (("maxboxacc_30", "30"), ("maxboxacc_50", "50"), ("maxboxacc_70", "70"), ("maxboxacc_v2", None))
    header = f"{'method':<14}" + "".join(f"{label:>26}" for label in ("MaxBoxAcc@30", "MaxBoxAcc@50",
                                                                       "MaxBoxAcc@70", "MaxBoxAccV2"))
    lines = [header, f"{'':<14}" + "".join(f"{'seeds mean±std | this run':>26}" for _ in keys)]
    for method in methods:
        agg = summary.get(method)
        run = this_run.get(method) or {}
        cells = []
        for key, iou in keys:
            mine = run.get("maxboxacc_v2") if iou is None else (run.get("maxboxacc") or {}).get(iou)
            mine_s = "-" if mine is None else f"{mine:.1f}"
            if agg and agg.get("mean", {}).get(key) is not None:
                mean, std = agg["mean"][key], agg["std"].get(key) or 0.0
                cells.append(f"{mean:5.1f}±{std:4.1f} (n={agg.get('n', '?')}) | {mine_s:>5}")
            else:
                cells.append(f"{'-':>15} | {mine_s:>5}")
        lines.append(f"{method:<14}" + "".join(f"{c:>26}" for c in cells))
    return "\n".join(lines)


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
