"""Backbones (SmallCNN, VGG16-GAP, ResNet50 stride-1, InceptionV3), the CAM head, weight loading.

The attention modules (CAAM, SSAM) live in :mod:`cirlib.models.attention`.
"""

from cirlib.models.backbones import ARCH_OPTIONS, ARCHS, Backbone, build_backbone
from cirlib.models.heads import CAMHead, class_activation_maps, select_class_maps
from cirlib.models.weights import load_backbone_weights, read_state_dict

__all__ = [
    "ARCHS",
    "ARCH_OPTIONS",
    "Backbone",
    "CAMHead",
    "build_backbone",
    "class_activation_maps",
    "load_backbone_weights",
    "read_state_dict",
    "select_class_maps",
]
