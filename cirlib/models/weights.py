"""Loading backbone weights: ImageNet through torchvision's weights enums, or a local file.

Three sources are accepted by :func:`load_backbone_weights` (and ``build_backbone(pretrained=...)``):

* ``"imagenet"``: the torchvision ``IMAGENET1K_V1`` weights of the architecture
  (``VGG16_Weights``, ``ResNet50_Weights``, ``Inception_V3_Weights``), fetched by torch's hub (or
  read from its cache, ``$TORCH_HOME``). Without internet this fails with a message that says to
  download the file elsewhere and pass its path.
* a path to a ``.pth``/``.pt`` file holding a state dict with **torchvision key names** (e.g.
  ``torchvision.models.resnet50().state_dict()``), which are mapped onto ``early``/``late``; the
  ImageNet classifier (``fc``, ``classifier``, ``AuxLogits``, ``Mixed_7*``) is dropped.
* a path to a state dict with **cirlib key names** (``early.*``/``late.*``, as
  ``Backbone.state_dict()``), or a whole model/checkpoint (``backbone.*`` keys; nested under
  ``"state_dict"`` or ``"model"``; a DDP ``module.`` prefix is removed).

Loading is strict: a parameter of the backbone that is neither new (``new_layer_names``) nor in the
file, a key of the file that the backbone does not have, or a shape mismatch is an error listing them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "IMAGENET_WEIGHTS",
    "WeightsReport",
    "imagenet_state_dict",
    "load_backbone_weights",
    "map_torchvision_keys",
    "describe_mismatches",
    "read_state_dict",
    "state_dict_mismatches",
]

#: torchvision weights enum (class name, member) per architecture.
IMAGENET_WEIGHTS: dict[str, tuple[str, str]] = {
    "vgg16": ("VGG16_Weights", "IMAGENET1K_V1"),
    "resnet50": ("ResNet50_Weights", "IMAGENET1K_V1"),
    "inception_v3": ("Inception_V3_Weights", "IMAGENET1K_V1"),
}

# Prefixes of torchvision keys that belong to the ImageNet classifier, not to our backbones.
_DROPPED_PREFIXES: dict[str, tuple[str, ...]] = {
    "vgg16": ("classifier.", "features.30."),
    "resnet50": ("fc.",),
    "inception_v3": ("fc.", "AuxLogits.", "Mixed_7a.", "Mixed_7b.", "Mixed_7c."),
}


@dataclass
class WeightsReport:
    """What :func:`load_backbone_weights` did.

    Attributes:
        source: ``"imagenet"`` or the file path.
        loaded: number of tensors copied into the backbone.
        dropped: source keys ignored on purpose (ImageNet classifier heads).
        new_layers: backbone parameters left at their initialisation (new layers).
    """

    source: str
    loaded: int
    dropped: list[str] = field(default_factory=list)
    new_layers: list[str] = field(default_factory=list)


def imagenet_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """The torchvision ImageNet state dict of ``arch`` (hub download or cache).

    Raises:
        ValueError: the architecture has no ImageNet weights (e.g. ``small_cnn``).
        RuntimeError: the weights could not be fetched (no internet): the message says how to
            download them elsewhere and pass the local file.
    """
    if arch not in IMAGENET_WEIGHTS:
        raise ValueError(
            f"pretrained='imagenet' is not available for arch {arch!r} (it is trained from scratch); "
            f"ImageNet weights exist for: {', '.join(IMAGENET_WEIGHTS)}. Use pretrained=None or a local file."
        )
    import torchvision.models as tvm

    enum_name, member = IMAGENET_WEIGHTS[arch]
    weights = getattr(tvm, enum_name)[member]
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # URLError, OSError, hash mismatch, ...
        raise RuntimeError(
            f"Could not load the ImageNet weights torchvision.models.{enum_name}.{member} for arch "
            f"{arch!r} ({type(exc).__name__}: {exc}). This machine probably has no internet access. "
            f"Download {weights.url} on a machine that has, copy it here and pass its path instead: "
            f"pretrained='/path/to/{os.path.basename(weights.url)}' (or put it in the torch hub cache "
            f"{torch.hub.get_dir()}/checkpoints/)."
        ) from exc


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a file, unwrapping checkpoints and DDP prefixes.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file holds no state dict, is damaged or not a ``torch.save`` file, or holds
            pickled code (refused unrun, :func:`cirlib.utils.io.load_torch_file`).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Weights file {str(path)!r} not found. pretrained must be None, 'imagenet' or the path "
            "of an existing .pth state dict."
        )
    from cirlib.utils.io import TorchFileError, load_torch_file

    try:
        obj = load_torch_file(path, map_location="cpu")
    except TorchFileError as exc:
        raise ValueError(
            f"Cannot read the weights file {str(path)!r} (model.pretrained): {exc.reason}. pretrained must be "
            "None, 'imagenet' or a state dict saved with torch.save(model.state_dict(), path)."
        ) from exc
    for key in ("state_dict", "model", "model_state_dict", "model_state"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"{str(path)!r} does not hold a state dict (a mapping of names to tensors); got "
            f"{type(obj).__name__}. Save one with torch.save(model.state_dict(), path)."
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def map_torchvision_keys(
    arch: str, state: Mapping[str, torch.Tensor], backbone: nn.Module
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Map a state dict onto the backbone's key names.

    Keys already in cirlib form (``early.*``/``late.*``) are kept; ``backbone.*`` keys of a whole
    WSOL model are stripped of the prefix (other model keys, e.g. the classifier, are dropped);
    torchvision keys are placed under ``early.``/``late.`` (``vgg16``: ``features.N`` ->
    ``early.N``; ``resnet50``: ``layer4`` -> ``late.layer4``, the rest -> ``early``;
    ``inception_v3``: every kept block -> ``early``).

    Returns:
        ``(mapped, dropped)``: the renamed state dict and the keys dropped on purpose.
    """
    mapped: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    if any(k.startswith("backbone.") for k in state):
        for key, value in state.items():
            if key.startswith("backbone."):
                mapped[key[len("backbone.") :]] = value
            else:
                dropped.append(key)
        return mapped, dropped
    if all(k.startswith(("early.", "late.")) for k in state):
        return dict(state), dropped
    early_names = {name for name, _ in backbone.early.named_children()} if hasattr(backbone, "early") else set()
    for key, value in state.items():
        if key.startswith(_DROPPED_PREFIXES.get(arch, ())):
            dropped.append(key)
        elif arch == "vgg16" and key.startswith("features."):
            mapped["early." + key[len("features.") :]] = value
        elif arch == "resnet50" and key.startswith("layer4."):
            mapped["late." + key] = value
        elif key.split(".", 1)[0] in early_names:
            mapped["early." + key] = value
        else:
            mapped[key] = value  # reported as unexpected below
    return mapped, dropped


