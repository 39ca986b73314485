r"""Backbones with one contract: ``early`` then ``late``, a feature map ``(B, C, h, w)``.

Every backbone built by :func:`build_backbone` is a :class:`Backbone`: an ``nn.Module`` whose
``forward(x)`` equals ``late(early(x))``. ``late`` is the last convolutional block, so an attention
module can be placed either after the whole backbone or between ``early`` and ``late``.

Architectures (random initialisation unless ``pretrained`` is given):

* ``small_cnn``: 6 conv-BN-ReLU layers, stride 4 (:mod:`cirlib.models.small_cnn`); trains on a CPU.
* ``vgg16``: VGG16-GAP as in the wsolevaluation benchmark (Choe et al., CVPR 2020): the 13 conv
  layers of VGG16 without the last max-pool (stride 16), then an added
  ``conv3x3(512, 1024)``-ReLU (``late``, a new layer). 224 px gives 14x14x1024.
* ``resnet50``: torchvision's ResNet50 with the last stage (``layer4``, the ``late`` part) at stride 1,
  as in wsolevaluation (no dilation): output stride 16, 224 px gives 14x14x2048.
  ``large_feature_map=True`` also sets ``layer3`` to stride 1 (stride 8).
* ``inception_v3``: a reconstruction of wsolevaluation's modified InceptionV3 (``InceptionCam``):
  torchvision's InceptionV3 blocks up to ``Mixed_6e`` with the first conv padded (padding 1),
  ceil-mode max-pools, ``Mixed_6a`` at stride 1 (padding 1, so its weights keep their shapes), the
  auxiliary classifier and ``Mixed_7*`` removed, and two added ``conv3x3``-ReLU layers
  768 -> 1024 -> 1024 (``late``, new layers; named ``SPG_A3_1b``/``SPG_A3_2b`` after the
  benchmark). 224 px gives 13x13x1024; inputs of 75 px and more are supported.
  ``large_feature_map=True`` drops the max-pool before ``Mixed_6a`` (about twice the resolution).

``pretrained`` is ``None`` (random init), ``"imagenet"`` (the torchvision ``IMAGENET1K_V1`` weights,
needs internet or torch's hub cache) or a path to a local ``.pth`` state dict (torchvision key names
or this package's own); see :mod:`cirlib.models.weights`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm
from torchvision.models.inception import InceptionB

from cirlib.models.small_cnn import small_cnn_parts
from cirlib.utils.choices import validate_choice

__all__ = [
    "ARCHS",
    "ARCH_OPTIONS",
    "MIN_INPUT_SIZE",
    "Backbone",
    "InceptionBStride",
    "backbone_builder",
    "build_backbone",
    "check_arch",
]

#: Architectures :func:`build_backbone` knows.
ARCHS: tuple[str, ...] = ("small_cnn", "vgg16", "resnet50", "inception_v3")
#: Keyword options each architecture accepts (besides ``pretrained``).
ARCH_OPTIONS: dict[str, tuple[str, ...]] = {
    "small_cnn": ("width", "in_channels", "num_pools"),
    "vgg16": (),
    "resnet50": ("large_feature_map",),
    "inception_v3": ("large_feature_map",),
}

#: Smallest supported input side per architecture (``small_cnn``: its stride, 4 by default).
MIN_INPUT_SIZE: dict[str, int] = {"small_cnn": 4, "vgg16": 16, "resnet50": 32, "inception_v3": 75}


class Backbone(nn.Module):
    """A feature extractor split into ``early`` and ``late`` parts.

    Attributes:
        early: the layers before the last conv block.
        late: the last conv block; ``forward(x) == late(early(x))``.
        early_channels: channels of ``early``'s output.
        out_channels: channels :math:`C` of the final feature map.
        new_layer_names: names (as in ``named_parameters()``) of parameters that do not come from
            ImageNet weights, trained with the learning-rate multiplier for new layers.
        arch: the architecture name.
        stride: the nominal output stride (input side / feature side, up to border effects).
        pretrained: where the weights came from (``None``, ``"imagenet"`` or a path).
    """

    def __init__(
        self,
        early: nn.Module,
        late: nn.Module,
        early_channels: int,
        out_channels: int,
        new_layer_names: Iterable[str] = (),
        arch: str = "custom",
        stride: int = 1,
        min_input_size: int = 1,
    ) -> None:
        super().__init__()
        self.early = early
        self.late = late
        self.early_channels = int(early_channels)
        self.out_channels = int(out_channels)
        self.new_layer_names: tuple[str, ...] = tuple(new_layer_names)
        self.arch = arch
        self.stride = int(stride)
        self.min_input_size = int(min_input_size)
        self.pretrained: str | None = None
        names = dict(self.named_parameters())
        unknown = [n for n in self.new_layer_names if n not in names]
        if unknown:
            raise ValueError(f"Backbone({arch}): new_layer_names not among the parameters: {unknown}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, C, h, w)`` of images ``(B, 3, H, W)``."""
        if x.ndim != 4:
            raise ValueError(f"{self.arch}: expected images of shape (B, C, H, W), got {tuple(x.shape)}.")
        if min(x.shape[-2:]) < self.min_input_size:
            raise ValueError(
                f"{self.arch}: input {tuple(x.shape[-2:])} is smaller than the minimum "
                f"{self.min_input_size} px on the shorter side; resize the images (e.g. image_size)."
            )
        return self.late(self.early(x))

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, stride={self.stride}, early_channels={self.early_channels}, "
            f"out_channels={self.out_channels}, pretrained={self.pretrained!r}"
        )


