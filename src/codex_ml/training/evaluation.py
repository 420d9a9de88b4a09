"""The trainer's periodic evaluation: loss, perplexity and token accuracy over the eval blocks.

The numbers come from the catalogue's own ``ppl`` and ``accuracy@token``
metrics, so a trainer report and ``get_metric("ppl")`` always agree. Batches
are the first ``max_batches`` of the eval blocks in order, run through the
shared loop of :mod:`codex_ml.training.eval_batches`: an estimate, cheap enough
to draw an eval curve with, and labelled as one by ``eval_tokens`` (how many
tokens it scored). The run's own held-out numbers come from scoring the whole
split once training ends (``codex_ml.run.scoring``).
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import Any

from torch import nn

from codex_ml.metrics.perplexity import build_perplexity
from codex_ml.metrics.token_accuracy import build_token_accuracy
from codex_ml.training.data import Blocks
from codex_ml.training.eval_batches import block_batches, eval_batches

#: The numbers :func:`evaluate` gives, by name (what ``keep_best`` may name).
EVAL_METRICS = ("eval_loss", "eval_ppl", "eval_accuracy@token")

_perplexity = build_perplexity()
_token_accuracy = build_token_accuracy()


def evaluate(
    model: nn.Module,
    blocks: Blocks,
    *,
    batch_size: int,
    max_batches: int,
    autocast: AbstractContextManager[Any],
) -> dict[str, float | int]:
    """``eval_loss`` (mean next-token NLL), ``eval_ppl``, ``eval_accuracy@token`` and how many
    tokens they are over (``eval_tokens``)."""
    nll_sum = correct = 0.0
    tokens = 0
    batches = block_batches(blocks, batch_size=batch_size, max_batches=max_batches)
    for batch in eval_batches(model, batches, autocast=autocast):
        scored = batch.tokens  # targets that carry the loss: fewer for instruction data
        if not scored:
            continue
        # Batches can differ in size (the last one), so weight by token count.
        nll_sum += math.log(_perplexity(batch.logits, batch.targets)) * scored
        correct += _token_accuracy(batch.logits, batch.targets) * scored
        tokens += scored
    loss = nll_sum / tokens if tokens else math.nan
    return {
        "eval_loss": loss,
        "eval_ppl": _exp(loss),
        "eval_accuracy@token": correct / tokens if tokens else math.nan,
        "eval_tokens": tokens,
    }


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf
