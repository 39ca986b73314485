"""Exercise checkers of notebook 07: results."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from cirlib.exercises._checking import _require, _as_float, _verdict, checker

__all__ = ['check_07_best_method', 'check_07_maxboxacc_from_curve', 'check_07_sample_std']


@checker
def check_07_best_method(answer: Any, v2_by_method: dict[str, float]) -> None:
    """Exercise 07.1: the method with the highest MaxBoxAccV2 in this run."""
    _require(answer, "answer_1")
    best = max(v2_by_method, key=lambda k: v2_by_method[k])
    ties = [k for k, v in v2_by_method.items() if v == v2_by_method[best]]
    return _verdict(
        str(answer) in ties,
        f"{best} has the highest MaxBoxAccV2 in this run ({v2_by_method[best]:.1f}); one seed, so compare with "
        "the spread over seeds before calling it better.",
        "take the method whose maxboxacc_v2 is largest in the table of this run (a key of the dict).",
    )


@checker
def check_07_maxboxacc_from_curve(answer: Any, curve: Sequence[float]) -> None:
    """Exercise 07.2: MaxBoxAcc at one IoU from its BoxAcc-vs-threshold curve."""
    value = _as_float(answer, "answer_2")
    expected = float(np.max(np.asarray(curve, dtype=float)))
    return _verdict(
        abs(value - expected) < 1e-6,
        f"MaxBoxAcc = {expected:.2f} %: the best point of the curve, i.e. the best single CAM threshold for the "
        "whole test set.",
        "MaxBoxAcc is the best BoxAcc over all CAM thresholds.",
    )


@checker
def check_07_sample_std(answer: Any, values: Sequence[float]) -> None:
    r"""Exercise 07.3: the sample standard deviation :math:`s = \sqrt{\frac{1}{n-1}\sum (x_i - \bar x)^2}`."""
    value = _as_float(answer, "answer_3")
    expected = float(np.std(np.asarray(values, dtype=float), ddof=1))
    if abs(value - float(np.std(values))) < 1e-6 and abs(value - expected) > 1e-6:
        raise AssertionError("Not quite. Hint: that is the population std (divide by n); results.json uses n - 1.")
    return _verdict(
        abs(value - expected) < 1e-6,
        f"s = {expected:.3f}: with 3 seeds a difference smaller than about 2 s between two methods is not evidence.",
        "divide the sum of squared deviations from the mean by n - 1, then take the square root.",
    )
