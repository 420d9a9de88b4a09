"""Learning-rate schedules: the ``scheduler`` registry's built-in keys.

A scheduler factory is called with the peak learning rate ``lr``, the run's
``max_steps`` and ``warmup_steps`` (the trainer's settings) and its own
keyword arguments (the ``scheduler`` preset), and returns a **function of the
step**: ``schedule(step) -> learning rate`` for optimiser step ``step``
(1-based), which the trainer sets on every parameter group before the step.

A function, not a ``torch.optim.lr_scheduler`` object, on purpose: a pure
function of the step has no state, so a checkpoint needs nothing but the step
to resume it exactly, whichever schedule it is. Each schedule is a
``functools.partial`` of a module-level function, so it pickles and describes
itself (``meta.json`` records it).

Every schedule starts with the same linear warmup from 0 to ``lr`` over
``warmup_steps`` steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

#: What a scheduler factory returns: the learning rate of a (1-based) optimiser step.
Schedule = Callable[[int], float]


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


def _linear_at(
    step: int, *, lr: float, warmup_steps: int, max_steps: int, min_lr_ratio: float
) -> float:
    if step <= warmup_steps:
        return lr * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return lr * (1.0 - (1.0 - min_lr_ratio) * progress)


def _constant_at(step: int, *, lr: float, warmup_steps: int) -> float:
    return lr * step / warmup_steps if step <= warmup_steps else lr


def _wsd_at(
    step: int,
    *,
    lr: float,
    warmup_steps: int,
    decay_start: int,
    max_steps: int,
    min_lr_ratio: float,
) -> float:
    if step <= warmup_steps:
        return lr * step / warmup_steps
    if step <= decay_start:
        return lr
    progress = min(1.0, (step - decay_start) / max(1, max_steps - decay_start))
    return lr * (1.0 - (1.0 - min_lr_ratio) * progress)


def _check(lr: float, max_steps: int, warmup_steps: int, min_lr_ratio: float = 0.0) -> None:
    """Refuse settings no schedule can follow, naming the setting and its range."""
    if not lr > 0:
        raise ValueError(f"lr={lr!r} must be a number in (0, inf).")
    if max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r} must be an integer >= 1.")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps={warmup_steps!r} must be an integer >= 0.")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio={min_lr_ratio!r} must be a number in [0, 1].")


def cosine(
    *, lr: float, max_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.1
) -> Schedule:
    """Warmup, then a cosine decay to ``min_lr_ratio * lr`` at ``max_steps`` (the default)."""
    _check(lr, max_steps, warmup_steps, min_lr_ratio)
    return partial(
        lr_at, lr=lr, warmup_steps=warmup_steps, max_steps=max_steps, min_lr_ratio=min_lr_ratio
    )


def linear(
    *, lr: float, max_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0
) -> Schedule:
    """Warmup, then a straight line down to ``min_lr_ratio * lr`` at ``max_steps``."""
    _check(lr, max_steps, warmup_steps, min_lr_ratio)
    return partial(
        _linear_at, lr=lr, warmup_steps=warmup_steps, max_steps=max_steps, min_lr_ratio=min_lr_ratio
    )


def constant(*, lr: float, max_steps: int, warmup_steps: int = 0) -> Schedule:
    """Warmup, then ``lr`` to the end."""
    _check(lr, max_steps, warmup_steps)
    return partial(_constant_at, lr=lr, warmup_steps=warmup_steps)


def wsd(
    *,
    lr: float,
    max_steps: int,
    warmup_steps: int = 0,
    decay_fraction: float = 0.2,
    min_lr_ratio: float = 0.0,
) -> Schedule:
    """Warmup-stable-decay: warmup, ``lr`` held, then a linear decay over the last steps.

    The decay takes the last ``decay_fraction`` of ``max_steps`` and ends on
    ``min_lr_ratio * lr``. Until the decay starts, the run can be extended
    (a larger ``max_steps``) without having followed a different schedule.
    """
    _check(lr, max_steps, warmup_steps, min_lr_ratio)
    if not 0.0 < decay_fraction <= 1.0:
        raise ValueError(f"decay_fraction={decay_fraction!r} must be a number in (0, 1].")
    decay_start = max(warmup_steps, max_steps - round(decay_fraction * max_steps))
    return partial(
        _wsd_at,
        lr=lr,
        warmup_steps=warmup_steps,
        decay_start=decay_start,
        max_steps=max_steps,
        min_lr_ratio=min_lr_ratio,
    )
