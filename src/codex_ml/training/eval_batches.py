"""The one loop that runs a model over held-out batches, for every evaluation.

The trainer's periodic ``evaluate`` and end-of-run / ``codex-ml evaluate``
scoring differ only in what they take from each batch, so both iterate
:func:`eval_batches`: the model in eval mode, no gradients, and its train mode
restored when the loop ends. Where the batches come from is separate
(:func:`block_batches` for the trainer's packed blocks in memory,
:func:`stream_batches` for a whole held-out split), so another source of
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


def stream_batches(
    ids: Any,
    *,
    first_input: int,
    block_size: int,
    batch_size: int,
    max_tokens: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, targets)`` in which each of the first ``max_tokens`` ids is a target once.

    ``ids`` is a held-out split as one stream (a memory map, a tensor or a
    list): each record's ids, then eos. The first id is predicted from
    ``first_input`` (the tokenizer's eos: in the packed training stream every
    record follows one), each later id from the ids before it in its block of
    ``block_size``. Batches are ``batch_size`` whole blocks; the stream's last,
    shorter block comes alone. Only one batch is in memory at a time.
    """
    import numpy as np

    total = len(ids) if max_tokens is None else min(len(ids), max_tokens)
    full_blocks = total // block_size
    step = batch_size * block_size
    for start in range(0, full_blocks * block_size, step):
        stop = min(start + step, full_blocks * block_size)
        rows = _window(ids, start, stop, first_input, np).unfold(0, block_size + 1, block_size)
        yield rows[:, :-1], rows[:, 1:]
    if total > full_blocks * block_size:
        tail = _window(ids, full_blocks * block_size, total, first_input, np).unsqueeze(0)
        yield tail[:, :-1], tail[:, 1:]


def _window(ids: Any, start: int, stop: int, first_input: int, np: Any) -> torch.Tensor:
    """Targets ``ids[start:stop]`` with the id before each one: ``ids[start - 1 : stop]``."""
    if isinstance(ids, torch.Tensor):
        body = ids[max(start - 1, 0) : stop].long()
    else:
        body = torch.from_numpy(np.asarray(ids[max(start - 1, 0) : stop], dtype=np.int64))
    if start == 0:
        body = torch.cat([torch.tensor([first_input], dtype=torch.long), body.cpu()])
    return body


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
