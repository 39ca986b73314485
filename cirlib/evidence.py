r"""The project's one rule for evidence: when does a gap between two methods count?

Every method is trained on a few seeds, so each score is a mean with a spread. Notebook 07 states the
rule and every notebook, claim check and exercise checker uses it through this module:

.. math::

    \text{A is better than B} \iff \bar a - \bar b > s_a + s_b ,

where :math:`\bar a, \bar b` are the means over seeds and :math:`s_a, s_b` the sample standard
deviations (``ddof=1``). A gap inside the two spreads combined is "not better": the seeds alone
could produce it. The rule is deliberately conservative and simple; with three seeds a formal test
would have little power anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["Comparison", "compare", "mean_std"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"need finite scores, got {list(values)!r}")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


@dataclass(frozen=True)
class Comparison:
    """A compared with B under the rule above (``gap = mean_a - mean_b``, ``spread = s_a + s_b``)."""

    mean_a: float
    mean_b: float
    gap: float
    spread: float

    @property
    def better(self) -> bool:
        """A is better than B: the gap exceeds the two spreads combined."""
        return self.gap > self.spread

    @property
    def worse(self) -> bool:
        """B is better than A."""
        return -self.gap > self.spread

    @property
    def verdict(self) -> str:
        """``"better"``, ``"worse"`` or ``"not different"`` (a gap inside the spread)."""
        return "better" if self.better else "worse" if self.worse else "not different"

    def __str__(self) -> str:
        return f"{self.mean_a:.1f} vs {self.mean_b:.1f}: gap {self.gap:+.1f}, spread {self.spread:.1f} -> {self.verdict}"


def compare(a: Sequence[float] | float, b: Sequence[float] | float,
            std_a: float | None = None, std_b: float | None = None) -> Comparison:
    """Compare method A with method B, from their per-seed scores or from (mean, std) pairs.

    ``compare([70.1, 72.3, 68.0], [74.0, 71.2, 77.5])`` uses the seeds; ``compare(71.6, 74.2, 3.3, 3.8)``
    uses means and standard deviations as a results table gives them.
    """
    if std_a is None and std_b is None:
        (ma, sa), (mb, sb) = mean_std(a), mean_std(b)  # type: ignore[arg-type]
    elif std_a is not None and std_b is not None:
        ma, sa, mb, sb = float(a), float(std_a), float(b), float(std_b)  # type: ignore[arg-type]
    else:
        raise ValueError("give both std_a and std_b, or per-seed score lists for both methods")
    if not all(math.isfinite(x) for x in (ma, sa, mb, sb)) or sa < 0 or sb < 0:
        raise ValueError(f"means and spreads must be finite, spreads >= 0: {ma}, {sa}, {mb}, {sb}")
    return Comparison(ma, mb, ma - mb, sa + sb)
