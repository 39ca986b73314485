"""Batching and one entry point for every dataset: ``collate_wsol``, ``build_dataset``, ``build_loader``."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from cirlib.data.errors import CUB_LAYOUT, METADATA_LAYOUT
from cirlib.data.real import CUBDataset, WSOLMetadataDataset
from cirlib.data.synthetic import SyntheticWSOL
from cirlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms

#: Names accepted by :func:`build_dataset`.
DATASET_NAMES: tuple[str, ...] = ("synthetic", "cub", "ilsvrc")


def collate_wsol(items: Sequence[dict]) -> dict:
    """Batch dataset items (the contract in ``docs/architecture.md``).

    Returns:
        ``{"image": (B, 3, H, W), "label": long (B,), "boxes": list of B float (k_i, 4),
        "mask": bool (B, H, W) when every item has a mask else None, "image_id": list of B str}``.
    """
    if len(items) == 0:
        raise ValueError("collate_wsol: got an empty batch.")
    shapes = {tuple(it["image"].shape) for it in items}
    if len(shapes) != 1:
        raise ValueError(
            f"collate_wsol: images of different shapes {sorted(shapes)} cannot be stacked; "
            "resize them to one size in the dataset transform (e.g. build_transforms(train=False))."
        )
    masks = [it.get("mask") for it in items]
    return {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([int(it["label"]) for it in items], dtype=torch.long),
        "boxes": [it["boxes"] for it in items],
        "mask": torch.stack(masks) if all(m is not None for m in masks) else None,
        "image_id": [it["image_id"] for it in items],
    }


def _unknown_name(name: str) -> ValueError:
    close = difflib.get_close_matches(str(name).lower(), DATASET_NAMES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(DATASET_NAMES)}.{hint}")


def build_dataset(
    name: str,
    split: str = "train",
    root: str | Path | None = None,
    image_size: int | Sequence[int] | None = None,
    **kwargs,
) -> Dataset:
    """Build a dataset by name.

    Args:
        name: ``"synthetic"``, ``"cub"`` or ``"ilsvrc"`` (case-insensitive).
        split: ``"train"``, ``"val"`` or ``"test"``.
        root: dataset folder for ``cub`` / ``ilsvrc``: the official ``CUB_200_2011`` folder (it holds
            ``images.txt``), or a folder with the images and a wsolevaluation ``metadata/`` folder (override
            with ``metadata_root=``). Ignored for ``synthetic``.
        image_size: synthetic: the generated size (default 64); real: the crop / test size (default 224;
            the training resize is ``round(image_size * 256 / 224)``).
        **kwargs: passed to the dataset (e.g. ``size``, ``seed``, ``num_classes`` and generator knobs for
            synthetic; ``transform``, ``metadata_root`` for real data).

    Raises:
        ValueError: unknown ``name`` (lists the valid names, with a close match).
        FileNotFoundError: ``cub`` / ``ilsvrc`` with a missing ``root``.
    """
    key = str(name).strip().lower()
    if key not in DATASET_NAMES:
        raise _unknown_name(name)
    if key == "synthetic":
        return SyntheticWSOL(split=split, image_size=64 if image_size is None else image_size, **kwargs)

    layout = CUB_LAYOUT if key == "cub" else METADATA_LAYOUT
    if root is None or not Path(root).is_dir():
        raise FileNotFoundError(
            f"Dataset {key!r}: data.root={str(root)!r} is not a folder. Set data.root (DATA_ROOT in a notebook) "
            "to the dataset folder (see README, 'Paper scale'). Expected layout:\n"
            f"{layout}" + ("" if key == "ilsvrc" else f"\nor the wsolevaluation layout:\n{METADATA_LAYOUT}")
        )
    root = Path(root)
    if "transform" not in kwargs:
        size = 224 if image_size is None else image_size
        side = size if isinstance(size, int) else min(size)
        resize = round(side * 256 / 224) if isinstance(size, int) else tuple(round(s * 256 / 224) for s in size)
        kwargs["transform"] = build_transforms(
            split == "train", resize=resize, crop=size, test_size=size,
            mean=kwargs.get("mean", IMAGENET_MEAN), std=kwargs.get("std", IMAGENET_STD),
        )
    metadata_root = kwargs.pop("metadata_root", None)
    if key == "cub" and metadata_root is None and (root / "images.txt").is_file():
        return CUBDataset(root, split=split, **kwargs)
    if metadata_root is not None and not Path(metadata_root).is_dir():
        raise FileNotFoundError(
            f"Dataset {key!r}: data.options.metadata_root={str(metadata_root)!r} is not a folder. Point it at "
            "wsolevaluation's metadata/ folder (the one holding CUB/ or ILSVRC/). Expected layout:\n"
            f"{METADATA_LAYOUT}"
        )
    if metadata_root is None:
        tried = [root / "metadata", root.parent / "metadata"]
        metadata_root = next((m for m in tried if m.is_dir()), None)
        if metadata_root is None:
            official = " neither images.txt (the official CUB layout) nor" if key == "cub" else ""
            raise FileNotFoundError(
                f"Dataset {key!r}: data.root={str(root)!r} has{official} a metadata folder (tried "
                f"{', '.join(str(m) for m in tried)}). Set data.root to the dataset folder, or "
                "data.options.metadata_root to wsolevaluation's metadata/ folder. Expected layout:\n"
                f"{layout}"
            )
    return WSOLMetadataDataset(root, metadata_root, dataset="CUB" if key == "cub" else "ILSVRC", split=split, **kwargs)


def first_per_class(dataset: Dataset, per_class: int) -> Subset:
    """The first ``per_class`` items of each class of ``dataset``, in the dataset's order (deterministic).

    The selection reads only the labels (``dataset.labels``, or each item's ``"label"`` for datasets
    without them), so it does not depend on the seed: every run of a few-shot experiment trains on
    the same images. The subset keeps the dataset's order.

    Args:
        dataset: a cirlib dataset (or a ``Subset`` of one).
        per_class: items to keep per class (``data.train_per_class``).

    Raises:
        ValueError: ``per_class < 1``, or a class has fewer than ``per_class`` items (the message
            names the classes and their counts).
    """
    if int(per_class) != per_class or per_class < 1:
        raise ValueError(f"data.train_per_class={per_class!r} must be a positive integer or null.")
    labels = _labels(dataset)
    num_classes = int(getattr(base_dataset(dataset), "num_classes", max(labels, default=-1) + 1))
    chosen: list[int] = []
    counts = [0] * num_classes
    for index, label in enumerate(labels):
        if counts[label] < per_class:
            counts[label] += 1
            chosen.append(index)
    short = {k: n for k, n in enumerate(counts) if n < per_class}
    if short:
        listed = ", ".join(f"class {k}: {n}" for k, n in list(short.items())[:10])
        raise ValueError(
            f"data.train_per_class={per_class}: {len(short)} of the {num_classes} classes have fewer training "
            f"items ({listed}{', ...' if len(short) > 10 else ''}). Lower data.train_per_class or use a larger split."
        )
    return Subset(dataset, chosen)


def base_dataset(dataset: Dataset) -> Dataset:
    """The dataset under any ``Subset`` wrappers."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _labels(dataset: Dataset) -> list[int]:
    """Class index of every item of ``dataset``, without loading images where the dataset knows them."""
    if isinstance(dataset, Subset):
        parent = _labels(dataset.dataset)
        return [parent[i] for i in dataset.indices]
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return [int(v) for v in labels]
    return [int(dataset[i]["label"]) for i in range(len(dataset))]


def _seed_worker(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a worker from torch's per-worker seed (itself from the loader's generator)."""
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    pin_memory: bool = False,
    seed: int = 0,
    sampler: Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader with :func:`collate_wsol` and a seeded generator (same seed, same order and augmentations).

    Args:
        dataset: any cirlib dataset.
        batch_size: items per batch.
        shuffle: shuffle every epoch (ignored when ``sampler`` is given, e.g. a ``DistributedSampler``).
        num_workers: loader processes (0 = in the main process).
        pin_memory: pin batches for faster host-to-GPU copies.
        seed: seeds the shuffling generator and, through it, every worker.
        sampler: optional sampler; then ``shuffle`` must be handled by the sampler.
        drop_last: drop the last incomplete batch.
    """
    if batch_size < 1:
        raise ValueError(f"build_loader: batch_size={batch_size} must be >= 1.")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=bool(shuffle) if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=collate_wsol,
        generator=generator,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
    )
