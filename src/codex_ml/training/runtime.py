"""Where and how a run executes: device, numeric precision and CPU threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """A reusable autocast context: bf16 on CUDA under ``"auto"``, fp32 (no autocast) on CPU."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Pin torch's intra-op threads for the duration of a run (``None``: leave them)."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
