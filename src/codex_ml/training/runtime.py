"""Where and how a run executes: CPU threads (precision: :mod:`codex_ml.training.precision`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Precision has its own module; re-exported here, where it used to live.
from codex_ml.training.precision import PRECISIONS, autocast_for

__all__ = ["PRECISIONS", "autocast_for", "torch_threads"]


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
