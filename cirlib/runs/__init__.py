"""Runs above the library: the budgets the notebooks, ``make demo`` and ``make results`` share.

* :mod:`cirlib.runs.experiments`: the budgets and the config of each run (:func:`experiment_config`,
  :func:`demo_configs`, :func:`fusion_ablation_configs`), train-time estimates;
* :mod:`cirlib.runs.cache`: :func:`train_or_load`, train once then reuse, and the run identity;
* :mod:`cirlib.runs.pool`: :func:`~cirlib.runs.pool.run_many`, parallel workers for ``make demo``
  and ``make results``;
* :mod:`cirlib.runs.results`: the ablation table of ``make results``
  (``python -m cirlib.runs.results``);
* :mod:`cirlib.runs.machine`: the description of the machine the numbers came from;
* :mod:`cirlib.runs.parameters`: the notebooks' parameters and their checks.

What a notebook imports is here: ``from cirlib.runs import experiment_config, train_or_load``.
"""

from cirlib.runs.cache import TrainedModel, train_or_load
from cirlib.runs.experiments import BUDGETS, demo_configs, experiment_config, fusion_ablation_configs
from cirlib.runs.parameters import NotebookParameterError, validate_notebook_parameters

__all__ = [
    "BUDGETS",
    "NotebookParameterError",
    "TrainedModel",
    "demo_configs",
    "experiment_config",
    "fusion_ablation_configs",
    "train_or_load",
    "validate_notebook_parameters",
]
