"""Exercise checkers of notebook 07: results, and the one rule for evidence (:mod:`cirlib.evidence`)."""

from __future__ import annotations

import re
from typing import Any, Sequence

from cirlib.evidence import Comparison, mean_std
from cirlib.exercises._checking import _as_float, _require, _verdict, checker

__all__ = ["check_07_heldout_verdict", "check_07_is_evidence", "check_07_sample_std"]

#: Key ideas of exercise 07.4 (explain: why one seed's lead is not evidence), for ``check_explanation``.
ONE_SEED_IDEAS = {
    "another seed gives another number: one run is one draw": ("seed", "draw", "random", "luck", "chance"),
    "the full method's own spread over seeds is large (its std)": ("spread", "std", "standard deviation", "varian"),
    "the rule compares the gap with both spreads added": ("both", "sum", "added", "s_a", "combined", "rule"),
    "more seeds (or a held-out set of seeds) would settle it": ("more seeds", "held-out", "heldout", "repeat"),
}

_NO = re.compile(r"\b(no|not|false|same|within|inside|tie|neither|equal|nothing)\b")
_YES = re.compile(r"\b(yes|true|better|evidence|beats|higher|above|counts|significant)\b")


def _as_yes_no(answer: Any, name: str) -> bool:
    """A yes/no answer in any form: ``True``, ``"yes"``, ``"better"``; ``False``, ``"no"``, ``"not better"``."""
    _require(answer, name)
    if isinstance(answer, bool):
        return answer
    text = str(answer).lower()
    if _NO.search(text):
        return False
    if _YES.search(text):
        return True
    raise AssertionError(f"{name}: answer True / False, or in words ('better', 'not better'); got {answer!r}.")


def _rule(summary: dict[str, Any], a: str, b: str) -> Comparison:
    from cirlib.analysis import compare_methods

    return compare_methods(summary, a, b)


@checker
def check_07_heldout_verdict(answer: Any, heldout: Any, tested: Any = None, a: str = "full", b: str = "has") -> None:
    """Exercise 07.1 (predict): on the held-out seeds, does the evidence rule call ``a`` better than ``b``?

    Args:
        answer: the prediction, yes or no in any form (``True``, ``"better"``, ``"not better"``...).
        heldout: :func:`cirlib.runs.results.load_results` of ``results/heldout`` (``None``: not run yet).
        tested: the same of ``results/`` (the seeds the defaults were chosen on), for the comparison.
        a, b: the two methods.
    """
    predicted = _as_yes_no(answer, "answer_1")
    if heldout is None or not {a, b} <= set(heldout.summary):
        print(f"No held-out runs of {a} and {b}: run `python -m cirlib.runs.results --out results/heldout "
              f"--seeds 3 4 5 --methods cam has full` (about half an hour on 2 cores), then this cell again.")
        return
    held = _rule(heldout.summary, a, b)
    before = "" if tested is None else f"; on the seeds the defaults were chosen on: {_rule(tested.summary, a, b)}"
    seeds = ", ".join(str(s) for s in heldout.summary[a].get("seeds", []))
    said = f"held-out seeds {seeds}: {a} {held}{before}"
    return _verdict(
        predicted == held.better,
        f"{said}. Choosing the defaults on seeds 0-2 can only flatter those seeds, so the held-out seeds are the "
        "honest test; with 3 seeds each, the two sets can still give different verdicts.",
        f"{said}. Selection on seeds 0-2 would make the held-out gap smaller, not larger; the spreads of 3 seeds "
        "are themselves noisy, so compare each gap with its own two spreads.",
    )


@checker
def check_07_sample_std(answer: Any, values: Sequence[float]) -> None:
    r"""Exercise 07.2: the sample standard deviation :math:`s = \sqrt{\frac{1}{n-1}\sum (x_i - \bar x)^2}`."""
    value = _as_float(answer, "answer_2")
    mean, expected = mean_std(values)
    population = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    if abs(value - population) < 1e-6 and abs(value - expected) > 1e-6:
        raise AssertionError("Not quite. Hint: that is the population std (divide by n); results.json uses n - 1.")
    return _verdict(
        abs(value - expected) < 1e-6,
        f"s = {expected:.3f}. By the evidence rule, a gap between this method and another counts only when it "
        "exceeds the sum of the two methods' s (cirlib.evidence.compare).",
        "divide the sum of squared deviations from the mean by n - 1, then take the square root.",
    )


@checker
def check_07_is_evidence(answer: Any, c: Comparison) -> None:
    """Exercise 07.3: is A's lead over B evidence by the rule (gap > s_a + s_b)? Yes or no in any form.

    Args:
        answer: yes or no in any form (``False``, ``"not better"``...).
        c: A against B (:func:`cirlib.analysis.compare_methods`).
    """
    said = _as_yes_no(answer, "answer_3")
    return _verdict(
        said == c.better,
        f"{c}: " + ("the gap exceeds the two spreads combined." if c.better else
                    "the seeds alone could produce this gap; say 'not better'."),
        "add the two standard deviations and compare the sum with the gap of the means.",
    )
