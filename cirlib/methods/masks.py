r"""Patch masks for Hide-and-Seek and for complementary image pairs.

Every mask here lives on the same grid: the image (``H x W``, square or not) is cut into square
patches of side :math:`s` starting at the top-left corner ``(0, 0)``; the last row and column of
patches are cut at the border when :math:`H` or :math:`W` is not a multiple of :math:`s`, so there
are :math:`\lceil H/s \rceil \times \lceil W/s \rceil` patches. Each patch is hidden independently
with probability :math:`p`. The mask :math:`M \in \{0, 1\}^{H \times W}` is ``True`` (1) where the
pixel is **visible**:

.. math::

    M(i, j) = 1 - h_{\lfloor i/s \rfloor, \lfloor j/s \rfloor}, \qquad
    h_{u,v} \sim \mathrm{Bernoulli}(p) \text{ i.i.d.}

Hide-and-Seek (Singh & Lee, 2017) trains on :math:`\tilde I = M \odot I + (1 - M)\,\mu`; the
complementary pair of the paper keeps what HaS throws away:

.. math::

    I_1 = M \odot I + (1 - M)\,\mu, \qquad I_2 = (1 - M) \odot I + M\,\mu,

so every pixel is shown in exactly one of :math:`I_1, I_2` (and :math:`I_1 + I_2 = I + \mu`).
:math:`\mu` is the dataset mean, which is ``0`` for images normalised with the dataset mean/std.

Randomness comes from a ``torch.Generator`` when one is given (same seed, same mask), else from
PyTorch's global CPU generator (seeded by :func:`cirlib.utils.seed_everything`). Masks are always
drawn on the CPU and then moved, so a seed gives the same mask on every device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "HAS_PATCH_SIZES",
    "HAS_REFERENCE_SIZE",
    "complementary_masks",
    "complementary_pair",
    "hide_patches",
    "patch_grid_mask",
    "sample_patch_size",
    "scale_patch_sizes",
    "check_patch_options",
    "patch_sizes_for",
]

#: Patch sides used by Hide-and-Seek at 224 px (0 means "hide nothing").
HAS_PATCH_SIZES: tuple[int, ...] = (0, 16, 32, 44, 56)
#: The image side at which :data:`HAS_PATCH_SIZES` are defined.
HAS_REFERENCE_SIZE: int = 224


def _check_patch_args(patch_size: int, hide_prob: float, where: str) -> tuple[int, float]:
    if isinstance(patch_size, bool) or int(patch_size) != patch_size:
        raise ValueError(f"{where}: patch_size must be an integer number of pixels, got {patch_size!r}.")
    patch_size = int(patch_size)
    if patch_size < 0:
        raise ValueError(f"{where}: patch_size must be >= 0 (0 hides nothing), got {patch_size}.")
    hide_prob = float(hide_prob)
    if not 0.0 <= hide_prob <= 1.0 or math.isnan(hide_prob):
        raise ValueError(f"{where}: hide_prob must be a probability in [0, 1], got {hide_prob!r}.")
    return patch_size, hide_prob


def patch_grid_mask(
    batch: int,
    height: int,
    width: int,
    patch_size: int,
    hide_prob: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Draw a random patch mask, ``True`` where the pixel is visible.

    The image is cut into a grid of :math:`\lceil H/s \rceil \times \lceil W/s \rceil` square
    patches of side :math:`s` anchored at ``(0, 0)`` (border patches are cut), and each patch is
    hidden with probability :math:`p`:
    :math:`M(i,j) = 1 - h_{\lfloor i/s \rfloor,\lfloor j/s \rfloor}`,
    :math:`h_{u,v} \sim \mathrm{Bernoulli}(p)`.

    Args:
        batch: number of masks :math:`B` (one independent draw per image).
        height: image height :math:`H` in pixels.
        width: image width :math:`W` in pixels.
        patch_size: patch side :math:`s` in pixels; ``0`` means nothing is hidden. A side larger than
            the image gives a single patch (the whole image hidden with probability :math:`p`).
        hide_prob: probability :math:`p` that a patch is hidden.
        generator: optional CPU ``torch.Generator``; the same seed gives the same mask.
        device: device of the returned mask (drawn on the CPU, then moved).

    Returns:
        ``BoolTensor`` of shape ``(B, 1, H, W)``, ``True`` = visible.

    Raises:
        ValueError: for a negative or non-integer ``patch_size``, ``hide_prob`` outside
            ``[0, 1]`` or non-positive sizes.
    """
    patch_size, hide_prob = _check_patch_args(patch_size, hide_prob, "patch_grid_mask")
    if batch < 0 or height <= 0 or width <= 0:
        raise ValueError(
            f"patch_grid_mask: need batch >= 0 and positive height/width, got "
            f"batch={batch}, height={height}, width={width}."
        )
    if patch_size == 0:
        return torch.ones(batch, 1, height, width, dtype=torch.bool, device=device)
    rows, cols = math.ceil(height / patch_size), math.ceil(width / patch_size)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    hidden = torch.rand(batch, 1, rows, cols, generator=generator, device=gen_device) < hide_prob
    visible = ~hidden
    visible = visible.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    visible = visible[:, :, :height, :width].contiguous()
    return visible.to(device) if device is not None else visible


