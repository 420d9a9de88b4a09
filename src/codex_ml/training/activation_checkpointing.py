"""``activation_checkpointing``: trade compute for memory by recomputing block activations.

A model says it can with ``activation_checkpointing_enable()`` (the name in
``transformers`` 5, which codex-ml's ``decoder_only`` model shares; older
``transformers`` call it ``gradient_checkpointing_enable()``): each block then
keeps only its input during the forward pass and runs again in the backward
pass. The losses are the same as without it: the recomputation replays the
random state, so dropout draws the same masks. The model is switched back when
the run ends, so evaluation and generation afterwards are as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

#: ``torch.utils.checkpoint`` options: the non-reentrant form, which needs no input
#: that requires grad and works with ``torch.compile``.
CHECKPOINT_OPTIONS = {"use_reentrant": False}


@contextmanager
def recomputed_activations(model: nn.Module, enabled: bool) -> Iterator[None]:
    """``model`` with activation checkpointing on for the block (when ``enabled``)."""
    if not enabled:
        yield
        return
    switch = _switches(model)
    if switch is None:
        raise ValueError(
            f"activation_checkpointing=true: {type(model).__name__} cannot recompute its "
            "activations (it has no activation_checkpointing_enable(), as the decoder_only and "
            "Hugging Face models have). Set activation_checkpointing=false, or train one of those."
        )
    enable, disable, options = switch
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    enable(**{options: dict(CHECKPOINT_OPTIONS)})
    try:
        if use_cache:
            # No KV cache while training: transformers would switch it off with a warning.
            config.use_cache = False
        yield
    finally:
        if use_cache:
            config.use_cache = use_cache
        disable()


def _switches(model: nn.Module) -> tuple[Any, Any, str] | None:
    """(enable, disable, the name of enable's options argument), or None when it has none."""
    if getattr(model, "supports_gradient_checkpointing", True) is False:
        return None  # a transformers model that would refuse
    for name in ("activation_checkpointing", "gradient_checkpointing"):
        enable = getattr(model, f"{name}_enable", None)
        disable = getattr(model, f"{name}_disable", None)
        if callable(enable) and callable(disable):
            return enable, disable, f"{name}_kwargs"
    return None
