r"""What a run is built from: datasets, model, loaders, optimizer and learning-rate schedule.

Optimisation follows the reference WSOL benchmark: SGD with momentum 0.9 (Nesterov), weight decay,
a learning rate multiplied by ``new_layer_lr_mult`` for newly added layers
(``model.param_groups``), and a step (or cosine) schedule evaluated per optimisation step
:math:`s` with :math:`S` steps per epoch:

.. math::
    \eta_s = \eta_0 \cdot \gamma^{\lfloor \lfloor s / S \rfloor / k \rfloor} \quad\text{(step)},
    \qquad
    \eta_s = \eta_0 \cdot \tfrac12\bigl(1 + \cos(\pi s / (S E))\bigr) \quad\text{(cosine)}.

The data order of epoch ``e`` depends only on ``(seed, e)`` (:class:`ResumableDistributedSampler`
and the loader's own generator), so a resumed run sees the same batches.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from cirlib.config import ExperimentConfig
from cirlib.data.builders import base_dataset
from cirlib.engine.distributed import ResumableDistributedSampler, ShardSampler
from cirlib.engine.signals import ignore_stop_signals_in_worker

__all__ = [
    "base_dataset",
    "build_data",
    "build_eval_loader",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "build_train_loader",
    "num_classes",
]


def build_optimizer(model: nn.Module, train_cfg) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov, weight decay) over ``model.param_groups(lr, new_layer_lr_mult)``."""
    if hasattr(model, "param_groups"):
        groups = model.param_groups(train_cfg.lr, train_cfg.new_layer_lr_mult)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": train_cfg.lr}]
    return torch.optim.SGD(
        groups,
        lr=train_cfg.lr,
        momentum=train_cfg.momentum,
        nesterov=train_cfg.nesterov,
        weight_decay=train_cfg.weight_decay,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, train_cfg, steps_per_epoch: int):
    """A per-step ``LambdaLR`` implementing the ``step`` / ``cosine`` / ``constant`` schedules."""
    steps_per_epoch = max(1, int(steps_per_epoch))
    total = steps_per_epoch * train_cfg.epochs
    kind, step_every, decay = train_cfg.lr_schedule, train_cfg.lr_step, train_cfg.lr_decay

    def factor(step: int) -> float:
        if kind == "step":
            return decay ** ((step // steps_per_epoch) // step_every)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _limit(dataset, limit: int | None):
    if limit is None or limit >= len(dataset):
        return dataset
    return Subset(dataset, range(limit))


def _collate():
    from cirlib.data import collate_wsol

    return collate_wsol


def build_train_loader(
    dataset, batch_size: int, seed: int = 0, num_workers: int = 0, pin_memory: bool = False, drop_last: bool = True
) -> DataLoader:
    """A training loader whose order depends only on ``(seed, epoch)`` and that resumes mid-epoch.

    Uses :class:`ResumableDistributedSampler` (sharded across ranks under ``torchrun``) and a
    dedicated generator, so the global RNG is not touched by the loader.
    """
    sampler = ResumableDistributedSampler(dataset, shuffle=True, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        collate_fn=_collate(),
        generator=generator,
        persistent_workers=False,
        worker_init_fn=ignore_stop_signals_in_worker if num_workers else None,
    )


def build_eval_loader(dataset, batch_size: int, num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """An evaluation loader in dataset order; under ``torchrun`` each rank gets its shard."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardSampler(len(dataset)),
        num_workers=num_workers,
        pin_memory=pin_memory,
        collate_fn=_collate(),
        worker_init_fn=ignore_stop_signals_in_worker if num_workers else None,
    )


def build_data(config: ExperimentConfig, split: str, train: bool):
    """One split of the config's dataset, limited by ``data.train_limit`` (``train``) or ``data.eval_limit``;
    a training split with ``data.train_per_class`` keeps the first N images of each class."""
    from cirlib.data import build_dataset

    d = config.data
    dataset = build_dataset(d.name, split, root=d.root, image_size=d.image_size, **d.options)
    if train and d.train_per_class is not None:
        from cirlib.data.builders import first_per_class

        chosen = first_per_class(dataset, d.train_per_class)
        # One Subset of the dataset (not nested), so the file checks of prepare_split still see it.
        return Subset(dataset, list(chosen.indices)[: d.train_limit])
    return _limit(dataset, d.train_limit if train else d.eval_limit)


def build_model(config: ExperimentConfig, num_classes: int):
    """The config's model (:func:`cirlib.methods.build_model` with ``model.*`` and ``data.image_size``)."""
    from cirlib.methods import build_model as build

    m = config.model
    return build(
        m.method, m.arch, num_classes, pretrained=m.pretrained, image_size=config.data.image_size, **m.options
    )



def num_classes(dataset) -> int:
    """The number of classes of ``dataset`` (under any ``Subset``)."""
    return int(base_dataset(dataset).num_classes)
