"""Data parallelism under ``torchrun``, and nothing at all without it.

Started by ``torchrun`` (``WORLD_SIZE`` > 1), a run joins the process group
(NCCL on CUDA, Gloo on CPU), wraps the model in DistributedDataParallel and
lets only rank 0 write files and report. Otherwise :class:`World` is a single
process and no ``torch.distributed`` call is made.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints and calls callbacks."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """``device`` narrowed to this process's own GPU under data parallelism."""
        if self.distributed and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over all processes (itself when single)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"Environment variable {name}={value!r} is not an integer.") from None


@contextmanager
def distributed_world(device: torch.device) -> Iterator[World]:
    """The :class:`World` of this process, joined to (and, at the end, out of) its group.

    A process group someone else initialised is used and left open. Ours is
    closed with a barrier first: a rank that tears down while another still
    talks to it can crash the job.
    """
    world = World(
        rank=_env_int("RANK", 0),
        local_rank=_env_int("LOCAL_RANK", 0),
        size=_env_int("WORLD_SIZE", 1),
    )
    if not world.distributed or dist.is_initialized():
        yield world
        return
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield world
    except BaseException:
        # The other ranks may be blocked in a collective; waiting for them here would
        # hang the job instead of letting torchrun see this process fail.
        dist.destroy_process_group()
        raise
    if device.type == "cuda":
        dist.barrier(device_ids=[world.local_rank])
    else:
        dist.barrier()
    dist.destroy_process_group()


def wrap_model(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several processes, else itself."""
    if not world.distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def gradient_sync(model: nn.Module, sync: bool) -> AbstractContextManager:
    """Skip DDP's gradient all-reduce on micro-batches before the last of an accumulation."""
    if sync or not isinstance(model, DistributedDataParallel):
        return nullcontext()
    return model.no_sync()
