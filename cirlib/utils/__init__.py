"""Small helpers shared by the whole package: seeding, atomic file writes, devices."""

from cirlib.utils.device import resolve_device
from cirlib.utils.io import atomic_torch_save, atomic_write_json, atomic_write_text
from cirlib.utils.seed import seed_everything, seeded_generator

__all__ = [
    "atomic_torch_save",
    "atomic_write_json",
    "atomic_write_text",
    "resolve_device",
    "seed_everything",
    "seeded_generator",
]