def state_dict_mismatches(
    own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], optional: set[str] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """How ``state`` fails to fit a module whose own state dict is ``own``.

    Args:
        own: the module's ``state_dict()``.
        state: the state dict to load.
        optional: keys of ``own`` that ``state`` may lack (new layers, BatchNorm step counters).

    Returns:
        ``(missing, unexpected, shape_mismatches)``: keys of ``own`` absent from ``state``, keys of
        ``state`` absent from ``own``, and ``"key: file (shape) vs model (shape)"`` lines.
    """
    optional = optional or set()
    missing = [k for k in own if k not in state and k not in optional]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    return missing, unexpected, mismatched


def describe_mismatches(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    """One line for an error message: ``"2 shape mismatch(es), e.g. ...; 1 missing key(s), e.g. ..."``."""
    parts = []
    for items, what in ((mismatched, "shape mismatch(es)"), (missing, "missing key(s)"),
                        (unexpected, "unexpected key(s)")):
        if items:
            parts.append(f"{len(items)} {what}, e.g. {items[0]}")
    return "; ".join(parts)


def load_backbone_weights(
    backbone: nn.Module, source: str | os.PathLike, strict: bool = True
) -> WeightsReport:
    """Load ``"imagenet"`` or a local state dict into a :class:`~cirlib.models.backbones.Backbone`.

    Args:
        backbone: the backbone (its ``arch`` attribute selects the key mapping).
        source: ``"imagenet"`` or a file path.
        strict: raise on missing/unexpected keys or shape mismatches (else load what fits).

    Returns:
        A :class:`WeightsReport`.

    Raises:
        ValueError: keys or shapes do not fit (the message lists them).
        FileNotFoundError, RuntimeError: see :func:`read_state_dict`, :func:`imagenet_state_dict`.
    """
    arch = getattr(backbone, "arch", "custom")
    if str(source) == "imagenet":
        state = imagenet_state_dict(arch)
    else:
        state = read_state_dict(source)
    mapped, dropped = map_torchvision_keys(arch, state, backbone)
    own = backbone.state_dict()
    new_layers = set(getattr(backbone, "new_layer_names", ()))
    optional = new_layers | {k for k in own if k.endswith("num_batches_tracked")}
    missing, unexpected, mismatched = state_dict_mismatches(own, mapped, optional)
    if strict and (missing or unexpected or mismatched):
        raise ValueError(
            f"Weights {str(source)!r} do not fit the {arch!r} backbone: "
            f"{describe_mismatches(missing, unexpected, mismatched)}. Expected a torchvision {arch} state dict "
            f"(e.g. torchvision.models.{arch}().state_dict()) or a cirlib backbone/model state dict of the same "
            "arch and options."
        )
    to_load = {k: v for k, v in mapped.items() if k in own and v.shape == own[k].shape}
    backbone.load_state_dict(to_load, strict=False)
    if hasattr(backbone, "pretrained"):
        backbone.pretrained = str(source)
    return WeightsReport(
        source=str(source),
        loaded=len(to_load),
        dropped=dropped,
        new_layers=sorted(k for k in new_layers if k not in mapped),
    )
