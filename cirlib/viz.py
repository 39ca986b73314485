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
    """A figure with an ``n_rows x n_cols`` array of axes (always 2-D)."""
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows), squeeze=False)
    return fig, axes


def plot_boxacc_curves(curves: dict[str, np.ndarray], cam_thresholds: np.ndarray,
                       iou_threshold: int = 50, ax: plt.Axes | None = None) -> plt.Figure:
    """BoxAcc against the CAM threshold, one line per method (``curves[name]`` a 1-D array in %)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
    else:
        fig = ax.figure
    for name, curve in curves.items():
        ax.plot(cam_thresholds, curve, label=name, linewidth=2)
    ax.set_xlabel("CAM threshold")
    ax.set_ylabel(f"BoxAcc @ IoU {iou_threshold} (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_maxboxacc_vs_iou(values: dict[str, dict[str, float]], ax: plt.Axes | None = None) -> plt.Figure:
    """MaxBoxAcc against the IoU threshold, one line per method (``values[name][iou] = %``)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
    else:
        fig = ax.figure
    for name, by_iou in values.items():
        ious = sorted(by_iou, key=float)
        ax.plot([float(i) for i in ious], [by_iou[i] for i in ious], marker="o", label=name, linewidth=2)
    ax.set_xlabel("IoU threshold (%)")
    ax.set_ylabel("MaxBoxAcc (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
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