def _init_new_conv(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _build_small_cnn(width: int = 32, in_channels: int = 3, num_pools: int = 2) -> Backbone:
    early, late, c_early, c_out, stride = small_cnn_parts(width, in_channels, num_pools)
    # Trained from scratch: no layer is "new" relative to pretrained weights.
    return Backbone(early, late, c_early, c_out, (), arch="small_cnn", stride=stride, min_input_size=stride)


def _build_vgg16() -> Backbone:
    # Only the conv part: torchvision's vgg16() would also build (and initialise) the 120M-parameter
    # classifier. make_layers(cfgs["D"]) has the same module indices as vgg16().features.
    features = tvm.vgg.make_layers(tvm.vgg.cfgs["D"], batch_norm=False)
    _init_new_conv(features)  # torchvision's VGG init: kaiming normal (fan_out), zero bias
    early = features[:30]  # conv1_1 ... conv5_3 + ReLU, without pool5; keys "0".."29" kept
    late = nn.Sequential(
        OrderedDict(conv6=nn.Conv2d(512, 1024, kernel_size=3, padding=1), relu6=nn.ReLU(inplace=True))
    )
    _init_new_conv(late)
    new = [f"late.{n}" for n, _ in late.named_parameters()]
    return Backbone(early, late, 512, 1024, new, arch="vgg16", stride=16, min_input_size=MIN_INPUT_SIZE["vgg16"])


def _build_resnet50(large_feature_map: bool = False) -> Backbone:
    net = tvm.resnet50(weights=None)
    # Stride 1 in the last stage without dilation, as wsolevaluation's ResNet50-CAM.
    # torchvision's Bottleneck (v1.5) strides in conv2 and in the downsample conv.
    stages = [net.layer4] + ([net.layer3] if large_feature_map else [])
    for stage in stages:
        stage[0].conv2.stride = (1, 1)
        stage[0].downsample[0].stride = (1, 1)
    early = nn.Sequential(
        OrderedDict(
            conv1=net.conv1, bn1=net.bn1, relu=net.relu, maxpool=net.maxpool,
            layer1=net.layer1, layer2=net.layer2, layer3=net.layer3,
        )
    )
    late = nn.Sequential(OrderedDict(layer4=net.layer4))
    stride = 8 if large_feature_map else 16
    return Backbone(early, late, 1024, 2048, (), arch="resnet50", stride=stride, min_input_size=MIN_INPUT_SIZE["resnet50"])


class InceptionBStride(InceptionB):
    """torchvision's ``InceptionB`` with a configurable kernel/stride/padding (wsolevaluation style).

    With ``stride=1, padding=1`` the block keeps the spatial size instead of halving it; the
    parameter names and shapes are those of torchvision's ``Mixed_6a``, so ImageNet weights load.
    """

    def __init__(self, in_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__(in_channels)
        for conv in (self.branch3x3.conv, self.branch3x3dbl_3.conv):
            conv.stride = (stride, stride)
            conv.padding = (padding, padding)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        return [branch3x3, branch3x3dbl, branch_pool]


def _build_inception_v3(large_feature_map: bool = False) -> Backbone:
    net = tvm.inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    net.Conv2d_1a_3x3.conv.padding = (1, 1)
    mixed_6a = InceptionBStride(288, kernel_size=3, stride=1, padding=1)
    mixed_6a.load_state_dict(net.Mixed_6a.state_dict())  # same shapes; keep torchvision's init
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        Conv2d_1a_3x3=net.Conv2d_1a_3x3,
        Conv2d_2a_3x3=net.Conv2d_2a_3x3,
        Conv2d_2b_3x3=net.Conv2d_2b_3x3,
        maxpool1=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Conv2d_3b_1x1=net.Conv2d_3b_1x1,
        Conv2d_4a_3x3=net.Conv2d_4a_3x3,
        maxpool2=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Mixed_5b=net.Mixed_5b,
        Mixed_5c=net.Mixed_5c,
        Mixed_5d=net.Mixed_5d,
    )
    if not large_feature_map:
        layers["maxpool3"] = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
    layers.update(
        Mixed_6a=mixed_6a, Mixed_6b=net.Mixed_6b, Mixed_6c=net.Mixed_6c, Mixed_6d=net.Mixed_6d, Mixed_6e=net.Mixed_6e
    )
    late = nn.Sequential(
        OrderedDict(
            SPG_A3_1b=nn.Sequential(nn.Conv2d(768, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True)),
            SPG_A3_2b=nn.Sequential(nn.Conv2d(1024, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True)),
        )
    )
    _init_new_conv(late)
    new = [f"late.{n}" for n, _ in late.named_parameters()]
    stride = 8 if large_feature_map else 16
    return Backbone(nn.Sequential(layers), late, 768, 1024, new, arch="inception_v3", stride=stride, min_input_size=MIN_INPUT_SIZE["inception_v3"])


_BUILDERS = {
    "small_cnn": _build_small_cnn,
    "vgg16": _build_vgg16,
    "resnet50": _build_resnet50,
    "inception_v3": _build_inception_v3,
}


def check_arch(arch: str) -> str:
    """Return ``arch`` if known, else raise a ``ValueError`` listing the valid names."""
    return validate_choice("arch", arch, ARCHS, prefix="Unknown backbone: ")


def backbone_builder(arch: str) -> Callable[..., Backbone]:
    """The function that builds ``arch`` from its options (its keyword defaults are the backbone's defaults)."""
    return _BUILDERS[check_arch(arch)]


def build_backbone(arch: str, pretrained: str | None = None, **kw) -> Backbone:
    """Build a :class:`Backbone` by name.

    Args:
        arch: one of :data:`ARCHS`.
        pretrained: ``None`` (random init), ``"imagenet"`` (torchvision ``IMAGENET1K_V1`` weights;
            needs internet or a hub cache) or a path to a local ``.pth`` state dict (torchvision or
            cirlib key names; missing/unexpected keys are an error naming them).
        **kw: architecture options, see :data:`ARCH_OPTIONS` (e.g. ``width`` for ``small_cnn``,
            ``large_feature_map`` for ``resnet50``/``inception_v3``).

    Returns:
        The backbone, in train mode.

    Raises:
        ValueError: unknown arch or option, or weights that do not fit.
        RuntimeError: ImageNet weights requested but not reachable (pass a local file instead).
    """
    builder = backbone_builder(arch)
    for key in kw:
        validate_choice("option", key, ARCH_OPTIONS[arch], prefix=f"Unknown option of arch {arch!r}: ")
    backbone = builder(**kw)
    if pretrained is not None:
        from cirlib.models.weights import load_backbone_weights

        load_backbone_weights(backbone, pretrained)
    return backbone
