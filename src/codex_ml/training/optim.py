"""Optimisers: the ``optimizer`` registry's built-in keys, and the parameters they are given.

An optimizer factory is called with the parameters to optimise, as parameter
groups, and the peak learning rate ``lr`` (``training.lr``), plus its own
keyword arguments (the ``optimizer`` preset), and returns a
``torch.optim.Optimizer``. The groups already say how much each parameter
decays (``weight_decay`` in each group): weight matrices decay by
``training.weight_decay``; biases, norm gains and embeddings do not, as in
GPT-2 and nanoGPT (decaying an embedding row pulls rare tokens towards zero).
So a factory never has to know that rule, and every optimizer keeps it.

The learning rate schedule is a separate function of the step
(:mod:`codex_ml.training.schedules`); ``lr_at`` is re-exported from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from codex_ml.training.schedules import lr_at

__all__ = [
    "adafactor",
    "adam",
    "adamw",
    "build_optimizer",
    "lr_at",
    "optimizer_for",
    "parameter_groups",
    "set_lr",
    "sgd",
]

#: What codex-ml gives an optimizer factory: ``[{"params": [...], "weight_decay": w}, ...]``.
ParameterGroups = list[dict[str, Any]]


def parameter_groups(model: nn.Module, weight_decay: float) -> ParameterGroups:
    """Two groups: weight matrices with ``weight_decay``, everything else without."""
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


def _on_cuda(params: Sequence[dict[str, Any]]) -> bool:
    first = next((p for group in params for p in group["params"]), None)
    return first is not None and first.device.type == "cuda"


def adamw(
    params: ParameterGroups,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """AdamW (the default), fused into one kernel on CUDA."""
    fused = True if _on_cuda(params) else None  # None: torch's own default elsewhere
    return torch.optim.AdamW(params, lr=lr, betas=_pair(betas), eps=eps, fused=fused)


def adam(
    params: ParameterGroups,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """Adam; its ``weight_decay`` is an L2 term in the gradient, not decoupled as in AdamW."""
    fused = True if _on_cuda(params) else None
    return torch.optim.Adam(params, lr=lr, betas=_pair(betas), eps=eps, fused=fused)


def sgd(
    params: ParameterGroups,
    *,
    lr: float,
    momentum: float = 0.9,
    nesterov: bool = False,
    dampening: float = 0.0,
) -> torch.optim.Optimizer:
    """Stochastic gradient descent with (by default) momentum 0.9."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, dampening=dampening)


def adafactor(
    params: ParameterGroups,
    *,
    lr: float,
    beta2_decay: float = -0.8,
    d: float = 1.0,
) -> torch.optim.Optimizer:
    """Adafactor (torch's, 2.5 or newer): factored second moments, little optimizer memory."""
    if not hasattr(torch.optim, "Adafactor"):
        raise ValueError(
            f"optimizer 'adafactor' needs torch 2.5 or newer (torch.optim.Adafactor); this is "
            f"torch {torch.__version__}. Upgrade torch, or choose optimizer=adamw."
        )
    return torch.optim.Adafactor(params, lr=lr, beta2_decay=beta2_decay, d=d)


def _pair(betas: Sequence[float]) -> tuple[float, float]:
    if len(betas) != 2:
        raise ValueError(f"betas={list(betas)!r} must be two numbers, [beta1, beta2].")
    return (float(betas[0]), float(betas[1]))


def optimizer_for(
    model: nn.Module,
    factory: Callable[..., torch.optim.Optimizer],
    *,
    lr: float,
    weight_decay: float,
) -> torch.optim.Optimizer:
    """``factory``'s optimizer over :func:`parameter_groups` of ``model``, checked."""
    groups = parameter_groups(model, weight_decay)
    if not any(group["params"] for group in groups):
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters (all have requires_grad=False)."
        )
    optimizer = factory(groups, lr=lr)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer factory {_name(factory)} returned {type(optimizer).__name__}, not a "
            "torch.optim.Optimizer; an optimizer factory takes the parameter groups and lr= and "
            "returns the optimizer built over them."
        )
    return optimizer


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    device: torch.device | None = None,
) -> torch.optim.Optimizer:
    """AdamW over :func:`parameter_groups` (the model's device decides fused, not ``device``)."""
    return optimizer_for(
        model,
        lambda groups, lr: adamw(groups, lr=lr, betas=betas),
        lr=lr,
        weight_decay=weight_decay,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _name(factory: Any) -> str:
    inner = getattr(factory, "func", factory)  # a functools.partial names its function
    return f"{getattr(inner, '__module__', '?')}:{getattr(inner, '__qualname__', repr(inner))}"
