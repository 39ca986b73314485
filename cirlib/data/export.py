r"""Write the synthetic dataset to disk in the layouts of the real datasets (``cirlib data export``).

The paper-scale path (the CUB / wsolevaluation loaders, the 256-resize / 224-crop transforms, the
large backbones, ``torchrun``) reads JPEG files and metadata text files. No real dataset can be
downloaded where the project is built and tested, so this module renders the built-in synthetic
dataset (:class:`~cirlib.data.synthetic.SyntheticWSOL`) at any size and writes it exactly as the
real archives are laid out. Then every config in ``configs/cub/`` and ``configs/ilsvrc/`` trains and
evaluates from that folder through the same code a real CUB-200-2011 run uses::

    cirlib data export --layout cub --size 224 --train 200 --test 100 data/synthetic_cub
    cirlib data export --layout wsolevaluation --dataset CUB --size 224 --train 200 --val 50 --test 100 data/syn_wsol
    cirlib data export --layout wsolevaluation --dataset ILSVRC --size 224 --train 200 --val 50 --test 100 data/syn_ilsvrc

Layouts (``OUT`` is the folder given on the command line):

* ``cub``: the official CUB-200-2011 archive, ``OUT/{images.txt, image_class_labels.txt,
  train_test_split.txt, bounding_boxes.txt, classes.txt, images/}`` with 1-based image and class ids,
  boxes as ``x y w h`` and, as in the separate CUB segmentation archive, one greyscale PNG per image
  in ``OUT/segmentations/`` (255 on the object, 0 elsewhere). The archive has no validation split:
  ``--val`` is an error with this layout.
* ``wsolevaluation``: the metadata of github.com/clovaai/wsolevaluation,
  ``OUT/metadata/<DATASET>/{train,val,test}/{image_ids,class_labels,image_sizes,localization}.txt``
  (``localization.txt``: ``x0,y0,x1,y1`` inclusive) and the images in ``OUT/<DATASET>/``, named like
  the real ones (``001.class_00/class_00_0001.jpg`` for CUB, ``train/n00000000/n00000000_1.JPEG`` and
  ``val/ILSVRC2012_val_00000001.JPEG`` for ILSVRC). wsolevaluation stores CUB/ILSVRC masks nowhere,
  so none are written.

Boxes. The synthetic box is the tight inclusive box ``[x0, y0, x1, y1]`` of the object's mask.
CUB's ``x y w h`` is read by :class:`~cirlib.data.real.CUBDataset` (like wsolevaluation) as
:math:`x_1 = x + w`, so we write :math:`w = x_1 - x_0` and the loader returns the generator's box
exactly; ``localization.txt`` holds the inclusive corners as they are. Pixels go through JPEG
(quality ``--quality``, 95 by default), so they differ slightly from the rendered ones; the boxes
and masks do not.

Every file is written atomically (a temporary name, then a rename), and the metadata files last,
so an interrupted export never leaves a folder that looks complete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cirlib.data.synthetic import SyntheticWSOL
from cirlib.utils.io import atomic_write_text

__all__ = ["EXPORT_LAYOUTS", "ExportSummary", "export_dataset", "parse_size", "register"]

#: Layouts :func:`export_dataset` writes.
EXPORT_LAYOUTS: tuple[str, ...] = ("cub", "wsolevaluation")
#: Datasets the ``wsolevaluation`` layout can imitate (the folder names under ``metadata/``).
WSOL_DATASETS: tuple[str, ...] = ("CUB", "ILSVRC")


@dataclass
class ExportSummary:
    """What :func:`export_dataset` wrote.

    Attributes:
        root: the dataset folder (``data.root`` of a config).
        layout: ``"cub"`` or ``"wsolevaluation"``.
        dataset: ``"CUB"`` or ``"ILSVRC"``.
        counts: images per split.
        image_size: ``(W, H)`` of every image.
        num_classes: number of classes.
        seconds: wall time of the export.
    """

    root: Path
    layout: str
    dataset: str
    counts: dict[str, int]
    image_size: tuple[int, int]
    num_classes: int
    seconds: float

    def to_dict(self) -> dict:
        return {
            "root": str(self.root), "layout": self.layout, "dataset": self.dataset, "counts": self.counts,
            "image_size": list(self.image_size), "num_classes": self.num_classes, "seconds": round(self.seconds, 2),
        }


def parse_size(text: str | int | Sequence[int]) -> tuple[int, int]:
    """``224`` -> ``(224, 224)``; ``"300x224"`` -> ``(300, 224)`` as ``(W, H)``, like image sizes are written.

    Raises:
        ValueError: anything else, or a side below 16 px (the generator's minimum).
    """
    if isinstance(text, int):
        pair = (text, text)
    elif isinstance(text, str):
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
        if not match:
            raise ValueError(f"--size {text!r}: give one side (224) or WIDTHxHEIGHT (300x224).")
        w = int(match.group(1))
        pair = (w, int(match.group(2)) if match.group(2) else w)
    else:
        pair = tuple(int(v) for v in text)  # type: ignore[assignment]
    if len(pair) != 2 or min(pair) < 16:
        raise ValueError(f"--size {text!r}: both sides must be >= 16 px.")
    return pair  # type: ignore[return-value]


def _atomic_save_image(image: Image.Image, path: Path, **save_kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        image.save(tmp, format=save_kw.pop("format"), **save_kw)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _class_folder(label: int) -> str:
    return f"{label + 1:03d}.class_{label:02d}"


def _wnid(label: int) -> str:
    return f"n{label:08d}"


def _image_id(layout: str, dataset: str, split: str, label: int, index: int, per_class: int) -> str:
    """The image's path relative to the image root, named like the real dataset's files."""
    if layout == "cub" or dataset == "CUB":
        # Numbered per class as in CUB (``Black_Footed_Albatross_0001.jpg``); the split code keeps
        # the train and test files of a class apart.
        return f"{_class_folder(label)}/class_{label:02d}_{split}_{per_class:04d}.jpg"
    if split == "train":
        return f"train/{_wnid(label)}/{_wnid(label)}_{index + 1}.JPEG"
    return f"val/ILSVRC2012_{split}_{index + 1:08d}.JPEG"


def export_dataset(
    out: str | os.PathLike,
    layout: str = "cub",
    *,
    dataset: str = "CUB",
    image_size: int | str | Sequence[int] = 224,
    train: int = 100,
    val: int = 0,
    test: int = 50,
    num_classes: int = 10,
    seed: int = 0,
    quality: int = 95,
    overwrite: bool = False,
    progress: bool = True,
    **knobs,
) -> ExportSummary:
    """Render the synthetic dataset and write it in a real dataset's on-disk layout.

    Args:
        out: the dataset folder to create (becomes ``data.root``).
        layout: ``"cub"`` (official CUB-200-2011 archive) or ``"wsolevaluation"`` (its metadata).
        dataset: ``"CUB"`` or ``"ILSVRC"``: which dataset the ``wsolevaluation`` layout imitates
            (``cub`` implies ``"CUB"``).
        image_size: one side or ``(W, H)`` / ``"WxH"``.
        train: number of training images.
        val: number of validation images (``wsolevaluation`` only; CUB's archive has no val split).
        test: number of test images.
        num_classes: synthetic classes (2 to 60).
        seed: generator seed (the same seed writes the same images).
        quality: JPEG quality.
        overwrite: allow writing into a folder that already holds files.
        progress: a tqdm bar while rendering.
        **knobs: :class:`~cirlib.data.synthetic.SyntheticSpec` fields.

    Returns:
        An :class:`ExportSummary`.

    Raises:
        ValueError: an unknown layout or dataset, negative counts, ``val`` with the ``cub`` layout,
            or a non-empty ``out`` without ``overwrite``.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    if layout not in EXPORT_LAYOUTS:
        raise ValueError(f"export: unknown layout {layout!r}; valid: {', '.join(EXPORT_LAYOUTS)}.")
    dataset = str(dataset).upper()
    if dataset not in WSOL_DATASETS:
        raise ValueError(f"export: unknown dataset {dataset!r}; valid: {', '.join(WSOL_DATASETS)}.")
    if layout == "cub":
        if dataset != "CUB":
            raise ValueError("export: --layout cub writes CUB-200-2011; for ILSVRC use --layout wsolevaluation --dataset ILSVRC.")
        if val:
            raise ValueError(
                "export: --val with --layout cub: the official CUB-200-2011 archive has only train and test "
                "(train_test_split.txt). Drop --val, or use --layout wsolevaluation for a val split."
            )
    counts = {"train": int(train), "val": int(val), "test": int(test)}
    for split, n in counts.items():
        if n < 0:
            raise ValueError(f"export: --{split} {n} must be >= 0.")
    if counts["train"] + counts["test"] == 0:
        raise ValueError("export: nothing to write; give --train and/or --test a positive count.")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"export: --quality {quality} must lie in 1..100.")
    width, height = parse_size(image_size)
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"export: {root} exists and is not a folder.")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise ValueError(f"export: {root} is not empty; pass --overwrite (or overwrite=True) or choose another folder.")
    root.mkdir(parents=True, exist_ok=True)

    image_root = root / "images" if layout == "cub" else root / dataset
    splits = [s for s in ("train", "val", "test") if counts[s] > 0]
    total = sum(counts[s] for s in splits)
    bar = tqdm(total=total, desc=f"export {layout}", disable=not progress or bool(os.environ.get("TQDM_DISABLE")))
    rows: dict[str, list[dict]] = {}
    for split in splits:
        source = SyntheticWSOL(
            split=split, size=counts[split], image_size=(height, width), num_classes=num_classes, seed=seed,
            cache=False, **knobs,
        )
        per_class: dict[int, int] = {}
        rows[split] = []
        for index in range(len(source)):
            item = source.render(index)
            label = int(item["label"])
            per_class[label] = per_class.get(label, 0) + 1
            image_id = _image_id(layout, dataset, split, label, index, per_class[label])
            suffix = Path(image_id).suffix
            _atomic_save_image(Image.fromarray(np.ascontiguousarray(item["rgb"])), image_root / image_id,
                               format="JPEG", quality=int(quality))
            if layout == "cub":
                png = (root / "segmentations" / image_id).with_suffix(".png")
                _atomic_save_image(Image.fromarray(item["mask"].astype(np.uint8) * 255), png, format="PNG")
            x0, y0, x1, y1 = (int(v) for v in item["box"])
            rows[split].append({"image_id": image_id, "label": label, "box": (x0, y0, x1, y1), "suffix": suffix})
            bar.update(1)
    bar.close()

    if layout == "cub":
        _write_cub_metadata(root, rows, num_classes)
    else:
        _write_wsol_metadata(root, dataset, rows, (width, height))
    summary = ExportSummary(
        root=root, layout=layout, dataset=dataset, counts={s: counts[s] for s in splits},
        image_size=(width, height), num_classes=int(num_classes), seconds=time.perf_counter() - start,
    )
    atomic_write_text(root / "cirlib_export.json", json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _lines(values: list[str]) -> str:
    return "".join(f"{v}\n" for v in values)


def _write_cub_metadata(root: Path, rows: dict[str, list[dict]], num_classes: int) -> None:
    images, labels, split_flags, boxes = [], [], [], []
    number = 0
    for split in ("train", "test"):
        for row in rows.get(split, []):
            number += 1
            x0, y0, x1, y1 = row["box"]
            images.append(f"{number} {row['image_id']}")
            labels.append(f"{number} {row['label'] + 1}")
            split_flags.append(f"{number} {1 if split == 'train' else 0}")
            # CUBDataset reads x1 = x + w (as wsolevaluation does), so w = x1 - x0 gives the box back.
            boxes.append(f"{number} {float(x0)} {float(y0)} {float(x1 - x0)} {float(y1 - y0)}")
    atomic_write_text(root / "classes.txt", _lines([f"{k + 1} {_class_folder(k)}" for k in range(num_classes)]))
    atomic_write_text(root / "image_class_labels.txt", _lines(labels))
    atomic_write_text(root / "train_test_split.txt", _lines(split_flags))
    atomic_write_text(root / "bounding_boxes.txt", _lines(boxes))
    atomic_write_text(root / "images.txt", _lines(images))  # last: the loader looks for it first


def _write_wsol_metadata(root: Path, dataset: str, rows: dict[str, list[dict]], size: tuple[int, int]) -> None:
    width, height = size
    for split, items in rows.items():
        meta = root / "metadata" / dataset / split
        meta.mkdir(parents=True, exist_ok=True)
        atomic_write_text(meta / "class_labels.txt", _lines([f"{r['image_id']},{r['label']}" for r in items]))
        atomic_write_text(meta / "image_sizes.txt", _lines([f"{r['image_id']},{width},{height}" for r in items]))
        atomic_write_text(
            meta / "localization.txt",
            _lines([f"{r['image_id']},{','.join(str(v) for v in r['box'])}" for r in items]),
        )
        atomic_write_text(meta / "image_ids.txt", _lines([r["image_id"] for r in items]))


# ----------------------------------------------------------------------------- command line


def _cmd_export(args: argparse.Namespace) -> int:
    summary = export_dataset(
        args.out, args.layout, dataset=args.dataset, image_size=args.size, train=args.train, val=args.val,
        test=args.test, num_classes=args.num_classes, seed=args.seed, quality=args.quality,
        overwrite=args.overwrite, progress=not args.no_progress,
    )
    counts = ", ".join(f"{n} {s}" for s, n in summary.counts.items())
    w, h = summary.image_size
    print(
        f"wrote {counts} images ({w}x{h}, {summary.num_classes} classes) in the {summary.layout} layout "
        f"({summary.dataset}) to {summary.root} in {summary.seconds:.1f} s; use it with "
        f"--set data.root={summary.root}",
        file=sys.stderr,
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``cirlib data export`` to the ``cirlib`` parser (a :data:`cirlib.cli.SUBCOMMANDS` registrar)."""
    data = sub.add_parser("data", help="dataset tools: export the synthetic data in the CUB / wsolevaluation layouts, check images",
                          description="Dataset tools.")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data_sub.required = True
    p = data_sub.add_parser(
        "export",
        help="write the synthetic dataset as JPEGs + CUB-200-2011 or wsolevaluation metadata",
        description=__doc__.split("\n\n")[0] + " See cirlib/data/export.py for the layouts.",
    )
    p.add_argument("out", metavar="OUT", help="dataset folder to create (use it as data.root)")
    p.add_argument("--layout", choices=EXPORT_LAYOUTS, default="cub",
                   help="cub: official CUB-200-2011 archive; wsolevaluation: metadata/<DATASET>/<split>/ (default cub)")
    p.add_argument("--dataset", choices=WSOL_DATASETS, default="CUB", type=str.upper,
                   help="dataset the wsolevaluation layout imitates (default CUB)")
    p.add_argument("--size", default="224", help="image side, or WIDTHxHEIGHT (default 224)")
    p.add_argument("--train", type=int, default=100, help="training images (default 100)")
    p.add_argument("--val", type=int, default=0, help="validation images, wsolevaluation layout only (default 0)")
    p.add_argument("--test", type=int, default=50, help="test images (default 50)")
    p.add_argument("--num-classes", type=int, default=10, help="synthetic classes, 2..60 (default 10)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_export)
    from cirlib.data.check import register_check

    register_check(data_sub)
