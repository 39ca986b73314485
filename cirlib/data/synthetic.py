r"""The built-in synthetic WSOL dataset: a small decisive head on a large, weakly informative body.

Every image holds one object on a cluttered background (docs/design.md#the-synthetic-dataset):

* **background**: smooth colour noise (a coarse random grid upsampled bicubically) plus a few random
  distractor ellipses, some striped, drawn from the same distribution for every class;
* **body**: a large ellipse at a random position, angle and scale, covered by a stripe texture whose
  orientation (fixed in the image, ``stripe_frame="image"``) is the same for every class in a group of
  ``classes_per_group`` classes, in a muted colour pulled halfway towards the group's muted colour
  (``body_tint``). Distractors carry stripes of random orientation too, so the body is a weak,
  ambiguous cue: at best it narrows the class down to its group;
* **head**: a small disc at one end of the body, in a saturated colour that identifies the class exactly
  (hue :math:`h_k = k / K`). Nothing else in the image is that saturated.

A classifier therefore reaches near-perfect accuracy by looking at the head only, and plain CAM lights up
the head: the box is much smaller than the object. Hiding the head (Hide-and-Seek) forces the net to
use the body. The ground-truth mask is :math:`M = M_\text{body} \cup M_\text{head}` and the box is its
inclusive bounding box, :math:`[\min_x M, \min_y M, \max_x M, \max_y M]`.

Why these defaults (measured with the engine, 2,000 training images of 64x64, ``small_cnn`` width 16,
6 epochs, one seed, 500 test images): plain CAM reaches 100% top-1 with MaxBoxAcc 30/50/70 =
98.4 / 72.8 / 18.0 (MaxBoxAccV2 63.1) and Hide-and-Seek 99.6% top-1 with 100 / 93.2 / 32.2 (75.1), the
phenomenon of docs/design.md#the-synthetic-dataset (``python benchmarks/screen.py cam --seed 0`` and
``has --seed 0``). The body cue is a stripe angle fixed in the image and a colour tint, so that a few
convolutions can read it anywhere on the body.

Generation is per index, from ``numpy.random.SeedSequence([seed, split_code, index])``: deterministic,
independent of access order, identical in every DataLoader worker; splits use different split codes.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from cirlib.data.transforms import WSOLTransform, apply_transform
from cirlib.utils.choices import validate_choice

#: Default number of images per split (override with ``size=``).
DEFAULT_SPLIT_SIZES: dict[str, int] = {"train": 6000, "val": 1000, "test": 1000}
_SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}

#: Channel statistics measured on 2,000 default training images (64x64, default knobs), rounded.
SYNTHETIC_MEAN: tuple[float, float, float] = (0.50, 0.50, 0.50)
SYNTHETIC_STD: tuple[float, float, float] = (0.14, 0.14, 0.14)


@dataclass(frozen=True)
class SyntheticSpec:
    r"""The generator's knobs. Sizes are fractions of ``min(H, W)`` so any image size looks alike.

    Attributes:
        head_radius: radius of the head disc.
        body_length: ``(min, max)`` full length of the body ellipse's major axis.
        body_aspect: ``(min, max)`` minor / major axis ratio of the body.
        body_cue_strength: contrast :math:`a` of the body stripes, pixel
            :math:`= c_\text{body}\,(1 + a \sin(2\pi u / P))`; 0 removes the body cue entirely.
        classes_per_group: classes sharing one body stripe orientation (the body's ambiguity); 1 makes
            the body as decisive as the head, ``num_classes`` makes it useless.
        stripe_period: stripe period :math:`P`.
        num_distractors: ``(min, max)`` number of background ellipses (inclusive).
        distractor_radius: ``(min, max)`` semi-axis of a distractor ellipse.
        distractor_stripe_prob: probability that a distractor carries stripes (random orientation, the
            same contrast as bodies).
        background_grid: side of the coarse noise grid that is upsampled into the smooth background.
        head_jitter: uniform jitter of the head's HSV value (brightness), ``0`` for exact class colours.
        stripe_frame: ``"body"``: the group's stripe angle is measured from the body axis (rotates with
            the pose, hard for a small CNN); ``"image"``: the angle is fixed in the image, a local cue
            a few convolutions can read anywhere on the body.
        body_tint: how far the body's colour is pulled from a random muted colour towards its group's
            muted colour (0 = no colour cue, 1 = the group colour exactly); saturation stays far below
            the heads'.
    """

    head_radius: float = 0.075
    body_length: tuple[float, float] = (0.45, 0.75)
    body_aspect: tuple[float, float] = (0.40, 0.65)
    body_cue_strength: float = 0.40
    classes_per_group: int = 2
    stripe_period: float = 0.11
    num_distractors: tuple[int, int] = (2, 4)
    distractor_radius: tuple[float, float] = (0.06, 0.18)
    distractor_stripe_prob: float = 0.5
    background_grid: int = 5
    head_jitter: float = 0.05
    stripe_frame: str = "image"
    body_tint: float = 0.5

    def validate(self) -> None:
        """Raise ``ValueError`` naming the knob when a value is out of range."""

        def _range(name: str, lo_hi: Sequence[float], low: float, high: float) -> None:
            if len(lo_hi) != 2 or not (low <= lo_hi[0] <= lo_hi[1] <= high):
                raise ValueError(f"SyntheticWSOL: {name}={tuple(lo_hi)!r} must be (min, max) with {low} <= min <= max <= {high}.")

        if not 0.01 <= self.head_radius <= 0.25:
            raise ValueError(f"SyntheticWSOL: head_radius={self.head_radius} must lie in [0.01, 0.25] (fraction of min(H, W)).")
        _range("body_length", self.body_length, 0.05, 0.85)
        _range("body_aspect", self.body_aspect, 0.1, 1.0)
        _range("distractor_radius", self.distractor_radius, 0.0, 0.5)
        _range("num_distractors", self.num_distractors, 0, 50)
        if self.stripe_frame not in ("body", "image"):
            raise ValueError(f"SyntheticWSOL: stripe_frame={self.stripe_frame!r} must be 'body' or 'image'.")
        if not 0.0 <= self.body_tint <= 1.0:
            raise ValueError(f"SyntheticWSOL: body_tint={self.body_tint} must lie in [0, 1].")
        if not 0.0 <= self.body_cue_strength <= 1.0:
            raise ValueError(f"SyntheticWSOL: body_cue_strength={self.body_cue_strength} must lie in [0, 1].")
        if self.classes_per_group < 1:
            raise ValueError(f"SyntheticWSOL: classes_per_group={self.classes_per_group} must be >= 1.")
        if self.stripe_period <= 0 or self.background_grid < 2:
            raise ValueError("SyntheticWSOL: stripe_period must be > 0 and background_grid >= 2.")
        if not 0.0 <= self.distractor_stripe_prob <= 1.0 or not 0.0 <= self.head_jitter <= 0.5:
            raise ValueError("SyntheticWSOL: distractor_stripe_prob must lie in [0, 1] and head_jitter in [0, 0.5].")


def class_colors(num_classes: int) -> np.ndarray:
    """The head colour of every class: evenly spaced saturated hues, float ``(K, 3)`` RGB in [0, 1]."""
    return np.array([colorsys.hsv_to_rgb(k / num_classes, 0.95, 0.95) for k in range(num_classes)], dtype=np.float32)


class SyntheticWSOL(Dataset):
    """Seeded synthetic WSOL images following the cirlib dataset item contract.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (different seeds per split).
        size: number of images; default :data:`DEFAULT_SPLIT_SIZES` (6000 / 1000 / 1000).
        image_size: ``int`` for square images or ``(H, W)``.
        num_classes: number of classes :math:`K` (2 to 60; head hues must stay distinguishable).
        seed: base seed; the same seed gives the same bytes.
        transform: optional WSOL transform on ``(image uint8, boxes XYXY, mask)`` returning a normalised
            float image (see :mod:`cirlib.data.transforms`); default: to float and normalise with
            :attr:`mean` / :attr:`std`.
        cache: keep rendered images in memory (about 20 KB per 64x64 image).
        mean: per-channel mean for normalisation (default :data:`SYNTHETIC_MEAN`).
        std: per-channel std (default :data:`SYNTHETIC_STD`).
        **knobs: any :class:`SyntheticSpec` field (e.g. ``head_radius=0.1``).

    Items are dicts ``{"image": float (3, H, W), "label": int, "boxes": float (1, 4) inclusive,
    "mask": bool (H, W), "image_id": "synthetic/<split>/<index>"}``.
    """

    def __init__(
        self,
        split: str = "train",
        size: int | None = None,
        image_size: int | Sequence[int] = 64,
        num_classes: int = 10,
        seed: int = 0,
        transform: WSOLTransform | None = None,
        cache: bool = True,
        mean: Sequence[float] = SYNTHETIC_MEAN,
        std: Sequence[float] = SYNTHETIC_STD,
        **knobs,
    ) -> None:
        validate_choice("split", split, sorted(_SPLIT_CODES), prefix="SyntheticWSOL: ")
        unknown = set(knobs) - set(SyntheticSpec.__dataclass_fields__)
        if unknown:
            raise TypeError(
                f"SyntheticWSOL: unknown parameter(s) {sorted(unknown)}; generator knobs are "
                f"{sorted(SyntheticSpec.__dataclass_fields__)}."
            )
        self.spec = SyntheticSpec(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in knobs.items()})
        self.spec.validate()
        if isinstance(image_size, int):
            hw = (image_size, image_size)
        else:
            hw = tuple(int(s) for s in image_size)
        if len(hw) != 2 or min(hw) < 16:
            raise ValueError(f"SyntheticWSOL: image_size={image_size!r} must be an int or (H, W), each >= 16.")
        if not 2 <= num_classes <= 60:
            raise ValueError(f"SyntheticWSOL: num_classes={num_classes} must lie in [2, 60].")
        self.split = split
        self.size = DEFAULT_SPLIT_SIZES[split] if size is None else int(size)
        if self.size < 1:
            raise ValueError(f"SyntheticWSOL: size={size} must be >= 1.")
        self.image_size: tuple[int, int] = hw  # type: ignore[assignment]
        self.num_classes = int(num_classes)
        self.seed = int(seed)
        self.transform = transform
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.class_names = [f"class_{k:02d}" for k in range(self.num_classes)]
        self.num_groups = math.ceil(self.num_classes / self.spec.classes_per_group)
        self.class_to_group = [k // self.spec.classes_per_group for k in range(self.num_classes)]
        self._colors = class_colors(self.num_classes)
        self._split_code = _SPLIT_CODES[split]
        # Exactly balanced labels (up to size % K), shuffled with the split's seed.
        order = np.random.default_rng(np.random.SeedSequence([self.seed, self._split_code, 2**31 - 1]))
        self.labels = order.permutation(np.arange(self.size) % self.num_classes).astype(np.int64)
        self._cache: dict[int, dict] | None = {} if cache else None
        h, w = hw
        self._ys, self._xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self._default_normalize = (
            torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1),
            torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1),
        )

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (
            f"SyntheticWSOL(split={self.split!r}, size={self.size}, image_size={self.image_size}, "
            f"num_classes={self.num_classes}, seed={self.seed}, spec={asdict(self.spec)})"
        )

    # ------------------------------------------------------------------ rendering
    def _ellipse(
        self, cx: float, cy: float, a: float, b: float, theta: float
    ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray, np.ndarray]:
        """An ellipse inside its bounding window only (fast for small shapes).

        Returns:
            ``(window, inside, u, v)``: the ``(rows, cols)`` slices of the window, the boolean mask of the
            ellipse in it, and the window's pixel coordinates in the ellipse frame (u along the major axis).
        """
        h, w = self.image_size
        c, s = math.cos(theta), math.sin(theta)
        ex = math.sqrt((a * c) ** 2 + (b * s) ** 2)
        ey = math.sqrt((a * s) ** 2 + (b * c) ** 2)
        x0, x1 = max(0, int(math.floor(cx - ex))), min(w, int(math.ceil(cx + ex)) + 1)
        y0, y1 = max(0, int(math.floor(cy - ey))), min(h, int(math.ceil(cy + ey)) + 1)
        window = (slice(y0, max(y0, y1)), slice(x0, max(x0, x1)))
        dx = self._xs[window] - cx
        dy = self._ys[window] - cy
        u = dx * c + dy * s
        v = dy * c - dx * s
        return window, (u / a) ** 2 + (v / b) ** 2 <= 1.0, u, v

    @staticmethod
    def _paint(img: np.ndarray, window, inside: np.ndarray, colour: np.ndarray, tex: np.ndarray | None) -> None:
        patch = img[window]
        if tex is None:
            patch[inside] = colour
        else:
            patch[inside] = colour[None, :] * tex[:, None]

    def render(self, index: int) -> dict:
        """Render image ``index`` without normalisation (cached when ``cache=True``).

        Returns:
            ``{"rgb": uint8 (H, W, 3), "head_mask": bool (H, W), "body_mask": bool (H, W),
            "mask": bool (H, W), "box": int ndarray (4,) inclusive, "label": int, "group": int,
            "pose": dict}``. The arrays are shared with the cache: copy before modifying.
        """
        if not -self.size <= index < self.size:
            raise IndexError(f"SyntheticWSOL index {index} out of range for a split of size {self.size}.")
        index = index % self.size
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        out = self._render(index)
        if self._cache is not None:
            self._cache[index] = out
        return out

    def _render(self, index: int) -> dict:
        spec = self.spec
        h, w = self.image_size
        side = float(min(h, w))
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, self._split_code, index]))
        label = int(self.labels[index])
        group = self.class_to_group[label]

        # Background: smooth colour noise, muted (saturated colours are reserved for heads).
        g = spec.background_grid
        coarse = rng.uniform(0.2, 0.8, size=(g, g, 3)).astype(np.float32)
        grey = coarse.mean(axis=2, keepdims=True)
        coarse = grey + 0.5 * (coarse - grey)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        img += rng.standard_normal(size=img.shape, dtype=np.float32) * np.float32(0.03)

        period = spec.stripe_period * side

        def _muted() -> np.ndarray:
            col = rng.uniform(0.15, 0.85, size=3)
            m = (col[0] + col[1] + col[2]) / 3.0
            return (m + 0.45 * (col - m)).astype(np.float32)

        # Distractors: the same distribution for every class.
        n_dis = int(rng.integers(spec.num_distractors[0], spec.num_distractors[1] + 1))
        for _ in range(n_dis):
            ra = rng.uniform(*spec.distractor_radius) * side
            rb = ra * rng.uniform(0.5, 1.0)
            window, inside, u, v = self._ellipse(
                rng.uniform(0, w), rng.uniform(0, h), max(ra, 1.0), max(rb, 1.0), rng.uniform(0, math.pi)
            )
            col = _muted()
            tex = None
            if rng.random() < spec.distractor_stripe_prob:
                ang = rng.uniform(0, math.pi)
                uu, vv = u[inside], v[inside]
                tex = 1.0 + spec.body_cue_strength * np.sin((uu * math.cos(ang) + vv * math.sin(ang)) * (2 * math.pi / period))
            self._paint(img, window, inside, col, tex)

        # Object pose: body length, aspect, angle; head at the end of the major axis.
        a = 0.5 * rng.uniform(*spec.body_length) * side
        b = a * rng.uniform(*spec.body_aspect)
        theta = rng.uniform(0, 2 * math.pi)
        r = spec.head_radius * side
        c, s = math.cos(theta), math.sin(theta)
        head_off = a + 0.5 * r  # head centre distance from the body centre, overlapping the tip
        # Extent of body U head relative to the body centre (exact for the ellipse, disc bound for head).
        ex = math.sqrt((a * c) ** 2 + (b * s) ** 2)
        ey = math.sqrt((a * s) ** 2 + (b * c) ** 2)
        x_lo, x_hi = min(-ex, head_off * c - r), max(ex, head_off * c + r)
        y_lo, y_hi = min(-ey, head_off * s - r), max(ey, head_off * s + r)
        cx = rng.uniform(-x_lo + 1.0, max(-x_lo + 1.0, w - 2.0 - x_hi))
        cy = rng.uniform(-y_lo + 1.0, max(-y_lo + 1.0, h - 2.0 - y_hi))

        window, inside, u, v = self._ellipse(cx, cy, a, b, theta)
        # Group cue: stripe orientation relative to the body axis.
        phi = math.pi * group / self.num_groups
        if spec.stripe_frame == "image":
            phi -= theta  # u, v rotate with the body: undo the pose so the angle is fixed in the image
        phase = rng.uniform(0, 2 * math.pi)
        uu, vv = u[inside], v[inside]
        tex = 1.0 + spec.body_cue_strength * np.sin((uu * math.cos(phi) + vv * math.sin(phi)) * (2 * math.pi / period) + phase)
        body_colour = _muted()
        if spec.body_tint > 0:
            group_colour = np.array(colorsys.hsv_to_rgb((group + 0.5) / self.num_groups, 0.45, 0.6), dtype=np.float32)
            body_colour = (1.0 - spec.body_tint) * body_colour + spec.body_tint * group_colour
        self._paint(img, window, inside, body_colour, tex)
        body_mask = np.zeros((h, w), dtype=bool)
        body_mask[window] = inside

        hx, hy = cx + head_off * c, cy + head_off * s
        hwin, hinside, _, _ = self._ellipse(hx, hy, r, r, 0.0)
        head_mask = np.zeros((h, w), dtype=bool)
        head_mask[hwin] = hinside
        hue = label / self.num_classes
        val = 0.95 - rng.uniform(0.0, spec.head_jitter)
        img[head_mask] = np.array(colorsys.hsv_to_rgb(hue, 0.95, val), dtype=np.float32)

        rgb = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
        mask = body_mask | head_mask
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        box = np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.int64)
        pose = {"center": (cx, cy), "body_axes": (a, b), "angle": theta, "head_center": (hx, hy), "head_radius": r}
        return {
            "rgb": rgb,
            "head_mask": head_mask,
            "body_mask": body_mask & ~head_mask,
            "mask": mask,
            "box": box,
            "label": label,
            "group": group,
            "pose": pose,
        }

    # ------------------------------------------------------------------ item contract
    def __getitem__(self, index: int) -> dict:
        r = self.render(index)
        index = index % self.size
        image = torch.from_numpy(r["rgb"]).permute(2, 0, 1).contiguous()
        boxes = torch.from_numpy(r["box"]).to(torch.float32).view(1, 4)
        mask = torch.from_numpy(r["mask"]).clone()
        if self.transform is None:
            mean, std = self._default_normalize
            image = (image.to(torch.float32) / 255.0 - mean) / std
        else:
            image, boxes, mask = apply_transform(self.transform, image, boxes, mask)
        return {
            "image": image,
            "label": int(r["label"]),
            "boxes": boxes,
            "mask": mask,
            "image_id": f"synthetic/{self.split}/{index}",
        }

    def denormalize(self, image: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: ``x * std + mean``, clipped to [0, 1]; works on (3,H,W) or (B,3,H,W)."""
        mean = torch.tensor(self.mean, dtype=image.dtype, device=image.device).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=image.dtype, device=image.device).view(3, 1, 1)
        return (image * std + mean).clamp(0.0, 1.0)
