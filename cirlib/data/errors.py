"""Errors the dataset loaders raise, each naming the file, the line and what to do about it."""

from __future__ import annotations

from pathlib import Path

CUB_LAYOUT = """\
  <root>/images.txt              '<image_id> <relative path>'
  <root>/image_class_labels.txt  '<image_id> <class id, 1-based>'
  <root>/train_test_split.txt    '<image_id> <1 = train, 0 = test>'
  <root>/bounding_boxes.txt      '<image_id> <x> <y> <width> <height>'
  <root>/classes.txt             '<class id> <class name>'
  <root>/images/<relative path>
Download CUB_200_2011.tgz from the Caltech Vision Lab page
(https://www.vision.caltech.edu/datasets/cub_200_2011/) and pass the extracted CUB_200_2011/ folder."""

METADATA_LAYOUT = """\
  <metadata_root>/<DATASET>/<split>/image_ids.txt     '<image_id>' (a path relative to data_root)
  <metadata_root>/<DATASET>/<split>/class_labels.txt  '<image_id>,<class index>'
  <metadata_root>/<DATASET>/<split>/image_sizes.txt   '<image_id>,<width>,<height>'
  <metadata_root>/<DATASET>/<split>/localization.txt  '<image_id>,<x0>,<y0>,<x1>,<y1>' (one line per box;
                                                       optional for the train split)
  <data_root>/<image_id>  (or <data_root>/<DATASET>/<image_id>)
Get the metadata from https://github.com/clovaai/wsolevaluation (folder metadata/) and the images
as its README describes (CUB-200-2011, ILSVRC 2012)."""


class DatasetFormatError(ValueError):
    """A metadata file is missing a field, has a bad value, or disagrees with another file.

    Attributes:
        path: the offending file.
        line: 1-based line number (``None`` when the problem is not tied to one line).
    """

    def __init__(self, path: str | Path, line: int | None, message: str, text: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}" + (f", line {line}" if line is not None else "")
        detail = f"{where}: {message}"
        if text is not None:
            detail += f" (offending text: {text!r})"
        super().__init__(detail)


class ImageDecodeError(OSError):
    """An image file exists in the metadata but cannot be opened or decoded."""


class BoxOutsideImageError(DatasetFormatError):
    """A ground-truth box does not fit inside its image."""


class SplitNotAvailableError(ValueError):
    """The dataset's layout has no such split (the official CUB-200-2011 archive has no ``val``)."""
