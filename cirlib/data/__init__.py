"""Datasets: the built-in synthetic WSOL dataset and the CUB-200-2011 / wsolevaluation loaders.

Every dataset returns the item contract of ``docs/architecture.md``; :func:`build_dataset` builds any of
them by name and :func:`build_loader` batches them with :func:`collate_wsol`.
"""

from cirlib.data.builders import DATASET_NAMES, build_dataset, build_loader, collate_wsol
from cirlib.data.errors import BoxOutsideImageError, DatasetFormatError, ImageDecodeError, SplitNotAvailableError
from cirlib.data.real import CUBDataset, WSOLMetadataDataset
from cirlib.data.synthetic import DEFAULT_SPLIT_SIZES, SyntheticSpec, SyntheticWSOL, class_colors
from cirlib.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    apply_transform,
    build_transforms,
    inclusive_to_xyxy,
    to_normalized_float,
    xyxy_to_inclusive,
)

__all__ = [
    "SplitNotAvailableError",
    "BoxOutsideImageError",
    "CUBDataset",
    "DATASET_NAMES",
    "DEFAULT_SPLIT_SIZES",
    "DatasetFormatError",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageDecodeError",
    "SyntheticSpec",
    "SyntheticWSOL",
    "WSOLMetadataDataset",
    "apply_transform",
    "build_dataset",
    "build_loader",
    "build_transforms",
    "class_colors",
    "collate_wsol",
    "inclusive_to_xyxy",
    "to_normalized_float",
    "xyxy_to_inclusive",
]
