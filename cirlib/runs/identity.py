"""The identity of a run: is a finished run the one a config asks for? On how many CPU threads?

* :func:`same_run`: the stored config and the resolved model options (:func:`model_identity`) are
  the config's; :func:`dataset_fingerprint`: the synthetic generator still renders the same images.
* :data:`CPU_TRAIN_THREADS` and :func:`cpu_threads`: on the CPU, runs train and evaluate on one
  thread whatever the machine's core count, because PyTorch's CPU kernels split their sums by thread
  and a different count gives (slightly) different weights; so a notebook in JupyterLab, ``make demo``
  and ``make results`` give the same numbers for the same seed.

:mod:`cirlib.runs.cache` (train once, then reuse) and :mod:`cirlib.runs.shipped` (the repository's
seed-0 runs) both decide with these.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cirlib.config import ExperimentConfig, config_to_dict

__all__ = ["CPU_TRAIN_THREADS", "cpu_threads", "dataset_fingerprint", "model_identity", "same_run"]

#: Threads PyTorch uses while :func:`train_or_load` trains and evaluates on the CPU (see the module docstring).
CPU_TRAIN_THREADS = 1

def model_identity(config: ExperimentConfig) -> dict[str, Any]:
    """The model a config builds, every option resolved (see :func:`cirlib.methods.resolve_model_options`)."""
    from cirlib.methods import resolve_model_options

    return resolve_model_options(config.model.method, config.model.arch, config.data.image_size,
                                 **config.model.options)


def same_run(stored: ExperimentConfig, config: ExperimentConfig, stored_model: dict | None) -> bool:
    """Whether a finished run (its config and the resolved options its checkpoint stores) is ``config``'s run.

    The configs are compared without ``device`` (a CPU-trained checkpoint is the same experiment on
    a GPU) and ``output_dir`` (where the run was found). The model options are compared resolved:
    the checkpoint's ``model_options`` (what the model was really built with, defaults of that
    time included) against what ``config`` builds today, so a config that writes a default out is
    the same run, and a run trained under other defaults is not. A checkpoint without
    ``model_options`` (older) compares the options as written.
    """
    left, right = config_to_dict(stored), config_to_dict(config)
    for d in (left, right):
        d.pop("device", None)
        d.pop("output_dir", None)
        if stored_model:
            d["model"].pop("options", None)
    if left != right:
        return False
    return not stored_model or stored_model == model_identity(config)


@contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (``None``: unchanged), then restore."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def dataset_fingerprint(config: ExperimentConfig, num_images: int = 4) -> str | None:
    """A short hash of the first test images the synthetic generator renders for ``config``.

    Stored beside a finished run, it tells :func:`train_or_load` when the generator's code changed
    under an unchanged config. ``None`` for real datasets (their files are the reference).
    """
    if config.data.name != "synthetic":
        return None
    import hashlib

    from cirlib.data import build_dataset

    dataset = build_dataset("synthetic", "test", image_size=config.data.image_size,
                            size=num_images, **config.data.options)
    digest = hashlib.sha256()
    for index in range(num_images):
        digest.update(dataset.render(index)["rgb"].tobytes())
    return digest.hexdigest()[:16]
