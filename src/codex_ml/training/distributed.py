"""Data parallelism under ``torchrun``, and nothing at all without it.

Started by ``torchrun`` (several processes, as :mod:`codex_ml.world` reads
them), a run joins the process group (NCCL on CUDA, Gloo on CPU), wraps the
model in DistributedDataParallel and lets only rank 0 write files and report.
Otherwise :class:`World` is a single process and no ``torch.distributed`` call
is made.

Stopping such a run: ``torchrun`` forwards the ``SIGTERM`` or ``SIGINT`` it
gets to every worker, but a scheduler may signal only some of them, and the
signals land between different steps. After every step the ranks therefore
agree on the largest signal any of them has seen (:meth:`World.agree_max`, one
number over Gloo), so all of them stop after the same step, and rank 0 saves
that step before the closing barrier.

Ending such a process: once DistributedDataParallel has been built, torch
keeps the process group alive in C++ after ``destroy_process_group()`` (its
Gloo threads are still running; pytorch/pytorch#107298), and about one
worker exit in 20 to 60 here then aborts during interpreter finalization
("terminate called without an active exception"), which torchrun reports as
a failed job although every file was written. :func:`exit_process` ends the
process without that finalization; ``codex-ml train`` uses it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from codex_ml.world import this_process


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    #: A Gloo group for :meth:`agree_max` (None: the default group is Gloo already).
    control_group: Any = field(default=None, compare=False, repr=False)

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

    def agree_max(self, value: int) -> int:
        """The largest of ``value`` over all processes; every process gets the same answer.

        One host-side all-reduce of a single number over Gloo, so it neither
        waits for the GPU nor touches the training's NCCL stream: cheap enough
        to ask after every step whether some rank was told to stop (and by
        which signal).
        """
        if not self.distributed:
            return value
        vote = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(vote, op=dist.ReduceOp.MAX, group=self.control_group)
        return int(vote.item())


@contextmanager
def distributed_world(device: torch.device) -> Iterator[World]:
    """The :class:`World` of this process, joined to (and, at the end, out of) its group.

    A process group someone else initialised is used and left open. Ours is
    closed with a barrier first: a rank that tears down while another still
    talks to it can crash the job.
    """
    process = this_process()  # the one reader of torchrun's environment
    world = World(rank=process.rank, local_rank=process.local_rank, size=process.world_size)
    if not world.distributed:
        yield world
        return
    if dist.is_initialized():
        control = _control_group()
        try:
            yield replace(world, control_group=control)
        finally:
            if control is not None:
                dist.destroy_process_group(control)
        return
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        world = replace(world, control_group=_control_group())
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


def _control_group() -> Any:
    """A Gloo group beside a non-Gloo (NCCL) default group, for :meth:`World.agree_max`."""
    if dist.get_backend() == "gloo":
        return None
    return dist.new_group(backend="gloo")


#: Whether this process has built a DistributedDataParallel (see the module docstring).
_built_ddp = False


def wrap_model(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several processes, else itself."""
    global _built_ddp
    if not world.distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    _built_ddp = True
    return DistributedDataParallel(model, device_ids=device_ids)


def finalization_is_unsafe() -> bool:
    """Whether a normal interpreter exit may abort: DistributedDataParallel ran here."""
    return _built_ddp


def exit_process(status: int) -> NoReturn:
    """Flush what the process wrote and end it without interpreter finalization.

    For the end of a data-parallel worker, once all its work is done: files
    are closed by then, so only logging handlers and the standard streams
    hold anything; atexit handlers and C++ static destructors do not run.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # closed, or a broken pipe
            stream.flush()
    os._exit(status)


def gradient_sync(model: nn.Module, sync: bool) -> AbstractContextManager[Any]:
    """Skip DDP's gradient all-reduce on micro-batches before the last of an accumulation."""
    if sync or not isinstance(model, DistributedDataParallel):
        return nullcontext()
    return model.no_sync()
