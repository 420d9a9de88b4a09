"""Fully sharded data parallelism (FSDP2, ``torch.distributed.fsdp.fully_shard``).

Under ``torchrun`` with ``strategy=fsdp`` each process keeps only its slice
(dim 0) of every parameter, gradient and optimizer state; a layer's full
weights are all-gathered just before it runs and freed after. Each block of
the model's layer list is its own group (gathered one at a time, so peak
memory is about one layer's full weights), and the root takes what is left
(embeddings, final norm, a tied head).

The model the caller passed is not sharded in place: a copy is. The caller's
module stays a plain one on its own device, and the full weights are gathered
into it (every process takes part, :func:`gather_weights`) before a
checkpoint is written and when training ends. So a checkpoint is the same
``model.safetensors`` a single process writes, ``evaluate`` and ``generate``
load it in one process without any conversion, and the end-of-run samples on
rank 0 need no other process. The optimizer state is saved full as well
(:func:`full_optimizer_state`, keyed by parameter name), which makes a resume
independent of the number of processes. The price is host memory for one full
copy of the weights (and, while saving, of the optimizer state) on each
process; a model too large for host memory would need sharded (DCP)
checkpoints, which this module does not write.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from codex_ml.training.distributed import World


def blocks_of(model: nn.Module) -> list[nn.Module]:
    """The model's repeated layers: the items of its largest ``nn.ModuleList`` (may be none)."""
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        return []
    return list(max(lists, key=lambda m: sum(p.numel() for p in m.parameters())))


def shard(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """A sharded copy of ``model`` over all processes, on ``device`` (each holds its slice)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (world.size,))
    _broadcast_from_rank0(model, world)
    sharded = copy.deepcopy(model)  # keeps tied weights tied in the copy
    for block in blocks_of(sharded):
        fully_shard(block, mesh=mesh)
    fully_shard(sharded, mesh=mesh)  # moves every slice to the mesh's device
    return sharded


@torch.no_grad()
def _broadcast_from_rank0(model: nn.Module, world: World) -> None:
    """Start every process from rank 0's weights, as DistributedDataParallel does.

    ``fully_shard`` keeps each process's own slice of its own weights, so processes
    that built different weights (another seed) would otherwise train a patchwork.
    """
    import torch.distributed as dist

    for tensor in model.state_dict().values():
        # A host tensor goes over Gloo (the control group beside NCCL, or the default group).
        group = world.control_group if tensor.device.type == "cpu" else None
        dist.broadcast(tensor, src=0, group=group)


@torch.no_grad()
def gather_weights(sharded: nn.Module, into: nn.Module) -> None:
    """Copy the full weights of ``sharded`` into ``into`` (a collective: every process calls it).

    One tensor at a time, so the device holds at most one extra full tensor.
    """
    from torch.distributed.tensor import DTensor

    target = into.state_dict()
    for name, tensor in sharded.state_dict().items():
        full = tensor.full_tensor() if isinstance(tensor, DTensor) else tensor
        target[name].copy_(full)


def load_weights(sharded: nn.Module, source: nn.Module) -> None:
    """Load the full weights of ``source`` into ``sharded`` (every process calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(
        sharded, source.state_dict(), options=StateDictOptions(full_state_dict=True)
    )


def full_optimizer_state(sharded: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The whole optimizer state, keyed by parameter name, on rank 0 ({} on the others).

    A collective: every process calls it. Gathered into host memory.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return dict(get_optimizer_state_dict(sharded, optimizer, options=options))


def load_optimizer_state(
    sharded: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Shard a full optimizer state (from :func:`full_optimizer_state`) into ``optimizer``."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(
        sharded, optimizer, state, options=StateDictOptions(full_state_dict=True)
    )
