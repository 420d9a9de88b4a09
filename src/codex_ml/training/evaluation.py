"""Held-out evaluation: loss, perplexity and token accuracy over the eval blocks.

The numbers come from the catalogue's own ``ppl`` and ``accuracy@token``
metrics, so a trainer report and ``get_metric("ppl")`` always agree. Batches
are the first ``max_batches`` of the eval blocks in order: the same tokens at
every evaluation, and no random state is consumed.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch import nn

from codex_ml.metrics.perplexity import build_perplexity
from codex_ml.metrics.token_accuracy import build_token_accuracy
from codex_ml.training.data import Blocks

_perplexity = build_perplexity()
_token_accuracy = build_token_accuracy()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    blocks: Blocks,
    *,
    batch_size: int,
    max_batches: int,
    autocast: AbstractContextManager[Any],
) -> dict[str, float]:
    """``eval_loss`` (mean next-token NLL), ``eval_ppl`` and ``eval_accuracy@token``."""
    was_training = model.training
    model.eval()
    nll_sum = correct = 0.0
    tokens = 0
    try:
        for start in range(0, min(len(blocks), batch_size * max_batches), batch_size):
            inputs = blocks.inputs[start : start + batch_size]
            targets = blocks.targets[start : start + batch_size]
            with autocast:
                logits = model(input_ids=inputs).logits
            n = targets.numel()
            # Batches can differ in size (the last one), so weight by token count.
            nll_sum += math.log(_perplexity(logits, targets)) * n
            correct += _token_accuracy(logits, targets) * n
            tokens += n
    finally:
        model.train(was_training)
    loss = nll_sum / tokens
    return {
        "eval_loss": loss,
        "eval_ppl": _exp(loss),
        "eval_accuracy@token": correct / tokens,
    }


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