def _fill_like(images: torch.Tensor, fill: float | torch.Tensor) -> torch.Tensor:
    """Broadcastable fill value: a scalar or a per-channel tensor ``(C,)``."""
    fill_t = torch.as_tensor(fill, dtype=images.dtype, device=images.device)
    if fill_t.ndim == 1:
        if images.ndim != 4 or fill_t.numel() != images.shape[1]:
            raise ValueError(
                f"fill has {fill_t.numel()} values but images have shape {tuple(images.shape)}: "
                "pass a scalar or one value per channel."
            )
        fill_t = fill_t.view(1, -1, 1, 1)
    elif fill_t.ndim != 0:
        raise ValueError(f"fill must be a scalar or a (C,) tensor, got shape {tuple(fill_t.shape)}.")
    return fill_t


def _check_images(images: torch.Tensor, where: str) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{where}: images must be a (B, C, H, W) tensor, got {shape}.")


def hide_patches(
    images: torch.Tensor,
    patch_size: int,
    hide_prob: float,
    fill: float | torch.Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Hide-and-Seek: replace random patches by the fill value.

    :math:`\tilde I = M \odot I + (1 - M)\,\mu` with :math:`M` from :func:`patch_grid_mask`.

    Args:
        images: ``(B, C, H, W)`` batch.
        patch_size: patch side :math:`s` (``0`` hides nothing).
        hide_prob: probability :math:`p` that a patch is hidden.
        fill: :math:`\mu`, a scalar or one value per channel (``0`` for normalised images).
        generator: optional CPU generator for reproducible masks.

    Returns:
        ``(hidden_images, mask)``: images of the input's shape and dtype, and the ``(B, 1, H, W)``
        boolean mask (``True`` = visible).
    """
    _check_images(images, "hide_patches")
    b, _, h, w = images.shape
    mask = patch_grid_mask(b, h, w, patch_size, hide_prob, generator=generator, device=images.device)
    return torch.where(mask, images, _fill_like(images, fill)), mask


def complementary_masks(
    batch: int,
    height: int,
    width: int,
    patch_size: int,
    hide_prob: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A patch mask :math:`M` and its complement :math:`1 - M` (a partition of the image).

    Args:
        batch: number of masks.
        height: image height.
        width: image width.
        patch_size: patch side :math:`s`. With ``0`` nothing is hidden, so :math:`M = 1` and the
            complement is empty (the second image of a pair is entirely :math:`\mu`).
        hide_prob: probability that a patch of :math:`M` is hidden (shown in the complement).
        generator: optional CPU generator for reproducible masks.
        device: device of the returned masks.

    Returns:
        ``(M, ~M)``, two ``BoolTensor`` of shape ``(B, 1, H, W)``; every pixel is ``True`` in exactly one.
    """
    mask = patch_grid_mask(batch, height, width, patch_size, hide_prob, generator=generator, device=device)
    return mask, ~mask


def complementary_pair(
    images: torch.Tensor,
    patch_size: int,
    hide_prob: float = 0.5,
    fill: float | torch.Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Split each image into two complementary images.

    .. math::

        I_1 = M \odot I + (1 - M)\,\mu, \qquad I_2 = (1 - M) \odot I + M\,\mu .

    Args:
        images: ``(B, C, H, W)`` batch.
        patch_size: patch side :math:`s` (``0``: :math:`I_1 = I` and :math:`I_2 = \mu` everywhere).
        hide_prob: probability :math:`p` that a patch is hidden from :math:`I_1` (and shown in :math:`I_2`).
        fill: :math:`\mu`, a scalar or one value per channel (``0`` for normalised images).
        generator: optional CPU generator for reproducible masks.

    Returns:
        ``(I1, I2, M)``: the two images and the ``(B, 1, H, W)`` boolean mask :math:`M` of what
        :math:`I_1` shows (``~M`` is what :math:`I_2` shows).
    """
    _check_images(images, "complementary_pair")
    b, _, h, w = images.shape
    mask, comp = complementary_masks(b, h, w, patch_size, hide_prob, generator=generator, device=images.device)
    mu = _fill_like(images, fill)
    return torch.where(mask, images, mu), torch.where(comp, images, mu), mask


def scale_patch_sizes(
    sizes: Sequence[int] = HAS_PATCH_SIZES,
    image_size: int | Sequence[int] = HAS_REFERENCE_SIZE,
    reference: int = HAS_REFERENCE_SIZE,
) -> tuple[int, ...]:
    r"""Scale patch sides defined at ``reference`` px to an image of another size.

    :math:`s' = \lfloor s \cdot \min(H, W) / r + 1/2 \rfloor` (round half up), at least 1 for
    :math:`s > 0`; a side of 0 ("hide nothing") stays 0. The order (and any repeats) of ``sizes``
    is kept, so sampling uniformly from the result matches sampling from ``sizes``.

    Example: the HaS set ``(0, 16, 32, 44, 56)`` at 64 px gives ``(0, 5, 9, 13, 16)``.

    Args:
        sizes: patch sides at the reference size.
        image_size: the image side, or ``(H, W)``; the shorter side is used.
        reference: the side at which ``sizes`` are defined (224 for HaS).

    Returns:
        The scaled patch sides.
    """
    if isinstance(image_size, int):
        short = image_size
    else:
        dims = [int(v) for v in image_size]
        if len(dims) != 2:
            raise ValueError(f"scale_patch_sizes: image_size must be an int or (H, W), got {image_size!r}.")
        short = min(dims)
    if short <= 0 or reference <= 0:
        raise ValueError(f"scale_patch_sizes: sizes must be positive, got image_size={image_size!r}, reference={reference!r}.")
    out = []
    for s in sizes:
        s_int, _ = _check_patch_args(s, 0.0, "scale_patch_sizes")
        out.append(0 if s_int == 0 else max(1, int(math.floor(s_int * short / reference + 0.5))))
    if not out:
        raise ValueError("scale_patch_sizes: sizes is empty.")
    return tuple(out)


def sample_patch_size(sizes: Sequence[int], generator: torch.Generator | None = None) -> int:
    """Draw one patch side uniformly from ``sizes`` (HaS draws one per batch).

    Args:
        sizes: candidate patch sides.
        generator: optional CPU generator (else PyTorch's global CPU generator).

    Returns:
        One element of ``sizes``.
    """
    sizes = tuple(sizes)
    if not sizes:
        raise ValueError("sample_patch_size: sizes is empty; pass e.g. scale_patch_sizes(image_size=64).")
    index = int(torch.randint(len(sizes), (1,), generator=generator).item())
    return int(sizes[index])


def check_patch_options(
    patch_sizes: Sequence[int] | None, hide_prob: float, where: str
) -> tuple[tuple[int, ...] | None, float]:
    """Check the patch options HaS and the complementary model share: ``(patch_sizes, hide_prob)``.

    Args:
        patch_sizes: fixed patch sides (``>= 0``, non-empty; 0 hides nothing) or ``None`` for the
            HaS set scaled to each batch (:func:`patch_sizes_for`).
        hide_prob: probability that a patch is hidden, in ``[0, 1]``.
        where: the caller, named in error messages.

    Returns:
        ``patch_sizes`` as a tuple of ints (or ``None``) and ``hide_prob`` as a float.
    """
    if patch_sizes is not None:
        patch_sizes = tuple(int(s) for s in patch_sizes)
        if not patch_sizes or any(s < 0 for s in patch_sizes):
            raise ValueError(f"{where}: patch_sizes must be non-empty and >= 0 (0 = no patch), got {patch_sizes!r}.")
    if not 0.0 <= float(hide_prob) <= 1.0:
        raise ValueError(f"{where}: hide_prob must be in [0, 1], got {hide_prob!r}.")
    return patch_sizes, float(hide_prob)


def patch_sizes_for(patch_sizes: Sequence[int] | None, height: int, width: int) -> tuple[int, ...]:
    """The candidate patch sides for ``height x width`` images: ``patch_sizes`` when given, else
    :data:`HAS_PATCH_SIZES` scaled from :data:`HAS_REFERENCE_SIZE` to the shorter side (the one rule
    of HaS and the complementary model)."""
    if patch_sizes is not None:
        return tuple(patch_sizes)
    return scale_patch_sizes(HAS_PATCH_SIZES, (height, width), HAS_REFERENCE_SIZE)
