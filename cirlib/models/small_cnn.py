r"""A small CNN backbone that trains in minutes on a laptop CPU (64x64 synthetic images).

Layout with width :math:`w` and ``num_pools`` = 2 (the default, output stride 4)::

    early: conv3x3(3, w)-BN-ReLU, conv3x3(w, w)-BN-ReLU, maxpool2,
           conv3x3(w, 2w)-BN-ReLU, conv3x3(2w, 2w)-BN-ReLU, maxpool2,
    late:  conv3x3(2w, 4w)-BN-ReLU, conv3x3(4w, 4w)-BN-ReLU

``num_pools = 3`` adds a third max-pool at the end of ``early`` (stride 8). A 64x64 image gives a
16x16 (or 8x8) feature map with :math:`4w` channels. ``late`` is the last conv block, so attention
modules can be placed before it.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

__all__ = ["conv_bn_relu", "small_cnn_parts"]


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 convolution (padding 1, no bias), batch norm and ReLU."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            bn=nn.BatchNorm2d(out_channels),
            relu=nn.ReLU(inplace=True),
        )
    )


def small_cnn_parts(
    width: int = 32, in_channels: int = 3, num_pools: int = 2
) -> tuple[nn.Sequential, nn.Sequential, int, int, int]:
    """Build the ``early`` and ``late`` parts of the small CNN.

    Args:
        width: channels of the first block :math:`w` (the blocks have :math:`w, 2w, 4w`).
        in_channels: image channels.
        num_pools: 2 (output stride 4) or 3 (output stride 8).

    Returns:
        ``(early, late, early_channels, out_channels, stride)``.

    Raises:
        ValueError: for a non-positive width or ``num_pools`` outside {1, 2, 3}.
    """
    if int(width) != width or width < 1:
        raise ValueError(f"small_cnn: width must be a positive integer, got {width!r}.")
    if num_pools not in (1, 2, 3):
        raise ValueError(f"small_cnn: num_pools must be 1, 2 or 3 (output stride 2, 4 or 8), got {num_pools!r}.")
    w = int(width)
    early_layers: OrderedDict[str, nn.Module] = OrderedDict()
    early_layers["block1_conv1"] = conv_bn_relu(in_channels, w)
    early_layers["block1_conv2"] = conv_bn_relu(w, w)
    early_layers["pool1"] = nn.MaxPool2d(2)
    early_layers["block2_conv1"] = conv_bn_relu(w, 2 * w)
    early_layers["block2_conv2"] = conv_bn_relu(2 * w, 2 * w)
    if num_pools >= 2:
        early_layers["pool2"] = nn.MaxPool2d(2)
    if num_pools >= 3:
        early_layers["pool3"] = nn.MaxPool2d(2)
    late = nn.Sequential(
        OrderedDict(block3_conv1=conv_bn_relu(2 * w, 4 * w), block3_conv2=conv_bn_relu(4 * w, 4 * w))
    )
    early = nn.Sequential(early_layers)
    for module in list(early.modules()) + list(late.modules()):
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return early, late, 2 * w, 4 * w, 2**num_pools
