"""The random state a checkpoint carries, so that a resumed run repeats its dropout exactly."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import torch


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """The RNG states a resumed run must restore to repeat its dropout exactly.

    Only the training device's CUDA generator is saved: asking for all of them
    would start a CUDA context on every GPU of the machine.
    """
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    """Put back what :func:`capture_rng_state` saved (the CUDA part only on a CUDA device)."""
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
