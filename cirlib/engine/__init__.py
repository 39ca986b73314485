"""Training and evaluation engine: :func:`fit`, :class:`Trainer`, :func:`evaluate_model`.

Evaluation (:mod:`cirlib.engine.evaluation`) is kept apart from training
(:mod:`cirlib.engine.trainer`); checkpoints live in :mod:`cirlib.engine.checkpoint` and the
``torchrun``/DDP helpers in :mod:`cirlib.engine.distributed`.
"""

from cirlib.engine.checkpoint import load_checkpoint, read_checkpoint
from cirlib.engine.distributed import LossAdapter, ResumableDistributedSampler, ShardSampler
from cirlib.engine.evaluation import default_cam_thresholds, evaluate_model
from cirlib.engine.trainer import (
    NonFiniteLossError,
    RunResult,
    Trainer,
    build_eval_loader,
    build_optimizer,
    build_scheduler,
    build_train_loader,
    fit,
)

__all__ = [
    "LossAdapter",
    "NonFiniteLossError",
    "ResumableDistributedSampler",
    "RunResult",
    "ShardSampler",
    "Trainer",
    "build_eval_loader",
    "build_optimizer",
    "build_scheduler",
    "build_train_loader",
    "default_cam_thresholds",
    "evaluate_model",
    "fit",
    "load_checkpoint",
    "read_checkpoint",
]
