"""Counting a model's parameters, the one size number every report quotes."""

from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of distinct parameters in ``model`` (shared, tied weights count once)."""
    # Module.parameters() already yields a shared tensor only once.
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
