"""Blocks of whole instruction examples, cut from a token store's ids and their flags.

A store of instruction data keeps a flag byte per token (``LOSS``: the token
is a target that carries the loss; ``START``: it is its example's first;
``codex_ml.data.store.examples``). The blocks here begin at an example's
first token, and a batch of them (:class:`~codex_ml.training.data.Batch`)
carries what the flags say:

- targets that carry no loss (prompt tokens, user turns, padding) are
  :data:`~codex_ml.training.data.IGNORE_INDEX`, which the loss skips, so the
  trainer needs no notion of prompts or chats;
- with ``packing`` (the default), whole examples are packed in order into each
  block of ``block_size + 1`` tokens, as many as fit; ``positions`` then count
  from 0 at each example's first token, which is how a model keeps attention
  and positions inside each example (``decoder_only`` builds a block-diagonal
  causal mask from them; Hugging Face models do the same from ``position_ids``).
  A batch whose blocks hold one example each has no ``positions``: plain causal
  attention is then exactly right, and the fast kernel is used;
- without packing, each block is one example, padded; no positions are needed.

An example longer than a block is cut at the block's end: what does not fit is
not trained on (:attr:`ExampleBlocks.cut` counts such examples). A batch is as
wide as its longest block, so short examples are not padded to ``block_size``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from codex_ml.data.store.layout import LOSS, START
from codex_ml.training.data import (
    IGNORE_INDEX,
    RESIDENT_BYTES,
    Batch,
    Blocks,
    TokenBlocks,
    as_blocks,
)


def block_table(flags: Any, block_size: int, *, packing: bool) -> tuple[Any, Any, int]:
    """Each block's first token and length (at most ``block_size + 1``), as numpy arrays, and
    how many examples are longer than a block (cut)."""
    import numpy as np

    window = block_size + 1
    starts = np.flatnonzero(np.asarray(flags) & START)
    ends = np.append(starts[1:], len(flags))
    cut = int(((ends - starts) > window).sum())
    if not packing:
        return starts, np.minimum(ends - starts, window), cut
    first, lengths = [], []
    index = 0
    while index < len(starts):
        start = starts[index]
        # Examples index..after-1 end within the window; always at least one (cut if longer).
        after = max(int(np.searchsorted(ends, start + window, side="right")), index + 1)
        first.append(start)
        lengths.append(min(ends[after - 1] - start, window))
        index = after
    return np.asarray(first, dtype=np.int64), np.asarray(lengths, dtype=np.int64), cut


class ExampleBlocks:
    """Blocks of whole examples from ids and flags (memory-mapped, or tensors on a device).

    The interface of :class:`~codex_ml.training.data.TokenBlocks`: ``len``,
    ``index_device``, :meth:`place`, :meth:`take` and :meth:`head`.
    """

    masked = True  # targets carry IGNORE_INDEX where there is no loss

    def __init__(
        self,
        ids: Any,
        flags: Any,
        block_size: int,
        *,
        packing: bool,
        name: str,
        device: torch.device | None = None,
        table: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    ) -> None:
        self.ids = ids
        self.flags = flags
        self.block_size = block_size
        self.packing = packing
        self.name = name
        self.resident: bool = isinstance(ids, torch.Tensor)
        self.index_device: torch.device = ids.device if self.resident else torch.device("cpu")
        self.device: torch.device = device if device is not None else self.index_device
        starts, lengths, self.cut = table if table is not None else self._table()
        self.starts = starts.to(self.index_device)
        self.lengths = lengths.to(self.index_device)
        self._span = torch.arange(block_size + 1, device=self.index_device)

    def _table(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        import numpy as np

        flags = self.flags.cpu().numpy() if self.resident else self.flags
        starts, lengths, cut = block_table(flags, self.block_size, packing=self.packing)
        if not len(starts) or not (np.asarray(flags) & LOSS).any():
            raise ValueError(
                f"{self.name} has no token that carries the loss (no completion, and no "
                "assistant turn, in any example), so there is nothing to train or evaluate on. "
                "Check data.completion_field / data.messages_field."
            )
        return torch.from_numpy(starts.astype(np.int64)), torch.from_numpy(lengths), cut

    def __len__(self) -> int:
        return len(self.starts)

    def place(self, device: torch.device) -> ExampleBlocks:
        """These blocks, delivered on ``device`` (ids move as :class:`TokenBlocks`' do)."""
        ids, flags = self.ids, self.flags
        if self.resident:
            ids, flags = ids.to(device), flags.to(device)
        elif device.type != "cpu" and len(ids) * 9 <= RESIDENT_BYTES:
            import numpy as np

            ids = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(device)
            flags = torch.from_numpy(np.asarray(self.flags, dtype=np.uint8)).to(device)
        return ExampleBlocks(
            ids,
            flags,
            self.block_size,
            packing=self.packing,
            name=self.name,
            device=device,
            table=(self.starts, self.lengths, self.cut),
        )

    def take(self, index: torch.Tensor) -> Batch:
        """The blocks at ``index``: inputs, masked targets, and positions where examples share."""
        lengths = self.lengths[index]
        width = max(int(lengths.max()), 2)  # as wide as its longest block: one input at least
        span = self._span[:width]
        positions = (self.starts[index].unsqueeze(1) + span).clamp(max=len(self.ids) - 1)
        valid = span < lengths.unsqueeze(1)
        if self.resident:
            rows, flags = self.ids[positions].long(), self.flags[positions]
        else:
            import numpy as np

            at = positions.numpy()
            rows = torch.from_numpy(np.asarray(self.ids[at], dtype=np.int64))
            flags = torch.from_numpy(np.asarray(self.flags[at], dtype=np.uint8))
        loss = ((flags[:, 1:] & LOSS) != 0) & valid[:, 1:]
        targets = rows[:, 1:].masked_fill(~loss, IGNORE_INDEX)
        batch = Batch(rows[:, :-1], targets, self._positions(flags[:, :-1], valid[:, :-1]))
        if self.device != rows.device:
            return batch.to(self.device)
        return batch

    def _positions(self, flags: torch.Tensor, valid: torch.Tensor) -> torch.Tensor | None:
        """Each input's position in its example; None when no block holds a second example."""
        if not self.packing:
            return None
        starts = ((flags & START) != 0) & valid
        if not bool(starts[:, 1:].any()):
            return None
        columns = torch.arange(flags.shape[1], device=flags.device).expand_as(flags)
        first = torch.where(starts, columns, torch.zeros_like(columns)).cummax(dim=1).values
        return columns - first

    def head(self, n_blocks: int) -> Blocks:
        """The first ``n_blocks`` blocks (or all, if fewer), in order, on ``device``."""
        index = torch.arange(min(n_blocks, len(self)), device=self.index_device)
        batch = self.take(index)
        return Blocks(batch.inputs, batch.targets, batch.positions).to(self.device)


def example_batches(
    ids: Any, flags: Any, *, block_size: int, batch_size: int, max_batches: int | None = None
) -> Iterator[Batch]:
    """A split's examples in order, each once, packed whole into blocks: for scoring it.

    ``ids`` and ``flags`` are a store's split (``TokenStore.ids``/``flags``);
    each batch's targets carry ``IGNORE_INDEX`` where no loss is (so only
    completion tokens are scored), and ``positions`` keep examples apart.
    """
    blocks = ExampleBlocks(ids, flags, block_size, packing=True, name="the held-out split")
    count = len(blocks) if max_batches is None else min(len(blocks), batch_size * max_batches)
    for start in range(0, count, batch_size):
        yield blocks.take(torch.arange(start, min(start + batch_size, count)))


def training_blocks(
    tokenizer: Any, data: Any, block_size: int, *, name: str, packing: bool | None
) -> TokenBlocks | ExampleBlocks:
    """The blocks of ``data``: of whole examples when it has flags (instruction data), else
    :func:`~codex_ml.training.data.as_blocks`'. ``packing`` None is true for examples."""
    token_flags = getattr(data, "token_flags", None)
    flags = token_flags() if callable(token_flags) else None
    if flags is not None:
        packed = True if packing is None else packing
        blocks = ExampleBlocks(data.token_ids(), flags, block_size, packing=packed, name=name)
        if blocks.cut:
            warnings.warn(
                f"{name}: {blocks.cut:,} examples are longer than a block (block_size + 1 = "
                f"{block_size + 1} tokens) and are cut there; what comes after is not trained "
                "on, which may be all of a completion. Raise training.block_size (within the "
                "model's context) to train on whole examples.",
                stacklevel=2,
            )
        return blocks
    if packing is False:
        raise ValueError(
            f"training.packing=false gives one instruction example per row, but {name} is plain "
            "text, trained as one stream of records. Leave training.packing unset for text, or "
            "read instruction data (data.prompt_field and data.completion_field, or "
            "data.messages_field)."
        )
    return as_blocks(tokenizer, data, block_size, name=name)


@contextmanager
def packed_examples(model: torch.nn.Module, blocks: Any) -> Iterator[None]:
    """``model`` ready for ``blocks`` of packed examples, for the block (no-op otherwise).

    Its ``forward`` must take ``position_ids`` (refused in one paragraph if
    not), and a Hugging Face model builds no KV cache while training: a
    training pass never reads one, and ``transformers`` keeps attention inside
    each packed example (from ``position_ids``) only when there is no cache.
    ``config.use_cache`` is put back when the block ends.
    """
    if not (isinstance(blocks, ExampleBlocks) and blocks.packing):
        yield
        return
    check_positions_accepted(model)
    with without_kv_cache(model):
        yield


@contextmanager
def without_kv_cache(model: torch.nn.Module) -> Iterator[None]:
    """A Hugging Face model that builds no KV cache for the block (``config.use_cache`` put
    back after): ``transformers`` keeps packed examples apart only when there is none."""
    config = getattr(model, "config", None)
    use_cache = getattr(config, "use_cache", None)
    if use_cache:
        config.use_cache = False
    try:
        yield
    finally:
        if use_cache:
            config.use_cache = use_cache


def check_positions_accepted(model: torch.nn.Module) -> None:
    """Refuse a model whose ``forward`` takes no ``position_ids``: it cannot run packed examples."""
    forward = getattr(model, "forward", None)
    try:
        parameters = inspect.signature(forward).parameters if forward else {}
    except (TypeError, ValueError):
        return
    if "position_ids" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    ):
        return
    raise ValueError(
        f"training.packing=true packs several instruction examples into each block, and keeps "
        f"them apart through position_ids, which {type(model).__name__}.forward does not take. "
        "Set training.packing=false (one example per row), or give the model a position_ids "
        "argument."
    )
