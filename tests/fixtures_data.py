"""Tiny on-disk datasets in the CUB-200-2011 and wsolevaluation layouts, for any test that needs real files.

``make_cub_fixture(root)`` and ``make_wsol_metadata_fixture(root, dataset)`` write a handful of small JPEGs
of odd sizes and the metadata around them, and return a description of what they wrote so tests can
compare the loaders' output against it. Each image is a plain grey background with a bright rectangle
exactly at its (first) ground-truth box, so box geometry can also be checked on the pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: (class folder, file stem, (W, H), box as x, y, w, h, is_train)
_CUB_IMAGES = [
    ("001.Black_footed_Albatross", "Black_Footed_Albatross_0001", (61, 47), (10, 5, 30, 20), 1),
    ("001.Black_footed_Albatross", "Black_Footed_Albatross_0002", (40, 53), (0, 0, 40, 53), 0),
    ("002.Laysan_Albatross", "Laysan_Albatross_0001", (77, 39), (20, 8, 41, 25), 1),
    ("002.Laysan_Albatross", "Laysan_Albatross_0002", (45, 45), (3, 4, 12, 30), 0),
    ("003.Sooty_Albatross", "Sooty_Albatross_0001", (52, 67), (5, 30, 40, 30), 1),
    ("003.Sooty_Albatross", "Sooty_Albatross_0002", (33, 29), (1, 2, 20, 20), 0),
]


def _write_jpeg(path: Path, size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> None:
    """Grey image of ``size`` (W, H) with white inclusive boxes ``x0, y0, x1, y1`` painted in."""
    w, h = size
    pixels = np.full((h, w, 3), 60, dtype=np.uint8)
    for x0, y0, x1, y1 in boxes:
        pixels[max(0, y0) : min(h, y1 + 1), max(0, x0) : min(w, x1 + 1)] = 230
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def make_cub_fixture(root: str | Path) -> dict:
    """Write a 6-image, 3-class CUB-200-2011 archive layout under ``root`` (``root`` is the CUB folder).

    Returns:
        ``{"root": Path, "train": [...], "test": [...]}``, each list holding dicts with ``image_id``
        (path relative to ``images/``), ``label`` (0-based), ``size`` (W, H) and ``box`` (inclusive,
        ``x, y, x + w, y + h`` as wsolevaluation reads it), in file order.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    classes = sorted({c for c, *_ in _CUB_IMAGES})
    lines = {name: [] for name in ("images", "image_class_labels", "train_test_split", "bounding_boxes")}
    out: dict = {"root": root, "train": [], "test": []}
    for number, (folder, stem, size, (x, y, w, h), is_train) in enumerate(_CUB_IMAGES, start=1):
        rel = f"{folder}/{stem}.jpg"
        label = classes.index(folder)
        box = (x, y, x + w, y + h)
        _write_jpeg(root / "images" / rel, size, [(x, y, min(x + w, size[0] - 1), min(y + h, size[1] - 1))])
        lines["images"].append(f"{number} {rel}")
        lines["image_class_labels"].append(f"{number} {label + 1}")
        lines["train_test_split"].append(f"{number} {is_train}")
        lines["bounding_boxes"].append(f"{number} {float(x)} {float(y)} {float(w)} {float(h)}")
        out["train" if is_train else "test"].append({"image_id": rel, "label": label, "size": size, "box": box})
    for name, content in lines.items():
        (root / f"{name}.txt").write_text("\n".join(content) + "\n")
    (root / "classes.txt").write_text("\n".join(f"{k + 1} {c}" for k, c in enumerate(classes)) + "\n")
    return out


def make_wsol_metadata_fixture(root: str | Path, dataset: str = "CUB") -> dict:
    """Write images plus ``metadata/<DATASET>/{train,val,test}/*.txt`` (wsolevaluation layout) under ``root``.

    ``train`` has no ``localization.txt`` (as in wsolevaluation); ``val`` and ``test`` have several boxes
    for some images. Images live at ``root/<image_id>``.

    Args:
        root: folder to write into (``data_root``; metadata goes to ``root/metadata``).
        dataset: ``"CUB"`` or ``"ILSVRC"`` (only the folder names and image ids differ).

    Returns:
        ``{"data_root": Path, "metadata_root": Path, "train"|"val"|"test": [{"image_id", "label",
        "size", "boxes"}...]}`` with inclusive boxes in file order.
    """
    root = Path(root)
    dataset = dataset.upper()
    spec = {
        "train": [((50, 37), 0, []), ((41, 63), 1, []), ((70, 45), 2, [])],
        "val": [((57, 43), 1, [(2, 3, 20, 30)]), ((39, 51), 0, [(0, 0, 38, 50), (5, 5, 10, 12)])],
        "test": [
            ((64, 48), 2, [(10, 12, 30, 40), (40, 2, 60, 20)]),
            ((35, 59), 0, [(4, 9, 30, 50)]),
            ((81, 33), 1, [(0, 3, 15, 30), (20, 3, 40, 20), (60, 10, 80, 32)]),
        ],
    }
    out: dict = {"data_root": root, "metadata_root": root / "metadata"}
    for split, items in spec.items():
        meta = root / "metadata" / dataset / split
        meta.mkdir(parents=True, exist_ok=True)
        ids, labels, sizes, locs, described = [], [], [], [], []
        for k, (size, label, boxes) in enumerate(items):
            if dataset == "CUB":
                image_id = f"{label + 1:03d}.Bird_{label}/{split}_{k:02d}.jpg"
            else:
                image_id = f"{split}/n0000000{label}/n0000000{label}_{k:02d}.JPEG"
            _write_jpeg(root / image_id, size, boxes)
            ids.append(image_id)
            labels.append(f"{image_id},{label}")
            sizes.append(f"{image_id},{size[0]},{size[1]}")
            locs += [f"{image_id},{x0},{y0},{x1},{y1}" for x0, y0, x1, y1 in boxes]
            described.append({"image_id": image_id, "label": label, "size": size, "boxes": boxes})
        (meta / "image_ids.txt").write_text("\n".join(ids) + "\n")
        (meta / "class_labels.txt").write_text("\n".join(labels) + "\n")
        (meta / "image_sizes.txt").write_text("\n".join(sizes) + "\n")
        if locs:
            (meta / "localization.txt").write_text("\n".join(locs) + "\n")
        out[split] = described
    return out
