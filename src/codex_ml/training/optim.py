"""The optimiser and its learning-rate schedule.

AdamW, decaying only the weight matrices: biases, norm gains and embeddings
are left alone, as in GPT-2 and nanoGPT (decaying an embedding row pulls rare
tokens towards zero). The schedule is a pure function of the step, so a
resumed run needs nothing but the step to continue it exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weight matrices with ``weight_decay``, everything else without."""
    embeddings = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, nn.Embedding | nn.EmbeddingBag)
    }
    decay, no_decay = [], []
    for param in model.parameters():  # yields a tied weight once
        if not param.requires_grad:
            continue
        if param.ndim >= 2 and id(param) not in embeddings:
            decay.append(param)
        else:
            no_decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    device: torch.device,
) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups`, fused into one kernel on CUDA."""
    groups = parameter_groups(model, weight_decay)
    if not any(group["params"] for group in groups):
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters (all have requires_grad=False)."
        )
    fused = True if device.type == "cuda" else None  # None: torch's own default elsewhere
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)


def lr_at(step: int, *, lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Learning rate for optimiser step ``step`` (1-based): linear warmup, then cosine decay.

    Step ``warmup_steps`` reaches ``lr`` and step ``max_steps`` ends exactly on
    ``min_lr_ratio * lr``.
    """
    if step <= warmup_steps:
        return lr * step / warmup_steps
    min_lr = lr * min_lr_ratio
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
