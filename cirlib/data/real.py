"""Real WSOL datasets: CUB-200-2011 (official archive layout) and the wsolevaluation metadata layout.

Both return the cirlib item contract (``docs/architecture.md``): ``image`` float (3, H, W) normalised,
``label`` int, ``boxes`` float (k, 4) inclusive corners in pixels of ``image``, ``mask`` ``None``,
``image_id`` the path relative to the image root. On the training split boxes travel through the
transform as ``tv_tensors.BoundingBoxes`` (the float geometry, see :mod:`cirlib.data.transforms`); on
``val`` and ``test`` they are the reference protocol's ``resize_bbox`` of the original boxes
(:func:`cirlib.data.transforms.reference_eval_boxes`), so MaxBoxAcc is the reference's to the digit.

Box conventions of the sources:

* CUB ``bounding_boxes.txt`` holds ``x y w h`` (floats); like wsolevaluation we read
  :math:`x_0 = x,\\ y_0 = y,\\ x_1 = x + w,\\ y_1 = y + h` as inclusive corners.
* wsolevaluation ``localization.txt`` holds ``x0,y0,x1,y1`` inclusive.

A box may end one pixel past the image (``x + w == W`` happens in CUB); it is clipped to ``W - 1``.
Anything further out is an error naming the file, the line, the box and the image size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from cirlib.data.errors import (
    CUB_LAYOUT,
    METADATA_LAYOUT,
    BoxOutsideImageError,
    DatasetFormatError,
    ImageDecodeError,
    SplitNotAvailableError,
)
from cirlib.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WSOLTransform,
    apply_transform,
    build_transforms,
    reference_eval_boxes,
)

KNOWN_NUM_CLASSES: dict[str, int] = {"CUB": 200, "ILSVRC": 1000}


@dataclass
class _Record:
    image_id: str
    label: int
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    #: (file, line) of every box, for error messages
    box_sources: list[tuple[Path, int]] = field(default_factory=list)
    size: tuple[int, int] | None = None  # (W, H) from the metadata when known
    size_source: tuple[Path, int] | None = None


def _read_lines(path: Path, layout: str) -> list[tuple[int, str]]:
    """Non-blank lines of ``path`` with 1-based line numbers; a missing file names the layout."""
    if not path.is_file():
        raise FileNotFoundError(f"Missing metadata file {path}. Expected layout:\n{layout}")
    out = []
    with open(path, encoding="utf-8-sig") as handle:  # "-sig": a UTF-8 byte-order mark is not part of line 1
        for number, raw in enumerate(handle, start=1):
            text = raw.rstrip("\r\n")
            if text.strip():
                out.append((number, text))
    return out


def _fields(path: Path, number: int, text: str, sep: str | None, count: int, what: str) -> list[str]:
    parts = text.split(sep) if sep else text.split()
    if sep:
        parts = [p.strip() for p in parts]
    if len(parts) != count:
        raise DatasetFormatError(path, number, f"expected {count} fields ({what}), found {len(parts)}", text)
    return parts


def _number(path: Path, number: int, text: str, value: str, kind: type, what: str):
    try:
        if kind is int:
            as_float = float(value)
            if not as_float.is_integer():
                raise ValueError(value)
            return int(as_float)
        result = kind(value)
        if isinstance(result, float) and not np.isfinite(result):
            raise ValueError(value)
        return result
    except ValueError:
        raise DatasetFormatError(path, number, f"{what} {value!r} is not a valid {kind.__name__}", text) from None


def case_mismatch(path: Path) -> Path | None:
    """A file beside ``path`` whose name differs from it only in letter case (``x.JPG`` for ``x.jpg``).

    File names are case-sensitive on Linux, and archives copied from other systems often change
    an extension's case; the error then names the file that is there.
    """
    folder = path.parent
    if not folder.is_dir():
        return None
    wanted = path.name.lower()
    try:
        return next((entry for entry in folder.iterdir() if entry.name.lower() == wanted), None)
    except OSError:
        return None


def _missing_image(path: Path) -> FileNotFoundError:
    other = case_mismatch(path)
    if other is not None:
        return FileNotFoundError(
            f"Image file {path} is listed in the metadata but does not exist; {other.name} is there, which "
            "differs only in letter case (file names are case-sensitive): rename the files or fix the metadata."
        )
    return FileNotFoundError(f"Image file {path} is listed in the metadata but does not exist.")


def _image_size(path: Path) -> tuple[int, int]:
    """``(W, H)`` from the image header, without decoding the pixels (fast), or a one-line error."""
    if not path.is_file():
        raise _missing_image(path)
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"Cannot decode image {path}: {exc}. Re-download or remove it from the metadata.") from exc


#: PIL modes of 16-bit samples (``I`` is how PIL opens a 16-bit greyscale PNG or TIFF on some versions).
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def to_rgb8(img: Image.Image) -> np.ndarray:
    r"""The ``(H, W, 3)`` uint8 RGB pixels of an image of any PIL mode.

    PIL's ``convert("RGB")`` clips 16-bit greyscale at 255, so a 16-bit PNG would come out black
    and white. Those modes are scaled instead, to the nearest 8-bit level:
    :math:`v_8 = \operatorname{round}(v_{16} / 257)` (the inverse of the usual
    :math:`v_{16} = 257\, v_8`; ``I`` values are clipped to the 16-bit range first). Float images
    (``F``) are read as :math:`[0, 1]` when no value exceeds 1 (scaled by 255), as :math:`[0, 255]`
    otherwise; both are clipped. Every other mode (``1``, ``L``, ``LA``, ``P``, ``PA``, ``RGBA``,
    ``CMYK``, ``YCbCr``, ``LAB``, ...) goes through ``convert("RGB")``, which drops alpha and maps
    palettes.
    """
    if img.mode in SIXTEEN_BIT_MODES:
        values = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
        grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
    elif img.mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)
        if values.size and values.max() <= 1.0:
            values = values * 255.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    else:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _open_rgb(path: Path) -> Image.Image:
    """The image at ``path`` as 8-bit RGB (:func:`to_rgb8`), or a one-line error naming the file."""
    if not path.is_file():
        raise _missing_image(path)
    try:
        with Image.open(path) as img:
            return Image.fromarray(to_rgb8(img), "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"Cannot decode image {path}: {exc}. Re-download or remove it from the metadata.") from exc


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of item ``index``'s random augmentation in ``epoch`` (a function of the three only)."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(1, dtype=np.uint64)[0] >> 1)


class _WSOLImageDataset(Dataset):
    """Shared loading, box checking and transforming for the real datasets.

    Random augmentation (crop, flip) draws from torch's global generator by default. After
    :meth:`set_augmentation_seed` it draws, for item ``i`` in epoch ``e`` (:meth:`set_epoch`), from a
    generator seeded with :func:`augmentation_seed` ``(seed, e, i)``: the crop and flip an image gets
    then do not depend on which process (``torchrun`` rank) or loader worker reads it, nor on what was
    read before, so one process with batch ``2B`` sees the same augmented images as two with ``B``,
    and a resume mid-epoch with workers continues exactly. :func:`cirlib.engine.fit` sets both.
    """

    records: list[_Record]
    image_root: Path
    augmentation_base_seed: int | None = None
    epoch: int = 0

    def set_augmentation_seed(self, seed: int | None) -> None:
        """Seed every item's augmentation from ``(seed, epoch, index)``; ``None``: the global generator."""
        self.augmentation_base_seed = None if seed is None else int(seed)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the per-item augmentation seeds refer to (see the class docstring)."""
        self.epoch = int(epoch)

    def __init__(self, transform: WSOLTransform | None, train: bool, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.train = bool(train)
        self.transform = transform if transform is not None else build_transforms(train, mean=self.mean, std=self.std)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        """Class index of every item (int64 array), e.g. for balanced samplers."""
        return np.array([r.label for r in self.records], dtype=np.int64)

    def _check_boxes(self, rec: _Record, width: int, height: int) -> torch.Tensor:
        boxes = torch.tensor(rec.boxes, dtype=torch.float32).reshape(-1, 4)
        for box, (path, line) in zip(rec.boxes, rec.box_sources):
            x0, y0, x1, y1 = box
            # One pixel of slack on the far side for the ``x + w`` convention (clipped below).
            if not (0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height):
                raise BoxOutsideImageError(
                    path,
                    line,
                    f"box (x0, y0, x1, y1) = {box} of image {rec.image_id!r} does not fit inside the image of "
                    f"size (W, H) = ({width}, {height}); inclusive corners must satisfy 0 <= x0 <= x1 <= W - 1 "
                    "and 0 <= y0 <= y1 <= H - 1.",
                )
        if len(boxes):
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width - 1)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height - 1)
        return boxes

    def load_image(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The raw uint8 image ``(3, H, W)`` of item ``index`` and its checked inclusive boxes."""
        rec = self.records[index]
        pil = _open_rgb(self.image_root / rec.image_id)
        width, height = pil.size
        if rec.size is not None and rec.size != (width, height):
            path, line = rec.size_source  # type: ignore[misc]
            raise DatasetFormatError(
                path, line, f"image {rec.image_id!r} is {width}x{height} on disk but the metadata says {rec.size[0]}x{rec.size[1]}"
            )
        image = torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
        return image, self._check_boxes(rec, width, height)

    def check_files(self, indices: Sequence[int] | None = None) -> int:
        """Check before training that the images exist, have readable headers and hold their boxes.

        Reads only each file's header (size), so a whole CUB split takes seconds; the pixels are
        decoded when the item is loaded (a truncated file is reported then, naming the file).

        Args:
            indices: items to check (default: all).

        Returns:
            The number of images checked.

        Raises:
            FileNotFoundError, ImageDecodeError, DatasetFormatError, BoxOutsideImageError: naming
                the file (and the metadata line).
        """
        chosen = range(len(self.records)) if indices is None else indices
        count = 0
        for index in chosen:
            rec = self.records[index]
            width, height = _image_size(self.image_root / rec.image_id)
            if rec.size is not None and rec.size != (width, height):
                path, line = rec.size_source  # type: ignore[misc]
                raise DatasetFormatError(
                    path, line, f"image {rec.image_id!r} is {width}x{height} on disk but the metadata says {rec.size[0]}x{rec.size[1]}"
                )
            self._check_boxes(rec, width, height)
            count += 1
        return count

    def unreadable_images(self, indices: Sequence[int] | None = None) -> Iterator[tuple[int, str]]:
        """Decode every image (all pixels, not only the header) and yield ``(index, one-line error)`` of
        each that fails: missing, truncated, undecodable, another size than the metadata says, or with
        a box outside it. What ``cirlib data check`` runs; training reads only the headers first
        (:meth:`check_files`), since decoding a large dataset twice takes long."""
        for index in range(len(self.records)) if indices is None else indices:
            try:
                self.load_image(index)
            except (OSError, ValueError) as exc:
                yield index, str(exc).splitlines()[0]

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        raw, original = self.load_image(index)
        if self.augmentation_base_seed is None:
            image, boxes, _ = apply_transform(self.transform, raw, original, None)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(augmentation_seed(self.augmentation_base_seed, self.epoch, index))
                image, boxes, _ = apply_transform(self.transform, raw, original, None)
        if not self.train and len(original):  # evaluation: the reference's resize_bbox of the image's boxes
            boxes = reference_eval_boxes(original, tuple(raw.shape[-2:]), tuple(image.shape[-2:]), boxes)
        return {"image": image, "label": rec.label, "boxes": boxes, "mask": None, "image_id": rec.image_id}

    def denormalize(self, image: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: ``x * std + mean``, clipped to [0, 1]."""
        mean = torch.tensor(self.mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=image.dtype, device=image.device).view(3, 1, 1)
        return (image * std + mean).clamp(0.0, 1.0)


class CUBDataset(_WSOLImageDataset):
    """CUB-200-2011 in its official archive layout (``CUB_200_2011/``).

    Args:
        root: the extracted ``CUB_200_2011`` folder (holding ``images.txt`` and ``images/``).
        split: ``"train"`` or ``"test"`` (from ``train_test_split.txt``).
        transform: a WSOL transform; default :func:`build_transforms` for the split.
        mean: normalisation mean (ImageNet by default).
        std: normalisation std.

    ``image_id`` is the path relative to ``root/images``; labels are 0-based (``classes.txt`` is 1-based).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: WSOLTransform | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if split not in ("train", "test"):
            raise SplitNotAvailableError(
                f"split {split!r}: the official CUB-200-2011 layout at {root} has only 'train' and 'test'. "
                "wsolevaluation's CUB 'val' split is a separate set of images: get its metadata/ folder and "
                "set data.options.metadata_root (see README, 'Paper scale')."
            )
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"CUB-200-2011 root {self.root} does not exist. Expected layout:\n{CUB_LAYOUT}")
        super().__init__(transform, split == "train", mean, std)
        self.split = split
        self.image_root = self.root / "images"
        if not self.image_root.is_dir():
            raise FileNotFoundError(f"CUB-200-2011 image folder {self.image_root} does not exist. Expected layout:\n{CUB_LAYOUT}")

        classes_path = self.root / "classes.txt"
        names: dict[int, str] = {}
        for number, text in _read_lines(classes_path, CUB_LAYOUT):
            parts = text.split(maxsplit=1)
            if len(parts) != 2:
                raise DatasetFormatError(classes_path, number, "expected '<class id> <class name>'", text)
            names[_number(classes_path, number, text, parts[0], int, "class id")] = parts[1].strip()
        if sorted(names) != list(range(1, len(names) + 1)):
            raise DatasetFormatError(classes_path, None, f"class ids must be 1..{len(names)} without gaps")
        self.num_classes = len(names)
        self.class_names = [names[k + 1].split(".", 1)[-1] for k in range(self.num_classes)]

        def _table(name: str, count: int, what: str) -> dict[str, tuple[list[str], int, str]]:
            path = self.root / name
            table: dict[str, tuple[list[str], int, str]] = {}
            for number, text in _read_lines(path, CUB_LAYOUT):
                parts = _fields(path, number, text, None, count, what)
                if parts[0] in table:
                    raise DatasetFormatError(path, number, f"image id {parts[0]} appears twice (first on line {table[parts[0]][1]})", text)
                table[parts[0]] = (parts[1:], number, text)
            return table

        images = _table("images.txt", 2, "<image_id> <path>")
        labels = _table("image_class_labels.txt", 2, "<image_id> <class id>")
        splits = _table("train_test_split.txt", 2, "<image_id> <is_training_image>")
        boxes = _table("bounding_boxes.txt", 5, "<image_id> <x> <y> <width> <height>")
        want = "1" if split == "train" else "0"
        self.records = []
        for image_key, (parts, number, text) in images.items():
            for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", splits), ("bounding_boxes.txt", boxes)):
                if image_key not in table:
                    raise DatasetFormatError(self.root / "images.txt", number, f"image id {image_key} has no line in {name}", text)
            flag, fnum, ftext = splits[image_key]
            if flag[0] not in ("0", "1"):
                raise DatasetFormatError(self.root / "train_test_split.txt", fnum, f"is_training_image must be 0 or 1, got {flag[0]!r}", ftext)
            if flag[0] != want:
                continue
            (cls,), lnum, ltext = labels[image_key]
            label = _number(self.root / "image_class_labels.txt", lnum, ltext, cls, int, "class id") - 1
            if not 0 <= label < self.num_classes:
                raise DatasetFormatError(
                    self.root / "image_class_labels.txt", lnum, f"class id {label + 1} is outside 1..{self.num_classes} (classes.txt)", ltext
                )
            vals, bnum, btext = boxes[image_key]
            x, y, w, h = (_number(self.root / "bounding_boxes.txt", bnum, btext, v, float, "coordinate") for v in vals)
            if w < 0 or h < 0:
                raise DatasetFormatError(self.root / "bounding_boxes.txt", bnum, f"negative width/height ({w}, {h})", btext)
            self.records.append(
                _Record(
                    image_id=parts[0],
                    label=label,
                    boxes=[(x, y, x + w, y + h)],
                    box_sources=[(self.root / "bounding_boxes.txt", bnum)],
                )
            )
        if not self.records:
            raise DatasetFormatError(self.root / "train_test_split.txt", None, f"no image belongs to the {split!r} split")

    def __repr__(self) -> str:
        return f"CUBDataset(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, num_classes={self.num_classes})"


