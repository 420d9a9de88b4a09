"""Token accuracy: the fraction of positions whose predicted id equals the target id.

Positions whose target is ``ignore_index`` (padding, prompt tokens) do not
count. Inputs may be (nested, even ragged) lists, numpy arrays or torch
tensors; torch is only touched when a tensor is passed in. Predictions with
one more dimension than the targets are logits and are reduced with argmax
over that last dimension.
"""

from __future__ import annotations

from functools import partial
from types import ModuleType
from typing import Any

from codex_ml.metrics._arrays import array_library
from codex_ml.protocols import Metric

DEFAULT_IGNORE_INDEX = -100


def token_accuracy(preds: Any, targets: Any, *, ignore_index: int = DEFAULT_IGNORE_INDEX) -> float:
    """Fraction of non-ignored positions where ``preds`` (ids or logits) match ``targets``."""
    library = array_library(preds, targets)
    if library is not None:
        correct, total = _count_arrays(library, preds, targets, ignore_index)
    else:
        correct, total = _count_nested(preds, targets, ignore_index)
    if total == 0:
        raise ValueError(
            f"accuracy@token has no positions to score: every target equals ignore_index="
            f"{ignore_index} (or the targets are empty). Pass targets with at least one real "
            "token id, or a different ignore_index."
        )
    return correct / total


def _count_arrays(
    library: ModuleType, preds: Any, targets: Any, ignore_index: int
) -> tuple[int, int]:
    # Vectorised path: numpy and torch share the few operations used here.
    if library.__name__ == "torch":
        preds = library.as_tensor(preds)
        targets = library.as_tensor(targets, device=preds.device)
    else:
        preds, targets = library.asarray(preds), library.asarray(targets)
    if preds.ndim == targets.ndim + 1:
        preds = preds.argmax(-1)
    if tuple(preds.shape) != tuple(targets.shape):
        raise ValueError(
            f"accuracy@token needs preds and targets of the same shape (or preds as logits with "
            f"one extra last dimension); got preds {tuple(preds.shape)} and targets "
            f"{tuple(targets.shape)}."
        )
    valid = targets != ignore_index
    return int(((preds == targets) & valid).sum()), int(valid.sum())


def _count_nested(preds: Any, targets: Any, ignore_index: int) -> tuple[int, int]:
    # Walk both structures together, so ragged batches (one list per sequence) work.
    if hasattr(preds, "tolist"):
        preds = preds.tolist()
    if hasattr(targets, "tolist"):
        targets = targets.tolist()
    if not isinstance(targets, (list, tuple)):
        if targets == ignore_index:
            return 0, 0
        pred = _argmax(preds) if isinstance(preds, (list, tuple)) else preds
        return int(pred == targets), 1
    if not isinstance(preds, (list, tuple)) or len(preds) != len(targets):
        got = len(preds) if isinstance(preds, (list, tuple)) else "a scalar"
        raise ValueError(
            f"accuracy@token needs preds and targets of the same shape; a targets list of length "
            f"{len(targets)} was paired with preds of length {got}."
        )
    correct = total = 0
    for pred, target in zip(preds, targets, strict=True):
        c, n = _count_nested(pred, target, ignore_index)
        correct += c
        total += n
    return correct, total


def _argmax(logits: list[Any] | tuple[Any, ...]) -> int:
    if not logits:
        raise ValueError("accuracy@token got an empty logits vector; it needs one score per id.")
    return max(range(len(logits)), key=logits.__getitem__)


def build_token_accuracy(*, ignore_index: int = DEFAULT_IGNORE_INDEX) -> Metric:
    """Token accuracy over ids or logits, skipping positions whose target is ignore_index."""
    if ignore_index == DEFAULT_IGNORE_INDEX:
        return token_accuracy
    return partial(token_accuracy, ignore_index=ignore_index)
