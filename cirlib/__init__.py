"""cirlib: complementary image regions for weakly supervised object localization.

An educational reproduction of Babar & Das, *Where to Look?: Mining Complementary Image
Regions for Weakly Supervised Object Localization* (WACV 2021). See ``docs/architecture.md``
for the package layout and ``docs/reconstruction.md`` for every choice the paper leaves open.
"""

__version__ = "0.1.0"
