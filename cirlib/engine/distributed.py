"""Distributed helpers: process-group set-up, rank queries, samplers that resume and shard.

``torchrun --nproc_per_node=N -m cirlib train ...`` sets ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE``; :func:`init_distributed` reads them and starts a process group (``gloo`` on the
CPU, ``nccl`` on CUDA). Every helper here also works without a process group (one process).
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler, Sampler

__all__ = [
    "LossAdapter",
    "ResumableDistributedSampler",
    "ShardSampler",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "gather_objects",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main_process",
]


def is_distributed() -> bool:
    """True when a process group is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0: the only process that writes files."""
    return get_rank() == 0


def init_distributed(device_type: str) -> bool:
    """Start a process group when launched by ``torchrun`` with ``WORLD_SIZE > 1``.

    Args:
        device_type: ``"cuda"`` selects the ``nccl`` backend, anything else ``gloo``.

    Returns:
        True when this call created the process group (the caller then destroys it).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available() or dist.is_initialized():
        return False
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def barrier() -> None:
    """Wait for every process (no-op with one process)."""
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over processes (returns it unchanged with one process)."""
    if is_distributed():
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_objects(obj: Any) -> list[Any] | None:
    """Gather one picklable object per rank on rank 0 (``[obj]`` with one process).

    Returns:
        The list of every rank's object on rank 0, ``None`` on the other ranks.
    """
    if not is_distributed():
        return [obj]
    out = [None] * get_world_size() if is_main_process() else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_object(obj: Any) -> Any:
    """Send rank 0's ``obj`` to every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class LossAdapter(nn.Module):
    """Make ``model.training_loss`` the ``forward`` so that DDP can wrap it.

    DDP only all-reduces gradients of computations that go through the wrapped module's
    ``forward``; WSOL models train through ``training_loss(images, labels)`` instead, so this
    adapter's ``forward`` calls it.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> dict:  # noqa: D102
        return self.model.training_loss(images, labels)


class ResumableDistributedSampler(DistributedSampler):
    """A ``DistributedSampler`` whose epoch can start part-way, for exact mid-epoch resume.

    The order of epoch ``e`` is a permutation drawn from a generator seeded with ``seed + e``
    (as in ``DistributedSampler``), so it depends on nothing but the seed and the epoch: a
    resumed run sees the same order as an uninterrupted one. ``set_start(k)`` skips this
    rank's first ``k`` indices of the current epoch (the batches already trained on).

    Works without a process group (``num_replicas=1, rank=0`` by default).
    """

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            num_replicas=get_world_size() if num_replicas is None else num_replicas,
            rank=get_rank() if rank is None else rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's share of the current epoch."""
        if start < 0 or start > self.num_samples:
            raise ValueError(f"set_start({start}): must be in [0, {self.num_samples}].")
        self.start = start

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Evaluation shard: rank ``r`` of ``n`` gets indices ``r, r + n, r + 2n, ...`` in order.

    Unlike ``DistributedSampler`` it never pads with duplicates, so the shards together are
    exactly the dataset and gathered metrics equal a single-process evaluation.
    """

    def __init__(self, dataset_len: int, num_replicas: int | None = None, rank: int | None = None) -> None:
        self.dataset_len = int(dataset_len)
        self.num_replicas = get_world_size() if num_replicas is None else num_replicas
        self.rank = get_rank() if rank is None else rank

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.dataset_len, self.num_replicas))

    def __len__(self) -> int:
        return max(0, math.ceil((self.dataset_len - self.rank) / self.num_replicas))
