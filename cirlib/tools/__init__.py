"""Developer tooling on top of the library and the runs; never imported by a notebook a student runs.

* :mod:`cirlib.tools.notebooks`: run, strip and check the notebooks, student copies, nbval preparation,
  ``make demo`` (``python -m cirlib.tools.notebooks`` or ``cirlib notebook``);
* :mod:`cirlib.tools.figure_check` and :mod:`cirlib.tools.nbval_figures`: every figure cell shows a figure;
* :mod:`cirlib.tools.site`: the static site of the executed notebooks (``make site``).
"""
