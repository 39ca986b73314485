r"""Score the maps of any WSOL codebase with the reference protocol (``cirlib score``).

The inputs are those of the wsolevaluation reference's ``evaluation.py`` (Choe et al., CVPR 2020):

* score maps ``SCOREMAP_ROOT/<image_id>.npy`` (``001.Black_footed_Albatross/x.jpg`` ->
  ``SCOREMAP_ROOT/001.Black_footed_Albatross/x.jpg.npy``), each a ``224 x 224`` float map in [0, 1],
  the image resized to 224 x 224 (what ``inference.py`` saves, and ``cirlib evaluate --save-maps``);
* the metadata ``METADATA_ROOT/<DATASET>/<split>/{image_ids, image_sizes, localization}.txt``:
  GT boxes ``x0,y0,x1,y1`` in original pixels, resized to 224 with the reference's ``resize_bbox``
  (:func:`cirlib.metrics.resize_bbox`); for OpenImages, ``localization.txt`` names the mask and
  ignore PNGs under ``MASK_ROOT/OpenImages/``.

Box datasets give MaxBoxAcc at each IoU threshold and their mean (MaxBoxAccV2 with multi-contour
boxes and IoU 30/50/70); OpenImages gives PxAP. The numbers are the reference's: the same boxes,
the same thresholds ``numpy.arange(0, 1, interval)``, the fast exact BoxAcc sweep
(:func:`cirlib.metrics.best_ious`).

Scoring streams: each worker reads one map at a time and returns per-threshold counts, so memory
does not grow with the number of maps. Every input problem is one :class:`ScoreInputError` line
naming the file and what the protocol needs, found before any output is written.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cirlib.metrics import PxAPEvaluator, resize_bbox
from cirlib.metrics._inputs import as_thresholds
from cirlib.metrics.boxacc import _best_ious

__all__ = [
    "DATASETS",
    "RESIZE_LENGTH",
    "Metadata",
    "ScoreInputError",
    "format_scores",
    "load_reference_mask",
    "load_scoremap",
    "read_metadata",
    "save_scoremap",
    "score_scoremaps",
    "scoremap_path",
]

#: Datasets of the reference protocol: boxes for CUB and ILSVRC, masks for OpenImages.
DATASETS: tuple[str, ...] = ("CUB", "ILSVRC", "OpenImages")
#: The side every score map, GT box and mask is evaluated at (the reference's ``_RESIZE_LENGTH``).
RESIZE_LENGTH = 224
_CHUNK = 32  # maps per task sent to a worker


class ScoreInputError(ValueError):
    """A score map, metadata file or mask that the protocol cannot score (one line: where, what, fix)."""


@dataclass
class Metadata:
    """The metadata of one split: image ids in order, original boxes and sizes, or mask paths."""

    folder: Path
    dataset: str
    image_ids: list[str]
    boxes: dict[str, np.ndarray] = field(default_factory=dict)  # (k, 4) x0, y0, x1, y1, original pixels
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # (width, height)
    masks: dict[str, tuple[list[str], str]] = field(default_factory=dict)  # mask paths, ignore path

    def gt_boxes(self, image_id: str) -> np.ndarray:
        """The image's GT boxes in the 224 x 224 frame: the reference's ``resize_bbox``."""
        return resize_bbox(self.boxes[image_id], self.sizes[image_id], (RESIZE_LENGTH, RESIZE_LENGTH))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    if not path.is_file():
        raise ScoreInputError(f"{path} does not exist; the metadata folder needs image_ids.txt, image_sizes.txt "
                              "and localization.txt (wsolevaluation's metadata/<DATASET>/<split>/).")
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            text = text.rstrip("\n")
            if text.strip():
                yield number, text


def _ints(path: Path, number: int, text: str, values: Sequence[str], what: str) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ScoreInputError(f"{path}:{number}: {text!r}: expected {what} with integer numbers.") from None


def read_metadata(metadata_root: str | os.PathLike, dataset: str, split: str) -> Metadata:
    """Read ``metadata_root/<dataset>/<split>/`` as the reference's ``data_loaders`` does.

    Raises:
        ScoreInputError: naming the file, the line and what it should hold.
    """
    if dataset not in DATASETS:
        raise ScoreInputError(f"--dataset {dataset!r}: choose one of {', '.join(DATASETS)}.")
    folder = Path(metadata_root) / dataset / split
    if not folder.is_dir():
        raise ScoreInputError(f"{folder} is not a folder; --metadata-root must hold <DATASET>/<split>/ as "
                              "wsolevaluation's metadata/ does.")
    ids_path = folder / "image_ids.txt"
    image_ids = [text.strip() for _, text in _lines(ids_path)]
    if not image_ids:
        raise ScoreInputError(f"{ids_path} lists no image id.")
    meta = Metadata(folder=folder, dataset=dataset, image_ids=image_ids)
    known = set(image_ids)
    loc_path = folder / "localization.txt"
    for number, text in _lines(loc_path):
        fields = text.split(",")
        image_id = fields[0]
        if image_id not in known:
            raise ScoreInputError(f"{loc_path}:{number}: image id {image_id!r} is not listed in {ids_path.name}.")
        if dataset == "OpenImages":
            if len(fields) != 3:
                raise ScoreInputError(f"{loc_path}:{number}: {text!r}: expected <image_id>,<mask path>,<ignore path>.")
            paths, ignore = meta.masks.setdefault(image_id, ([], fields[2]))
            paths.append(fields[1])
            continue
        if len(fields) != 5:
            raise ScoreInputError(f"{loc_path}:{number}: {text!r}: expected <image_id>,<x0>,<y0>,<x1>,<y1>.")
        box = _ints(loc_path, number, text, fields[1:], "x0,y0,x1,y1")
        if min(box) < 0 or box[2] < box[0] or box[3] < box[1]:
            raise ScoreInputError(f"{loc_path}:{number}: box {tuple(box)} breaks the protocol's convention "
                                  "(non-negative, x1 >= x0, y1 >= y0).")
        meta.boxes.setdefault(image_id, []).append(box)  # type: ignore[arg-type]
    if dataset != "OpenImages":
        meta.boxes = {k: np.asarray(v, dtype=np.int64) for k, v in meta.boxes.items()}
        sizes_path = folder / "image_sizes.txt"
        for number, text in _lines(sizes_path):
            fields = text.split(",")
            if len(fields) != 3:
                raise ScoreInputError(f"{sizes_path}:{number}: {text!r}: expected <image_id>,<width>,<height>.")
            w, h = _ints(sizes_path, number, text, fields[1:], "width,height")
            if w < 1 or h < 1:
                raise ScoreInputError(f"{sizes_path}:{number}: image size {w}x{h} must be positive.")
            meta.sizes[fields[0]] = (w, h)
        table, what = meta.boxes, f"no box in {loc_path.name}"
        for image_id in image_ids:
            if image_id not in meta.sizes:
                raise ScoreInputError(f"{sizes_path}: image id {image_id!r} has no size; the boxes are resized "
                                      "from it.")
    else:
        table, what = meta.masks, f"no mask in {loc_path.name}"
    for image_id in image_ids:
        if image_id not in table:
            raise ScoreInputError(f"{folder}: image id {image_id!r} ({ids_path.name}) has {what}.")
    return meta


def scoremap_path(scoremap_root: str | os.PathLike, image_id: str) -> Path:
    """``scoremap_root/<image_id>.npy``, where the reference reads (and ``inference.py`` writes) a map."""
    return Path(scoremap_root) / (image_id + ".npy")


def save_scoremap(scoremap_root: str | os.PathLike, image_id: str, scoremap: np.ndarray) -> Path:
    """Write one map to :func:`scoremap_path` as ``numpy.save`` does, atomically (a temporary name, then a rename)."""
    path = scoremap_path(scoremap_root, image_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            np.save(handle, scoremap)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_scoremap(path: Path, image_id: str) -> np.ndarray:
    """Read one score map and check it as the protocol needs: ``224 x 224``, finite, in [0, 1].

    Raises:
        ScoreInputError: naming the image id or the file and what the protocol needs.
    """
    if not path.is_file():
        raise ScoreInputError(f"no score map for image {image_id!r}: tried {path}.")
    try:
        scoremap = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ScoreInputError(f"{path}: not a readable .npy array ({exc}).") from None
    want = (RESIZE_LENGTH, RESIZE_LENGTH)
    if scoremap.shape != want:
        raise ScoreInputError(f"{path}: shape {scoremap.shape}; the protocol scores {want[0]}x{want[1]} maps "
                              "(the CAM resized to the 224x224 input, then min-max normalised).")
    if not np.issubdtype(scoremap.dtype, np.floating):
        raise ScoreInputError(f"{path}: dtype {scoremap.dtype}; the protocol needs float maps in [0, 1].")
    scoremap = scoremap.astype(np.float64, copy=False)
    if np.isnan(scoremap).any():
        raise ScoreInputError(f"{path}: contains NaN; the protocol needs finite maps in [0, 1] "
                              "(the reference's normalize_scoremap turns a NaN map into zeros).")
    lo, hi = float(scoremap.min()), float(scoremap.max())
    if lo < 0 or hi > 1:
        raise ScoreInputError(f"{path}: values in [{lo:.6g}, {hi:.6g}]; the protocol needs [0, 1] "
                              "(min-max normalise each map: (x - min) / (max - min)).")
    return scoremap


def _read_mask_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ScoreInputError(f"mask {path} is missing or not an image; --mask-root must hold OpenImages/<path> "
                              "as the metadata names it.")
    resized = cv2.resize(np.float32(image), (RESIZE_LENGTH, RESIZE_LENGTH), interpolation=cv2.INTER_NEAREST)
    return resized > 0.5


def load_reference_mask(mask_root: Path, mask_paths: Sequence[str], ignore_path: str) -> np.ndarray:
    """The reference's ``get_mask``: 1 on any instance mask, 255 on the ignore box outside them, else 0.

    Each PNG is read as greyscale, resized to 224 x 224 (nearest) and thresholded at 0.5.
    """
    foreground = np.stack([_read_mask_png(mask_root / p) for p in mask_paths]).any(axis=0)
    ignore = _read_mask_png(mask_root / ignore_path) & ~foreground if ignore_path else np.zeros_like(foreground)
    return foreground.astype(np.uint8) + 255 * ignore.astype(np.uint8)


# ----------------------------------------------------------------------------------------- workers
_JOB: dict[str, Any] = {}


def _init_worker(job: dict[str, Any]) -> None:
    _JOB.clear()
    _JOB.update(job)


def _score_chunk(chunk: list[tuple[str, Any]]) -> tuple[int, Any]:
    """Score ``(image_id, GT boxes or (mask paths, ignore path))`` pairs; returns the count and the sums.

    Boxes: ``(n, correct)`` with ``correct`` ``(len(iou), len(thr))`` counts. Masks: ``(n, PxAPEvaluator)``.
    """
    root, thr = _JOB["scoremap_root"], _JOB["thresholds"]
    if _JOB["mask_root"] is not None:
        pxap = PxAPEvaluator(cam_thresholds=thr)
        for image_id, (paths, ignore) in chunk:
            scoremap = load_scoremap(scoremap_path(root, image_id), image_id)
            mask = load_reference_mask(_JOB["mask_root"], paths, ignore)
            pxap.update(scoremap[None], (mask == 1)[None], ignore=(mask == 255)[None])
        return len(chunk), pxap
    mode, deltas = _JOB["mode"], _JOB["iou_fractions"]
    correct = np.zeros((len(deltas), len(thr)), dtype=np.int64)
    for image_id, gt in chunk:
        scoremap = load_scoremap(scoremap_path(root, image_id), image_id)
        best = _best_ious(scoremap, gt, thr, (mode,))[mode]
        correct += best[None, :] >= deltas[:, None]
    return len(chunk), correct


def _chunks(meta: Metadata, with_masks: bool) -> Iterator[list[tuple[str, Any]]]:
    chunk: list[tuple[str, Any]] = []
    for image_id in meta.image_ids:
        chunk.append((image_id, meta.masks[image_id] if with_masks else meta.gt_boxes(image_id).astype(np.float64)))
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _listed_maps(scoremap_root: Path) -> set[str]:
    """The image ids of every ``.npy`` file under ``scoremap_root`` (its path without ``.npy``)."""
    found = set()
    for folder, _, files in os.walk(scoremap_root):
        rel = Path(folder).relative_to(scoremap_root)
        for name in files:
            if name.endswith(".npy"):
                found.add((rel / name[: -len(".npy")]).as_posix())
    return found


def score_scoremaps(
    scoremap_root: str | os.PathLike,
    metadata_root: str | os.PathLike,
    dataset: str,
    split: str,
    mask_root: str | os.PathLike | None = None,
    cam_curve_interval: float = 0.001,
    iou_thresholds: Sequence[float] = (30, 50, 70),
    multi_contour: bool = True,
    workers: int = 1,
    strict: bool = False,
) -> dict[str, Any]:
    """Score a folder of maps against the reference metadata; the numbers of wsolevaluation's ``evaluate_wsol``.

    Args:
        scoremap_root: folder of ``<image_id>.npy`` maps.
        metadata_root: folder holding ``<dataset>/<split>/`` metadata.
        dataset: ``"CUB"``, ``"ILSVRC"`` or ``"OpenImages"``.
        split: ``"val"`` or ``"test"``.
        mask_root: OpenImages only: the folder holding ``OpenImages/<mask path>`` (or ``<mask path>``).
        cam_curve_interval: CAM thresholds ``numpy.arange(0, 1, cam_curve_interval)``.
        iou_thresholds: IoU thresholds in percent.
        multi_contour: every contour's box (MaxBoxAccV2) instead of the largest contour's.
        workers: processes scoring maps in parallel (1: this process).
        strict: maps for image ids the metadata does not list are an error (else reported).

    Returns:
        ``dataset``, ``split``, ``num_scored``, ``unlisted_maps`` (count), ``cam_curve_interval`` and,
        for boxes, ``contour``, ``iou_thresholds``, ``maxboxacc`` / ``best_threshold`` per IoU
        threshold, ``maxboxacc_mean`` (MaxBoxAccV2 when multi-contour with IoU 30/50/70), ``curves``;
        for masks, ``pxap`` and its precision / recall ``curves``.

    Raises:
        ScoreInputError: the first input problem, before anything is scored where it can be seen by
            listing the folder (missing maps, unlisted maps with ``strict``), else at the map.
    """
    if split not in ("val", "test", "train"):
        raise ScoreInputError(f"--split {split!r}: choose val or test.")
    if not 0 < cam_curve_interval < 1:
        raise ScoreInputError(f"--cam-curve-interval {cam_curve_interval}: must lie in (0, 1), e.g. 0.001.")
    if workers < 1:
        raise ScoreInputError(f"--workers {workers}: must be >= 1.")
    if not iou_thresholds or any(not 0 < float(d) <= 100 for d in iou_thresholds):
        raise ScoreInputError(f"--iou-thresholds {list(iou_thresholds)}: give percentages in (0, 100], e.g. 30 50 70.")
    root = Path(scoremap_root)
    if not root.is_dir():
        raise ScoreInputError(f"--scoremap-root {root} is not a folder of <image_id>.npy maps.")
    meta = read_metadata(metadata_root, dataset, split)
    masks_root = None
    if dataset == "OpenImages":
        if mask_root is None:
            raise ScoreInputError("--dataset OpenImages is scored on masks: give --mask-root (the folder holding "
                                  "OpenImages/<mask path> as localization.txt names them).")
        base = Path(mask_root)
        masks_root = base / "OpenImages" if (base / "OpenImages").is_dir() else base
    elif mask_root is not None:
        raise ScoreInputError(f"--mask-root is for OpenImages; {dataset} is scored on boxes.")

    found = _listed_maps(root)
    missing = [i for i in meta.image_ids if i not in found]
    if missing:
        raise ScoreInputError(f"no score map for image {missing[0]!r}: tried {scoremap_path(root, missing[0])} "
                              f"({len(missing)} of the {len(meta.image_ids)} listed images have none).")
    unlisted = sorted(found - set(meta.image_ids))
    if unlisted and strict:
        raise ScoreInputError(f"{len(unlisted)} maps under {root} are for image ids {meta.folder}/image_ids.txt "
                              f"does not list, e.g. {scoremap_path(root, unlisted[0])} (--strict).")

    thr = as_thresholds(np.arange(0, 1, cam_curve_interval), "cam_thresholds")
    deltas = tuple(float(d) for d in iou_thresholds)
    job = {"scoremap_root": root, "thresholds": thr, "mask_root": masks_root,
           "mode": "multi" if multi_contour else "single",
           "iou_fractions": np.array([d / 100 for d in deltas])}
    chunks = _chunks(meta, masks_root is not None)
    total, sums = 0, None
    if workers == 1:
        _init_worker(job)
        results: Iterator = map(_score_chunk, chunks)
        pool = None
    else:
        # fork where there is one: no re-import of the caller's main module; nothing here started threads yet
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(workers, initializer=_init_worker, initargs=(job,))
        results = pool.imap_unordered(_score_chunk, chunks)
    try:
        for n, part in results:
            total += n
            if sums is None:
                sums = part
            elif isinstance(part, PxAPEvaluator):
                sums.merge(part)
            else:
                sums += part
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()

    out: dict[str, Any] = {"dataset": dataset, "split": split, "num_scored": total, "unlisted_maps": len(unlisted),
                           "cam_curve_interval": cam_curve_interval}
    if masks_root is not None:
        result = sums.compute()
        out["pxap"] = result["pxap"]
        out["curves"] = {k: result[k] for k in ("thresholds", "precision", "recall")}
        return out
    curves = sums * 100.0 / total
    keys = [f"{d:g}" for d in deltas]
    out["contour"] = "multi" if multi_contour else "single"
    out["iou_thresholds"] = list(deltas)
    out["maxboxacc"] = {k: float(curves[j].max()) for j, k in enumerate(keys)}
    out["best_threshold"] = {k: float(thr[int(curves[j].argmax())]) for j, k in enumerate(keys)}
    out["maxboxacc_mean"] = float(np.mean(list(out["maxboxacc"].values())))
    out["curves"] = {"cam_thresholds": thr.tolist(), "boxacc": {k: curves[j].tolist() for j, k in enumerate(keys)}}
    return out


def format_scores(scores: dict[str, Any]) -> str:
    """The lines ``cirlib score`` prints (see ``docs/metrics.md`` for the reference's printout)."""
    lines = [f"scored {scores['num_scored']} maps ({scores['dataset']} {scores['split']}, "
             f"cam_curve_interval {scores['cam_curve_interval']:g}"
             + (f", {scores['contour']}-contour boxes)" if "contour" in scores else ")")]
    if scores.get("unlisted_maps"):
        lines.append(f"not scored: {scores['unlisted_maps']} maps for image ids the metadata does not list "
                     "(--strict makes this an error)")
    if "pxap" in scores:
        lines.append(f"PxAP            {scores['pxap']:.4f}")
        return "\n".join(lines)
    for key, value in scores["maxboxacc"].items():
        lines.append(f"MaxBoxAcc@{key:<5} {value:8.4f}  (best CAM threshold {scores['best_threshold'][key]:.3f})")
    name = ("MaxBoxAccV2" if scores["contour"] == "multi" and scores["iou_thresholds"] == [30.0, 50.0, 70.0]
            else "mean over IoU")
    lines.append(f"{name:<15} {scores['maxboxacc_mean']:8.4f}")
    return "\n".join(lines)
