"""Where things live in a checkout: notebooks, figures, results and configs."""

from __future__ import annotations

from pathlib import Path

#: Repository root when cirlib is used from a checkout (``pip install -e .``).
REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
FIGURES_DIR = REPO_ROOT / "figures"
RESULTS_DIR = REPO_ROOT / "results"
#: The one home of trained runs: ``make demo``, ``make results`` and the notebooks' default ``OUTPUT_DIR``.
RUNS_DIR = RESULTS_DIR / "runs"
CONFIGS_DIR = REPO_ROOT / "configs"
DOCS_DIR = REPO_ROOT / "docs"
