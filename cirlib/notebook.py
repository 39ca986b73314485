"""What every notebook starts with: one import line, one :func:`setup` call, and :func:`claim`.

A notebook opens with its parameters cell (papermill tag ``parameters``) and then::

    from cirlib.notebook import *          # np, torch, plt, F, Path, analysis, viz, exercises, claim, compare
    nb = setup(globals(), "cam")           # checks the parameters, seeds, inline figures; the shared budget

``nb`` (a :class:`Lesson`) holds what the notebooks share: the configuration of a method under the
shared budget (``nb.config("has")``), the test split (``nb.test_set``, ``nb.eval_set``) and where
figures and summaries go.

Findings are prose; the run checks them. A notebook states each finding in a sentence, and the cell
right after checks it::

    claim("SSAM beats HaS at IoU 70", ssam[70] > has[70], ssam=ssam[70], has=has[70])

In the run the prose describes (:data:`DOCUMENTED_RUN`: the default parameters, what ``make demo``
runs) a claim that does not hold stops the notebook with :class:`ClaimError`, so the text a reader
sees is the text the numbers support. In any other run claims are only reported: in a FAST run (CI,
nbval) the model is barely trained and its numbers mean nothing, and with another seed, dataset or
setting the prose is not about that run (a student exploring ``SEED=1`` must not be stopped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

from cirlib import analysis, exercises, viz
from cirlib.evidence import compare
from cirlib.runs import experiment_config, validate_notebook_parameters
from cirlib.utils import atomic_write_json, seed_everything

__all__ = ["F", "Path", "analysis", "claim", "compare", "exercises", "nn", "np", "plt", "setup", "torch", "viz"]


class ClaimError(AssertionError):
    """A finding a notebook states in prose does not hold in this (full) run."""


#: The parameters of the run the notebooks' prose describes (their defaults; ``make demo`` runs them).
#: A parameter absent from a notebook does not count; a test checks these are the notebooks' defaults.
DOCUMENTED_RUN: dict[str, Any] = {"FAST": False, "DATA": "synthetic", "SEED": 0, "EPOCHS": 0, "PATCH_SIZES": "",
                                  "ABLATION_EPOCHS": 0, "FUSION_WEIGHT": 1.0, "RESULTS_FILE": ""}

#: Whether a failed claim stops the run. :func:`setup` sets it: true only in the documented run.
_strict = True


def _format(value: Any) -> str:
    """A number as a sentence would give it: 80.1, 7.4, 0.274, 0.00123."""
    if isinstance(value, (float, np.floating)):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def claim(statement: str, holds: bool, **numbers: Any) -> bool:
    """Check one finding the notebook states in prose; print it with the numbers it rests on.

    Args:
        statement: the finding, as the prose above states it.
        holds: whether this run's numbers support it (a plain comparison, e.g. ``a > b`` or
            ``compare(a, b).better``).
        numbers: the numbers it rests on, printed beside it (``ssam=80.1, has=74.2``).

    Returns:
        ``holds``, for a FAST run that goes on.

    Raises:
        ClaimError: in a full run, when ``holds`` is false: the notebook's text says something this
            run does not support, so the run stops instead of showing it.
    """
    numbers_text = ", ".join(f"{k} {_format(v)}" for k, v in numbers.items())
    line = f"{'holds' if holds else 'DOES NOT HOLD'}: {statement}" + (f" ({numbers_text})" if numbers_text else "")
    if not holds and _strict:
        raise ClaimError(f"{line}. The notebook states this finding; a full run must support it. "
                         f"Rerun with the default parameters, or revise the text and this check together.")
    print(line + ("" if _strict else "  [FAST run: reported, not enforced]"))
    return bool(holds)


@dataclass
class Lesson:
    """The shared settings of one notebook run (what :func:`setup` returns)."""

    run: dict[str, Any]
    method: str
    fast: bool
    figures_dir: str
    output_dir: Path
    _test: Dataset | None = field(default=None, repr=False)

    @property
    def synthetic(self) -> bool:
        """True on the built-in synthetic dataset (part masks exist: head, body, background)."""
        return self.run["data"] == "synthetic"

    def config(self, method: str | None = None, **overrides: Any):
        """The configuration of ``method`` (default: the notebook's) under the shared budget."""
        return experiment_config(method or self.method, **{**self.run, **overrides})

    @property
    def test_set(self) -> Dataset:
        """The whole evaluation split of the shared budget's dataset (built once)."""
        if self._test is None:
            from cirlib.data import build_dataset

            c = self.config()
            d = c.data
            self._test = build_dataset(d.name, c.eval.split, root=d.root, image_size=d.image_size, **d.options)
        return self._test

    @property
    def eval_set(self) -> Dataset:
        """The images the evaluation scores (the first ``eval_limit`` of :attr:`test_set`)."""
        limit = self.config().data.eval_limit or len(self.test_set)
        return Subset(self.test_set, range(min(limit, len(self.test_set))))

    @property
    def show(self) -> dict[str, Any]:
        """``mean`` and ``std`` for :func:`cirlib.viz.show_image` (undo the normalisation)."""
        return {"mean": self.test_set.mean, "std": self.test_set.std}

    def save_figure(self, fig: plt.Figure, name: str) -> None:
        """Save ``fig`` as ``FIGURES_DIR/name.png`` when the run asked for figures (make demo does)."""
        viz.save_figure(fig, self.figures_dir, name)

    def write_summary(self, name: str, payload: dict[str, Any]) -> Path:
        """Write this notebook's numbers to ``OUTPUT_DIR/summary/<name>.json`` (later notebooks read them)."""
        path = self.output_dir / "summary" / f"{name}.json"
        atomic_write_json(path, {"data": self.run["data"], "fast": self.fast, "seed": self.run["seed"], **payload})
        return path


def setup(namespace: dict[str, Any], method: str = "cam") -> Lesson:
    """Check the notebook's parameters, seed everything, draw figures inline; the shared budget.

    Args:
        namespace: the notebook's ``globals()``, holding the parameters cell's values.
        method: the method whose configuration ``nb.config()`` returns by default.
    """
    global _strict
    validate_notebook_parameters(namespace)
    p = namespace
    changed = [f"{k}={p[k]!r}" for k, v in DOCUMENTED_RUN.items() if k in p and p[k] != v]
    _strict = not changed
    seed_everything(p.get("SEED", 0))
    _inline_figures()
    run = dict(seed=p.get("SEED", 0), fast=p.get("FAST", False), data=p.get("DATA", "synthetic"),
               data_root=p.get("DATA_ROOT") or None, epochs=p.get("EPOCHS") or None, device=p.get("DEVICE", "auto"),
               output_dir=p.get("OUTPUT_DIR", "runs"), pretrained=p.get("PRETRAINED"),
               val_split=p.get("VAL_SPLIT") or None)
    lesson = Lesson(run, method, run["fast"], p.get("FIGURES_DIR", ""), Path(run["output_dir"]))
    c = lesson.config()
    print(f"{run['data']} data, {c.data.image_size}-px images, a {c.model.arch} backbone, {c.train.epochs} epochs "
          f"per method, seed {run['seed']}" + ("; FAST: a tiny run that checks the code, its numbers mean nothing"
                                               if run["fast"] else ""))
    if changed:
        print(f"The text describes the default run; this one sets {', '.join(changed)}: its claim checks "
              "report, they do not stop the notebook.")
    return lesson


def _inline_figures() -> None:
    """``%matplotlib inline`` inside IPython, whatever ``MPLBACKEND`` says (scripts and CI set Agg)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with the notebooks extra
        return
    shell = get_ipython()
    if shell is not None:
        shell.run_line_magic("matplotlib", "inline")
