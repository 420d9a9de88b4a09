"""``training.compile``: ``torch.compile`` for the training step, never seen by a checkpoint.

``torch.compile(model)`` returns a wrapper (``OptimizedModule``) whose
``state_dict`` names every tensor ``_orig_mod.<name>``. A checkpoint written
through it would load only into another compiled model, so the trainer
compiles just the module it steps and saves the caller's own module, which
shares the same parameters. Checkpoints unwrap a compiled model they are given
and drop ``_orig_mod.`` segments from names they read, so a model compiled by
the caller, or a file some other tool saved from a compiled model, loads into
an eager model and the other way round.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn

#: The attribute (and state-dict name segment) under which torch.compile keeps the module.
WRAPPED = "_orig_mod"

T = TypeVar("T")


def uncompiled(model: nn.Module) -> nn.Module:
    """The module a ``torch.compile`` wrapper holds (``model`` itself when not compiled).

    Checked by attribute, not by class, so that this never imports ``torch._dynamo``.
    """
    while isinstance(getattr(model, WRAPPED, None), nn.Module):
        model = getattr(model, WRAPPED)
    return model


def strip_compile_prefix(name: str) -> str:
    """``name`` without its ``_orig_mod`` segments (a compiled submodule puts one mid-name)."""
    return ".".join(part for part in name.split(".") if part != WRAPPED)


def strip_compile_prefixes(state: Mapping[str, T]) -> dict[str, T]:
    """``state`` with :func:`strip_compile_prefix` applied to every name."""
    return {strip_compile_prefix(name): value for name, value in state.items()}


def compiled(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` compiled for training steps (inductor), sharing its parameters.

    ``dynamic=False``: every training batch has the same shape, so one static
    graph is built on the first step and never recompiled.
    """
    if device.type == "cpu":
        _require_cxx_compiler()
    return torch.compile(model, dynamic=False)


def _require_cxx_compiler() -> None:
    """Inductor builds CPU kernels with a C++ compiler: say so before the first step fails."""
    candidates = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    if not any(name and shutil.which(name) for name in candidates):
        raise ValueError(
            "training.compile=true on the CPU needs a C++ compiler: torch.compile's inductor "
            "backend builds its CPU kernels with one, and none was found (looked for $CXX, "
            "g++, c++ and clang++ on PATH). Install one (apt-get install g++, or conda's "
            "gxx), point CXX at it, or train without compiling (training.compile=false)."
        )
