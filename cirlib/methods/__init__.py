"""WSOL methods, one module each; :func:`build_model` builds any method of the registry by name.

Which methods exist, their presets, descriptions and costs: :mod:`cirlib.methods.registry`
(:func:`describe_methods` prints them; ``cirlib train --help`` lists them). ``complementary``, ``caam``,
``ssam`` and ``full`` are :class:`cirlib.methods.complementary.ComplementaryModel` with presets;
options given to :func:`build_model` override a preset (e.g. ``complementary`` with
``fusion_loss="stitched"`` for an ablation).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from cirlib.methods.base import WSOLModel
from cirlib.methods.cam import CAMModel, class_activation_maps
from cirlib.methods.has import HaSModel
from cirlib.methods.registry import METHOD_SPECS, METHODS, MethodSpec, get_spec
from cirlib.utils.choices import validate_choice
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
    "METHOD_SPECS",
    "CAMModel",
    "HaSModel",
    "MethodSpec",
    "WSOLModel",
    "build_model",
    "class_activation_maps",
    "complementary_masks",
    "complementary_pair",
    "describe_methods",
    "get_spec",
    "hide_patches",
    "patch_grid_mask",
    "resolve_model_options",
    "sample_patch_size",
    "scale_patch_sizes",
]

def describe_methods() -> str:
    """A one-line description of every method of the registry, one per line (for help texts and notebooks)."""
    width = max(map(len, METHODS))
    return "\n".join(f"{spec.name:<{width}}  {spec.description}" for spec in METHOD_SPECS)


def _accepted_options(cls: type) -> tuple[tuple[str, ...], bool]:
    """Keyword names ``cls.__init__`` accepts beyond (backbone, num_classes), and whether it takes ``**kw``."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    names = tuple(
        p.name for p in params
        if p.name not in ("backbone", "num_classes")
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


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
    from cirlib.models.backbones import MIN_INPUT_SIZE, build_backbone

    cls, backbone_kw, method_kw = _split_options(method, arch, image_size, options)
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
        model.resolved_options = _resolved(cls, arch, backbone_kw, method_kw)
    except AttributeError:
        pass
    return model


def _split_options(
    method: str, arch: str, image_size: int | Sequence[int] | None, options: dict[str, Any]
) -> tuple[type, dict[str, Any], dict[str, Any]]:
    """The model class, backbone options and method options (preset + given) of one model; checks every name."""
    from cirlib.models.backbones import ARCH_OPTIONS, check_arch

    spec = get_spec(method)
    check_arch(arch)
    options = dict(options)
    backbone_kw = dict(options.pop("backbone_options", None) or {})
    for key in list(options):
        if key in ARCH_OPTIONS[arch]:
            backbone_kw[key] = options.pop(key)
    cls = spec.model_class()
    accepted, var_kw = _accepted_options(cls)
    method_kw = dict(spec.presets)
    method_kw.update(options)
    if "image_size" in accepted and image_size is not None:
        method_kw.setdefault("image_size", image_size)
    if not var_kw:
        valid = sorted(set(accepted) | set(ARCH_OPTIONS[arch]) | {"backbone_options"})
        for key in method_kw:
            validate_choice("option", key, valid, prefix=f"Unknown option of method {method!r} with arch {arch!r}: ")
    return cls, backbone_kw, method_kw


def resolve_model_options(
    method: str, arch: str = "small_cnn", image_size: int | Sequence[int] | None = 64, **options: Any
) -> dict[str, Any]:
    """The options :func:`build_model` would build this model with, defaults included, without building it.

    Two configs that build the same model (``{}`` and ``{"cam_from": "backbone"}`` when ``"backbone"``
    is the default) resolve to the same dict; a checkpoint stores this dict (``model_options``), so a
    run's identity does not depend on how its options were spelled nor on restated defaults.

    Returns:
        ``{"method": {option: value}, "backbone": {option: value}}`` (tuples as lists).
    """
    cls, backbone_kw, method_kw = _split_options(method, arch, image_size, options)
    return _resolved(cls, arch, backbone_kw, method_kw)


def _defaults(fn, given: dict[str, Any], skip: int) -> dict[str, Any]:
    """``given`` completed with the keyword defaults of ``fn`` (its first ``skip`` parameters left out)."""
    out = {}
    for p in list(inspect.signature(fn).parameters.values())[skip:]:
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty:
            out[p.name] = p.default
    out.update(given)
    return out


def _resolved(cls: type, arch: str, backbone_kw: dict[str, Any], method_kw: dict[str, Any]) -> dict:
    """The options a model was really built with: the method's and backbone's defaults plus the given ones."""
    from cirlib.models.backbones import backbone_builder

    return {
        "method": _plain(_defaults(cls.__init__, method_kw, skip=3)),
        "backbone": _plain(_defaults(backbone_builder(arch), backbone_kw, skip=0)),
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
