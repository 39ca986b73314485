"""Per-map min-max normalisation of class activation maps: the map pipeline's :func:`cirlib.maps.normalize`.

``normalize_cam`` is that very function under the name the metrics' error messages and users know:
the reference's ``normalize_scoremap``, :math:`(A - \\min A) / \\max(A - \\min A)` per ``(H, W)`` map, a
map with NaN (or infinite) values or a constant map becoming zeros.
"""

from __future__ import annotations

from cirlib.maps import normalize as normalize_cam

__all__ = ["normalize_cam"]
