"""Training and evaluation engine: :func:`fit`, :class:`Trainer`, :func:`evaluate_model`.

:mod:`cirlib.engine.builders` builds what a run needs from its config (data, model, loaders,
optimizer, schedule); :mod:`cirlib.engine.trainer` is the training loop; :mod:`cirlib.engine.fit`
runs one config end to end. Evaluation (:mod:`cirlib.engine.evaluation`) is kept apart from
training; checkpoints live in :mod:`cirlib.engine.checkpoint` and the ``torchrun``/DDP helpers in
:mod:`cirlib.engine.distributed`.
"""

from cirlib.engine.checkpoint import load_checkpoint, read_checkpoint
from cirlib.engine.distributed import LossAdapter, ResumableDistributedSampler, ShardSampler
from cirlib.engine.evaluation import default_cam_thresholds, evaluate_model
from cirlib.engine.builders import (
    build_data,
    build_eval_loader,
    build_model,
    build_optimizer,
    build_scheduler,
    build_train_loader,
    num_classes,
)
from cirlib.engine.fit import fit
from cirlib.engine.trainer import NonFiniteLossError, RunResult, Trainer

__all__ = [
    "LossAdapter",
    "NonFiniteLossError",
    "ResumableDistributedSampler",
    "RunResult",
    "ShardSampler",
    "Trainer",
    "build_data",
    "build_eval_loader",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "build_train_loader",
    "default_cam_thresholds",
    "evaluate_model",
    "fit",
    "load_checkpoint",
    "num_classes",
    "read_checkpoint",
]
