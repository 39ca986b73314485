"""WSOL methods, one module each, and the :func:`build_model` registry.

========================  =====================================================================
method                    what it is
========================  =====================================================================
``cam``                   CAM baseline: backbone + 1x1-conv classifier + GAP, cross-entropy
``has``                   Hide-and-Seek: CAM trained on images with random hidden patches
``complementary``         two complementary images per input, shared backbone, two classifiers
``caam``                  ``complementary`` + channel-wise assisted attention (CAAM)
``ssam``                  ``complementary`` + spatial self-attention (SSAM)
``full``                  CAAM + SSAM + the attention-based fusion loss (``"max"``)
========================  =====================================================================

The last four are :class:`cirlib.methods.complementary.ComplementaryModel` with presets; options
given to :func:`build_model` override a preset (e.g. ``complementary`` with
``fusion_loss="stitched"`` for an ablation).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from typing import Any

from cirlib.methods.base import WSOLModel
from cirlib.methods.cam import CAMModel, class_activation_maps
from cirlib.methods.fusion_loss import DEFAULT_FUSION_LOSS
from cirlib.methods.has import HaSModel
from cirlib.methods.masks import (
    complementary_masks,
    complementary_pair,
    hide_patches,
    patch_grid_mask,
    sample_patch_size,
    scale_patch_sizes,
)

__all__ = [
    "METHODS",
    "CAMModel",
    "HaSModel",
    "WSOLModel",
    "build_model",
    "class_activation_maps",
    "complementary_masks",
    "complementary_pair",
    "describe_methods",
    "hide_patches",
    "patch_grid_mask",
    "sample_patch_size",
    "scale_patch_sizes",
]

#: Method names understood by :func:`build_model`.
METHODS: tuple[str, ...] = ("cam", "has", "complementary", "caam", "ssam", "full")

_DESCRIPTIONS: dict[str, str] = {
    "cam": "CAM baseline: backbone + 1x1-conv classifier + GAP, cross-entropy on the full image",
    "has": "Hide-and-Seek: CAM trained on images with random square patches hidden (p = 0.5)",
    "complementary": "two complementary images (M*I, (1-M)*I), shared backbone, two classifiers",
    "caam": "complementary + channel-wise assisted attention module (CAAM) between the branches",
    "ssam": "complementary + spatial self-attention module (SSAM) in each branch",
    "full": "complementary + CAAM + SSAM + attention-based fusion loss ('max')",
}

# Presets of ComplementaryModel(backbone, num_classes, *, use_caam, use_ssam, fusion_loss, **options).
_COMPLEMENTARY_PRESETS: dict[str, dict[str, Any]] = {
    "complementary": {"use_caam": False, "use_ssam": False, "fusion_loss": None},
    "caam": {"use_caam": True, "use_ssam": False, "fusion_loss": None},
    "ssam": {"use_caam": False, "use_ssam": True, "fusion_loss": None},
    "full": {"use_caam": True, "use_ssam": True, "fusion_loss": DEFAULT_FUSION_LOSS},
}


def describe_methods() -> str:
    """A one-line description of every method, one per line (for help texts and notebooks)."""
    width = max(map(len, METHODS))
    return "\n".join(f"{name:<{width}}  {_DESCRIPTIONS[name]}" for name in METHODS)


def _did_you_mean(value: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(value), list(valid), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _accepted_options(cls: type) -> tuple[tuple[str, ...], bool]:
    """Keyword names ``cls.__init__`` accepts beyond (backbone, num_classes), and whether it takes ``**kw``."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    names = tuple(
        p.name for p in params
        if p.name not in ("backbone", "num_classes")
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def _method_class(method: str) -> type:
    if method == "cam":
        return CAMModel
    if method == "has":
        return HaSModel
    try:  # built by another module; imported lazily so cam/has work without it
        from cirlib.methods.complementary import ComplementaryModel
    except ImportError as exc:
        raise ImportError(
            f"method {method!r} needs cirlib.methods.complementary.ComplementaryModel, which could not "
            f"be imported ({exc})."
        ) from exc
    return ComplementaryModel


def _short_side(image_size: int | Sequence[int] | None) -> int | None:
    if image_size is None:
        return None
    if isinstance(image_size, int):
        return image_size
    return min(int(v) for v in image_size)


