"""The model as one training run holds it: what is stepped, evaluated and saved.

Three forms of one model can be in play, and keeping them apart is what keeps
checkpoints plain:

- ``model``, the caller's own module: saved (no ``_orig_mod.`` or ``module.``
  prefixes), returned trained, and what ``evaluate``/``generate`` later load;
- ``trained``, what the optimizer updates: ``model`` itself, or its sharded
  copy under ``strategy=fsdp`` (:mod:`codex_ml.training.fsdp`);
- the step module (:meth:`RunModel.step_module`): ``trained`` compiled
  (``compile=true``) and wrapped in DistributedDataParallel under ``torchrun``
  with ``strategy=ddp``. It shares every parameter with ``trained``.

Without ``torchrun`` there is one process and the strategy changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from codex_ml.training import fsdp
from codex_ml.training.checkpoint import Checkpoint, check_resume_state, load_checkpoint
from codex_ml.training.compile import compiled
from codex_ml.training.distributed import World, wrap_model
from codex_ml.training.errors import CheckpointError

STRATEGIES = ("ddp", "fsdp")


class RunModel:
    """The caller's model, its trained form and its step module, for one run."""

    def __init__(
        self, model: nn.Module, world: World, device: torch.device, *, strategy: str, compile: bool
    ) -> None:
        self.world: World = world
        self.device: torch.device = device
        self.compile: bool = compile
        self.sharded: bool = strategy == "fsdp" and world.distributed
        self.model: nn.Module
        self.trained: nn.Module
        if self.sharded:
            self.model = model  # stays where it is: only the shards go to the device
            self.trained = fsdp.shard(model, world, device)
        else:
            self.model = self.trained = model.to(device)
        self.model.train()
        self.trained.train()
        self._gathered_at: int | None = None

    @property
    def evaluated(self) -> nn.Module:
        """What evaluation runs: eager (never recompiled for eval shapes); sharded under FSDP."""
        return self.trained

    def step_module(self) -> nn.Module:
        """What a training step calls. Compiled before the DDP wrapper, as nanoGPT does, so
        DDP's ``no_sync`` still skips the all-reduce of gradient-accumulation micro-batches."""
        module = compiled(self.trained, self.device) if self.compile else self.trained
        return module if self.sharded else wrap_model(module, self.world, self.device)

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state to save (under FSDP: gathered, every process must call)."""
        if self.sharded:
            return fsdp.full_optimizer_state(self.trained, optimizer)
        return optimizer.state_dict()

    def gather(self, step: int) -> None:
        """Bring the trained weights into ``model`` (under FSDP a collective; else nothing)."""
        if self.sharded and self._gathered_at != step:
            fsdp.gather_weights(self.trained, self.model)
            self._gathered_at = step

    def load(self, path: str | Path, optimizer: torch.optim.Optimizer) -> Checkpoint:
        """Load a checkpoint into the model and the optimizer, whichever form they have."""
        # On the CPU: the generator states must be CPU tensors, and the optimizer
        # moves its own state to the parameters' device.
        if not self.sharded:
            return load_checkpoint(path, self.model, optimizer, map_location="cpu")
        loaded = load_checkpoint(path, self.model, map_location="cpu")
        check_resume_state(loaded)  # load_checkpoint checks it only when given the optimizer
        fsdp.load_weights(self.trained, self.model)
        try:
            fsdp.load_optimizer_state(self.trained, optimizer, loaded.state["optimizer"])
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{loaded.path} holds optimizer state that does not fit this FSDP run ({exc}); "
                "an FSDP run resumes from checkpoints written with training.strategy=fsdp "
                "(any number of processes) and the same optimizer.",
                path=loaded.path,
            ) from exc
        return loaded