class WSOLMetadataDataset(_WSOLImageDataset):
    """A dataset described by wsolevaluation's metadata files (CUB or ILSVRC; several boxes per image).

    Args:
        data_root: folder the ``image_ids`` are relative to (``<data_root>/<DATASET>/`` is tried too).
        metadata_root: wsolevaluation's ``metadata/`` folder (``metadata/<DATASET>`` or the split folder
            itself are accepted as well).
        dataset: ``"CUB"`` or ``"ILSVRC"`` (case-insensitive).
        split: ``"train"``, ``"val"`` or ``"test"``.
        transform: a WSOL transform; default :func:`build_transforms` for the split.
        num_classes: default 200 (CUB) or 1000 (ILSVRC).
        mean: normalisation mean (ImageNet by default).
        std: normalisation std.

    ``localization.txt`` is required for ``val``/``test``; without it (typical for ``train``) every item
    has ``boxes`` of shape ``(0, 4)``. ``image_sizes.txt`` is optional and checked against the decoded
    image when present.
    """

    def __init__(
        self,
        data_root: str | Path,
        metadata_root: str | Path,
        dataset: str = "CUB",
        split: str = "test",
        transform: WSOLTransform | None = None,
        num_classes: int | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        key = str(dataset).upper()
        if key not in KNOWN_NUM_CLASSES:
            raise ValueError(f"WSOLMetadataDataset: dataset={dataset!r} must be one of {sorted(KNOWN_NUM_CLASSES)}.")
        if split not in ("train", "val", "test"):
            raise ValueError(f"WSOLMetadataDataset: split={split!r} must be 'train', 'val' or 'test'.")
        self.dataset = key
        self.split = split
        self.data_root = Path(data_root)
        self.metadata_root = Path(metadata_root)
        if not self.data_root.is_dir():
            raise FileNotFoundError(f"{key} data_root {self.data_root} does not exist. Expected layout:\n{METADATA_LAYOUT}")
        if not self.metadata_root.is_dir():
            raise FileNotFoundError(f"{key} metadata_root {self.metadata_root} does not exist. Expected layout:\n{METADATA_LAYOUT}")
        super().__init__(transform, split == "train", mean, std)
        candidates = [self.metadata_root / key / split, self.metadata_root / split, self.metadata_root]
        meta = next((c for c in candidates if (c / "image_ids.txt").is_file()), None)
        if meta is None:
            raise FileNotFoundError(
                f"No {key}/{split}/image_ids.txt under {self.metadata_root} (tried {', '.join(str(c) for c in candidates)}). "
                f"Expected layout:\n{METADATA_LAYOUT}"
            )
        self.metadata_dir = meta
        self.num_classes = int(num_classes) if num_classes is not None else KNOWN_NUM_CLASSES[key]

        ids_path = meta / "image_ids.txt"
        records: dict[str, _Record] = {}
        id_lines: dict[str, int] = {}
        for number, text in _read_lines(ids_path, METADATA_LAYOUT):
            image_id = text.strip()
            if "," in image_id:
                raise DatasetFormatError(ids_path, number, "an image id may not contain ','", text)
            if image_id in records:
                raise DatasetFormatError(ids_path, number, f"image id appears twice (first on line {id_lines[image_id]})", text)
            records[image_id] = _Record(image_id=image_id, label=-1)
            id_lines[image_id] = number

        def _lookup(path: Path, number: int, text: str, image_id: str) -> _Record:
            if image_id not in records:
                raise DatasetFormatError(path, number, f"image id {image_id!r} is not listed in {ids_path.name}", text)
            return records[image_id]

        labels_path = meta / "class_labels.txt"
        for number, text in _read_lines(labels_path, METADATA_LAYOUT):
            image_id, value = _fields(labels_path, number, text, ",", 2, "<image_id>,<class index>")
            rec = _lookup(labels_path, number, text, image_id)
            label = _number(labels_path, number, text, value, int, "class index")
            if not 0 <= label < self.num_classes:
                raise DatasetFormatError(labels_path, number, f"class index {label} is outside [0, {self.num_classes})", text)
            rec.label = label

        sizes_path = meta / "image_sizes.txt"
        if sizes_path.is_file():
            for number, text in _read_lines(sizes_path, METADATA_LAYOUT):
                image_id, ws, hs = _fields(sizes_path, number, text, ",", 3, "<image_id>,<width>,<height>")
                rec = _lookup(sizes_path, number, text, image_id)
                w = _number(sizes_path, number, text, ws, int, "width")
                h = _number(sizes_path, number, text, hs, int, "height")
                if w < 1 or h < 1:
                    raise DatasetFormatError(sizes_path, number, f"image size {w}x{h} must be positive", text)
                rec.size, rec.size_source = (w, h), (sizes_path, number)

        loc_path = meta / "localization.txt"
        if loc_path.is_file():
            for number, text in _read_lines(loc_path, METADATA_LAYOUT):
                image_id, *coords = _fields(loc_path, number, text, ",", 5, "<image_id>,<x0>,<y0>,<x1>,<y1>")
                rec = _lookup(loc_path, number, text, image_id)
                x0, y0, x1, y1 = (_number(loc_path, number, text, c, float, "coordinate") for c in coords)
                if x1 < x0 or y1 < y0:
                    raise DatasetFormatError(loc_path, number, f"box {(x0, y0, x1, y1)} has x1 < x0 or y1 < y0", text)
                if rec.size is not None:
                    w, h = rec.size
                    if not (0 <= x0 and 0 <= y0 and x1 <= w and y1 <= h):
                        raise BoxOutsideImageError(
                            loc_path,
                            number,
                            f"box (x0, y0, x1, y1) = {(x0, y0, x1, y1)} does not fit inside image {image_id!r} of size "
                            f"(W, H) = ({w}, {h}) from {sizes_path.name}",
                            text,
                        )
                rec.boxes.append((x0, y0, x1, y1))
                rec.box_sources.append((loc_path, number))
        elif split != "train":
            raise FileNotFoundError(f"Missing metadata file {loc_path}: the {split!r} split needs boxes. Expected layout:\n{METADATA_LAYOUT}")

        for image_id, rec in records.items():
            if rec.label < 0:
                raise DatasetFormatError(labels_path, None, f"image id {image_id!r} ({ids_path.name} line {id_lines[image_id]}) has no class label")
            if loc_path.is_file() and not rec.boxes:
                raise DatasetFormatError(loc_path, None, f"image id {image_id!r} ({ids_path.name} line {id_lines[image_id]}) has no box")
        self.records = list(records.values())
        if not self.records:
            raise DatasetFormatError(ids_path, None, "no image ids listed")

        first = self.records[0].image_id
        roots = self.image_root_candidates(self.data_root, key)
        found = next((r for r in roots if (r / first).is_file()), None)
        if found is None:
            other = next((o for o in (case_mismatch(r / first) for r in roots) if o is not None), None)
            if other is not None:
                raise FileNotFoundError(
                    f"{key} {split}: the first image id {first!r} ({ids_path}, line {id_lines[first]}) is not on "
                    f"disk but {other} is: the names differ only in letter case (file names are case-sensitive). "
                    "Rename the image files or fix the metadata's image ids; data.root is right."
                )
            raise FileNotFoundError(
                f"{key} {split}: the first image id {first!r} ({ids_path}, line {id_lines[first]}) is not under "
                f"data.root={str(self.data_root)!r}: tried {', '.join(str(r) for r in roots)}. Set data.root "
                "to the folder the image ids are relative to (see README, 'Paper scale')."
            )
        self.image_root = found
        self.class_names = self._guess_class_names()

    @staticmethod
    def image_root_candidates(data_root: Path, dataset: str) -> list[Path]:
        """Folders the image ids may be relative to, in the order tried.

        ``data_root`` itself, ``data_root/<DATASET>``, and the usual extracted archives beside
        ``metadata/``: ``data_root/images``, ``data_root/CUB_200_2011/images`` (CUB).
        """
        roots = [data_root, data_root / dataset, data_root / "images", data_root / dataset / "images"]
        if dataset == "CUB":
            roots += [data_root / "CUB_200_2011" / "images", data_root / dataset / "CUB_200_2011" / "images"]
        return roots

    def _guess_class_names(self) -> list[str]:
        """Class names from the image folders (``001.Black_footed_Albatross/...``, ``train/n01440764/...``)."""
        names: dict[int, str] = {}
        for rec in self.records:
            parts = Path(rec.image_id).parts
            folder = parts[-2] if len(parts) >= 2 else None
            if folder in (None, "train", "val", "test"):
                continue
            names.setdefault(rec.label, folder.split(".", 1)[-1] if self.dataset == "CUB" else folder)
        return [names.get(k, f"class_{k:04d}") for k in range(self.num_classes)]

    def __repr__(self) -> str:
        return (
            f"WSOLMetadataDataset(dataset={self.dataset!r}, split={self.split!r}, n={len(self)}, "
            f"data_root={str(self.data_root)!r}, metadata={str(self.metadata_dir)!r})"
        )
