"""A deterministic metric: the scaled fraction of predictions equal to their targets."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def build(scale: float = 1.0) -> Callable[[Sequence[object], Sequence[object]], float]:
    """Fraction of exact matches between preds and targets, times ``scale``."""

    def toy_metric(preds: Sequence[object], targets: Sequence[object]) -> float:
        if len(preds) != len(targets) or not preds:
            raise ValueError("toy_metric needs equally long, non-empty preds and targets")
        return scale * sum(p == t for p, t in zip(preds, targets, strict=True)) / len(preds)

    return toy_metric
