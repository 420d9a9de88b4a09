"""The one loop that runs a model over held-out batches, for every evaluation.

The trainer's periodic ``evaluate`` and end-of-run / ``codex-ml evaluate``
scoring differ only in what they take from each batch, so both iterate
:func:`eval_batches`: the model in eval mode, no gradients, and its train mode
restored when the loop ends. Where the batches come from is separate
(:func:`block_batches` for packed blocks in memory), so another source of
``(inputs, targets)`` pairs can be scored by the same loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from codex_ml.training.data import IGNORE_INDEX, Batch, Blocks


@dataclass(frozen=True, slots=True)
class EvalBatch:
    """One batch's logits ``(batch, block, vocab)`` and next-token targets ``(batch, block)``."""

    logits: torch.Tensor
    targets: torch.Tensor

    @property
    def tokens(self) -> int:
        """Targets that carry the loss (all, but for instruction data's ``IGNORE_INDEX``): the
        weight of the batch's mean loss in a running total."""
        return int((self.targets != IGNORE_INDEX).sum())

    def token_nlls(self) -> torch.Tensor:
        """Each scored position's negative log-likelihood (natural log, float32), flattened."""
        targets = self.targets.flatten()
        nlls = F.cross_entropy(self.logits.float().flatten(0, 1), targets, reduction="none")
        return nlls[targets != IGNORE_INDEX]


def block_batches(blocks: Blocks, *, batch_size: int, max_batches: int) -> Iterator[Batch]:
    """The first ``max_batches`` batches of ``blocks``, in order.

    The same tokens at every evaluation, and no random state is consumed.
    """
    for start in range(0, min(len(blocks), batch_size * max_batches), batch_size):
        rows = slice(start, start + batch_size)
        positions = None if blocks.positions is None else blocks.positions[rows]
        yield Batch(blocks.inputs[rows], blocks.targets[rows], positions)


def eval_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, ...]],
    *,
    autocast: AbstractContextManager[Any] | None = None,
    device: torch.device | None = None,
) -> Iterator[EvalBatch]:
    """The model's logits for each batch, computed in eval mode without gradients.

    A batch is ``(inputs, targets)`` or a :class:`~codex_ml.training.data.Batch`
    (whose ``positions``, when present, go to the model as ``position_ids``).

    ``device``: where each batch is moved before the forward pass (``None``: left
    where it is). ``autocast`` wraps the forward pass only. The model's train
    mode comes back when the loop is exhausted or closed.
    """
    autocast = autocast if autocast is not None else nullcontext()
    was_training = model.training
    model.eval()
    try:
        for given in batches:
            batch = Batch(*given)
            if device is not None:
                batch = batch.to(device)
            with torch.no_grad(), autocast:
                logits = model(**batch.model_inputs()).logits
            yield EvalBatch(logits, batch.targets)
    finally:
        model.train(was_training)
