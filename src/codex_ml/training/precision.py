"""Numeric precision of a training run: autocast dtype and, for fp16, a gradient scaler.

``auto`` is bf16 autocast on a CUDA GPU that supports it and fp32 otherwise.
``fp16`` is float16 autocast with a :class:`torch.amp.GradScaler`: fp16 has
a narrow exponent range, so small gradients underflow to zero unless the loss
is scaled up before ``backward`` (and the gradients unscaled before clipping
and the optimizer step, which is skipped when they overflowed). That recipe is
for GPUs without bf16; on the CPU fp16 is refused (see :func:`check_precision`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(device: torch.device, precision: str) -> str:
    """``precision`` with ``auto`` decided for ``device``: ``fp32``, ``bf16`` or ``fp16``."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return precision


def autocast_for(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """A reusable autocast context: bf16 on CUDA under ``"auto"``, fp32 (no autocast) on CPU."""
    precision = resolve_precision(device, precision)
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision])


def grad_scaler_for(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """The gradient scaler fp16 training needs (None for every other precision)."""
    if resolve_precision(device, precision) != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


def check_precision(precision: str, device: torch.device, *, strategy: str) -> None:
    """Refuse a precision the device (or the parallel strategy) cannot train in."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} must be one of {', '.join(PRECISIONS)}.")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            "precision=fp16 (training.precision) needs a CUDA GPU, and this run trains on the "
            f"{device.type.upper()} (device resolves to {device}). float16 training is a GPU "
            "recipe: it autocasts to "
            "float16 and scales the loss with a gradient scaler so that small gradients do not "
            "underflow, and CPUs have neither fast float16 matmuls nor a reason to need it. On "
            "the CPU use precision=bf16 (bfloat16 autocast, no scaler needed) or precision=fp32 "
            "(what precision=auto picks there); for fp16, train with device=cuda on a GPU."
        )
    if precision == "fp16" and strategy == "fsdp":
        raise ValueError(
            "precision=fp16 with strategy=fsdp is not supported: the gradient scaler would "
            "check only this process's shard of the gradients for overflow, so processes "
            "could disagree on skipping a step and their weights would drift apart. Use "
            "precision=bf16 with FSDP (GPUs from Ampere on), or strategy=ddp with fp16."
        )
