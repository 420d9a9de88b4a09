"""Perplexity: ``exp`` of the mean per-token negative log-likelihood.

Two call forms: ``ppl(nlls)`` with per-token NLLs (natural log), and
``ppl(logits, target_ids)`` with logits of shape ``(..., vocab)`` and ids of
shape ``(...)`` aligned position by position (a causal LM's caller shifts
them first), where positions whose target is ``ignore_index`` are skipped.
Only the second form imports torch. A mean so large that ``exp`` overflows
gives ``math.inf``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from codex_ml.metrics._arrays import flatten
from codex_ml.protocols import Metric

DEFAULT_IGNORE_INDEX = -100
_SCALE = 2.0**64


def perplexity(
    preds: Any, targets: Any = None, *, ignore_index: int = DEFAULT_IGNORE_INDEX
) -> float:
    """``exp(mean NLL)`` from NLLs (``targets=None``) or from logits and target ids."""
    nll = _mean_nll(preds) if targets is None else _cross_entropy(preds, targets, ignore_index)
    try:
        return math.exp(nll)
    except OverflowError:
        return math.inf


def _mean_nll(nlls: Any) -> float:
    values = flatten(nlls)
    if not values:
        raise ValueError(
            "ppl got no negative log-likelihoods; pass one NLL per token, or call "
            "ppl(logits, target_ids) to compute them."
        )
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        # The exact sum of huge finite NLLs does not fit a float (nor may a mean of values
        # divided one by one, which fsum rounds up past the largest float). Dividing by a
        # power of two is exact, and the product back is inf rather than an error.
        return math.fsum(value / _SCALE for value in values) / len(values) * _SCALE
    except TypeError as exc:
        raise TypeError(
            "ppl(nlls) needs numbers (per-token negative log-likelihoods); to score logits "
            "against token ids call ppl(logits, target_ids)."
        ) from exc


def _cross_entropy(logits: Any, targets: Any, ignore_index: int) -> float:
    import torch
    import torch.nn.functional as F

    logits = torch.as_tensor(logits)
    targets = torch.as_tensor(targets, device=logits.device)
    if logits.ndim != targets.ndim + 1 or logits.shape[:-1] != targets.shape:
        raise ValueError(
            f"ppl(logits, target_ids) needs logits of shape (..., vocab) and target ids of shape "
            f"(...); got logits {tuple(logits.shape)} and targets {tuple(targets.shape)}. For "
            "per-token NLLs call ppl(nlls) without targets."
        )
    targets = targets.reshape(-1).long()
    if not bool((targets != ignore_index).any()):
        raise ValueError(
            f"ppl has no positions to score: every target equals ignore_index={ignore_index} "
            "(or the targets are empty)."
        )
    with torch.no_grad():
        flat = logits.reshape(-1, logits.shape[-1])
        if not flat.is_floating_point() or flat.element_size() < 4:
            # float32 at least: half-precision logits lose too much in the log-softmax.
            flat = flat.float()
        return float(F.cross_entropy(flat, targets, ignore_index=ignore_index))


def build_perplexity(*, ignore_index: int = DEFAULT_IGNORE_INDEX) -> Metric:
    """Perplexity from per-token NLLs, or from logits and target ids skipping ignore_index."""
    if ignore_index == DEFAULT_IGNORE_INDEX:
        return perplexity
    return partial(perplexity, ignore_index=ignore_index)