def build_model(
    method: str,
    arch: str = "small_cnn",
    num_classes: int = 10,
    pretrained: str | None = None,
    image_size: int | Sequence[int] | None = 64,
    **options: Any,
) -> WSOLModel:
    """Build a WSOL model by name.

    Args:
        method: one of :data:`METHODS`.
        arch: backbone, one of :data:`cirlib.models.ARCHS`.
        num_classes: number of classes.
        pretrained: backbone weights: ``None``, ``"imagenet"`` or a local ``.pth`` path.
        image_size: training image side (or ``(H, W)``); checked against the backbone's minimum
            input size and passed to methods whose constructor takes ``image_size``.
        **options: backbone options (see :data:`cirlib.models.ARCH_OPTIONS`, e.g. ``width`` for
            ``small_cnn``; or a ``backbone_options`` dict) and method options (e.g. ``patch_sizes``,
            ``hide_prob``, ``fill`` for ``has``). Options override the presets of the
            complementary family.

    Returns:
        The model; ``model.method`` is ``method``.

    Raises:
        ValueError: unknown method, arch or option (the message lists the valid names), or an
            image size below the backbone's minimum.
    """
    from cirlib.models.backbones import ARCH_OPTIONS, MIN_INPUT_SIZE, build_backbone, check_arch

    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; valid: {', '.join(METHODS)}.{_did_you_mean(method, METHODS)}")
    check_arch(arch)
    backbone_kw = dict(options.pop("backbone_options", None) or {})
    for key in list(options):
        if key in ARCH_OPTIONS[arch]:
            backbone_kw[key] = options.pop(key)

    cls = _method_class(method)
    accepted, var_kw = _accepted_options(cls)
    method_kw = dict(_COMPLEMENTARY_PRESETS.get(method, {}))
    method_kw.update(options)
    if "image_size" in accepted and image_size is not None:
        method_kw.setdefault("image_size", image_size)
    if not var_kw:
        unknown = [k for k in method_kw if k not in accepted]
        if unknown:
            valid = sorted(set(accepted) | set(ARCH_OPTIONS[arch]) | {"backbone_options"})
            hints = "".join(_did_you_mean(k, valid) for k in unknown)
            raise ValueError(
                f"Unknown option(s) {unknown} for method {method!r} with arch {arch!r}; "
                f"valid: {', '.join(valid)}.{hints}"
            )

    short = _short_side(image_size)

    def check_size(min_size: int) -> None:
        if short is not None and short < min_size:
            raise ValueError(
                f"image_size {image_size!r} is too small for arch {arch!r} (needs >= {min_size} px "
                "on the shorter side); raise data.image_size or pick another arch."
            )

    check_size(MIN_INPUT_SIZE[arch])  # before building: large backbones take seconds
    backbone = build_backbone(arch, pretrained=pretrained, **backbone_kw)
    check_size(backbone.min_input_size)
    try:
        model = cls(backbone, num_classes, **method_kw)
    except TypeError as exc:
        raise ValueError(f"Bad options for method {method!r}: {exc}") from exc
    try:
        model.method = method
    except AttributeError:
        pass
    try:  # what `--resume` compares and checkpoints store: every option, defaults included
        model.resolved_options = resolved_model_options(cls, arch, backbone_kw, method_kw)
    except AttributeError:
        pass
    return model


def _defaults(fn, given: dict[str, Any], skip: int) -> dict[str, Any]:
    """``given`` completed with the keyword defaults of ``fn`` (its first ``skip`` parameters left out)."""
    out = {}
    for p in list(inspect.signature(fn).parameters.values())[skip:]:
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty:
            out[p.name] = p.default
    out.update(given)
    return out


def resolved_model_options(cls: type, arch: str, backbone_kw: dict[str, Any], method_kw: dict[str, Any]) -> dict:
    """The options a model was really built with: the method's and backbone's defaults plus the given ones.

    Two configs that build the same model (``{}`` and ``{fusion_weight: 1.0}`` when 1.0 is the
    default) resolve to the same dict, so resuming compares models, not spellings.
    """
    from cirlib.models.backbones import _BUILDERS

    return {
        "method": _plain(_defaults(cls.__init__, method_kw, skip=3)),
        "backbone": _plain(_defaults(_BUILDERS[arch], backbone_kw, skip=0)),
    }


def _plain(value: Any) -> Any:
    """Tuples to lists (as YAML and checkpoints store them), recursively, for comparisons."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)  # checkpoints load weights-only: keep them free of arbitrary objects
