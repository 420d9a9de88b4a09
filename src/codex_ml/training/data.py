"""From text records or a token store to training batches: tokenise, cut into blocks, sample.

A corpus is one flat stream of ids: each record's ids followed by the
tokenizer's end-of-sequence id. Block ``k`` is ``ids[k * block_size :
(k + 1) * block_size + 1]``; its first ``block_size`` tokens are the inputs and
its last ``block_size`` the next-token targets. :class:`TokenBlocks` cuts
blocks on demand, from a tensor (text records tokenised in memory, as before)
or from a token store's memory map, so a corpus of any size costs one batch
of memory. Where the ids live is decided once, by :meth:`TokenBlocks.place`:

- ids already in memory (a list of records) go to the training device whole;
- a memory-mapped store goes to a CUDA device whole when its ids, as int64,
  take at most :data:`RESIDENT_BYTES` (256 MiB); larger stores stay mapped,
  and each batch is gathered on the host and copied over from pinned memory;
- on the CPU a store always stays mapped: the page cache is the memory, and
  it is shared by every process and every run that maps the same files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

#: A store whose ids take at most this many bytes as int64 is copied whole to a CUDA device.
RESIDENT_BYTES = 256 << 20
#: The target of a position that carries no loss (a prompt token, padding): the loss skips it.
IGNORE_INDEX = -100


class Batch(NamedTuple):
    """One batch: inputs, next-token targets (``IGNORE_INDEX`` where no loss), and positions.

    ``positions`` (``(batch, block)``, or None) restart at 0 where a block holds
    a new example (packed instruction data, ``codex_ml.training.examples``):
    the model is given them as ``position_ids``, which keeps attention and
    positions inside each example. None is the plain causal case.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    positions: torch.Tensor | None = None

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """The keyword arguments of the model's forward pass."""
        if self.positions is None:
            return {"input_ids": self.inputs}
        return {"input_ids": self.inputs, "position_ids": self.positions}

    def to(self, device: torch.device, *, non_blocking: bool = False) -> Batch:
        moved = [None if t is None else t.to(device, non_blocking=non_blocking) for t in self]
        return Batch(*moved)


@dataclass(frozen=True)
class Blocks:
    """Packed inputs and their next-token targets, both ``(n_blocks, block_size)``.

    ``positions``: each input's position in its example, for blocks of packed
    instruction examples (see :class:`Batch`); None for text.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    positions: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def to(self, device: torch.device) -> Blocks:
        return Blocks(*Batch(self.inputs, self.targets, self.positions).to(device))

    @property
    def index_device(self) -> torch.device:
        """Where block indices are drawn: beside the blocks."""
        return self.inputs.device

    def take(self, index: torch.Tensor) -> Batch:
        """The batch of the blocks at ``index``."""
        positions = None if self.positions is None else self.positions[index]
        return Batch(self.inputs[index], self.targets[index], positions)


def encode_records(tokenizer: Any, records: Iterable[str], *, name: str) -> list[int]:
    """All records' token ids, each record followed by ``tokenizer.eos_id``.

    ``name`` (``"train_data"``, ``"eval_data"``) is only used in error messages.
    Ids that are not ints below the tokenizer's ``vocab_size`` are refused
    (:class:`codex_ml.data.store.encode.IdCheck`), as they are in a token store.
    """
    from codex_ml.data.store.encode import IdCheck

    check = IdCheck(tokenizer)
    eos_id = tokenizer.eos_id
    ids: list[int] = []
    for index, record in enumerate(records):
        if not isinstance(record, str):
            raise TypeError(
                f"{name}[{index}] is a {type(record).__name__}, not a str; the trainer takes "
                "text records (a data loader yields str)."
            )
        if record:  # an empty record would only add a lone end-of-sequence token
            ids.extend(tokenizer.encode(record))
            ids.append(eos_id)
    check(ids)
    return ids


def pack_blocks(ids: list[int], block_size: int, *, name: str) -> Blocks:
    """Cut ``ids`` into blocks that overlap by one token, so every token is a target once."""
    stream = torch.tensor(ids, dtype=torch.long)
    return TokenBlocks(stream, block_size, name=name).head(_block_count(len(ids), block_size, name))


def _block_count(n_tokens: int, block_size: int, name: str) -> int:
    n_blocks = (n_tokens - 1) // block_size
    if n_blocks < 1:
        raise ValueError(
            f"{name} has {n_tokens} tokens after tokenising, but one block needs "
            f"block_size + 1 = {block_size + 1}. Give it more text or lower block_size."
        )
    return n_blocks


class TokenBlocks:
    """Blocks cut on demand from one flat array of ids: a tensor, or a memory-mapped store.

    ``index_device`` is where block indices are drawn (beside the ids when they
    are a tensor, else the CPU); :meth:`take` returns the batch on ``device``.
    """

    def __init__(
        self, ids: Any, block_size: int, *, name: str, device: torch.device | None = None
    ) -> None:
        self.ids = ids
        self.block_size = block_size
        self.name = name
        self.n_blocks: int = _block_count(len(ids), block_size, name)
        self.resident: bool = isinstance(ids, torch.Tensor)
        self.index_device: torch.device = ids.device if self.resident else torch.device("cpu")
        self.device: torch.device = device if device is not None else self.index_device
        self._span = torch.arange(block_size + 1, device=self.index_device)

    def __len__(self) -> int:
        return self.n_blocks

    def place(self, device: torch.device) -> TokenBlocks:
        """These blocks, delivered on ``device`` (see the module docstring for where ids live)."""
        ids = self.ids
        if self.resident:
            ids = ids.to(device)
        elif device.type != "cpu" and len(ids) * 8 <= RESIDENT_BYTES:
            import numpy as np

            ids = torch.from_numpy(np.asarray(ids, dtype=np.int64)).to(device)
        return TokenBlocks(ids, self.block_size, name=self.name, device=device)

    def take(self, index: torch.Tensor) -> Batch:
        """``(inputs, targets)`` of the blocks at ``index``, each ``(len(index), block_size)``."""
        positions = index.unsqueeze(1) * self.block_size + self._span
        if self.resident:
            rows = self.ids[positions].long()
        else:
            import numpy as np

            rows = torch.from_numpy(np.asarray(self.ids[positions.numpy()], dtype=np.int64))
            if self.device.type == "cuda":
                rows = rows.pin_memory().to(self.device, non_blocking=True)
            else:
                rows = rows.to(self.device)
        return Batch(rows[:, :-1], rows[:, 1:])

    def head(self, n_blocks: int) -> Blocks:
        """The first ``n_blocks`` blocks (or all, if fewer) as packed tensors on ``device``."""
        n_blocks = min(n_blocks, self.n_blocks)
        stream = self.ids[: n_blocks * self.block_size + 1]
        if not self.resident:
            import numpy as np

            stream = torch.from_numpy(np.asarray(stream, dtype=np.int64))
        blocks = stream.long().unfold(0, self.block_size + 1, self.block_size)
        return Blocks(blocks[:, :-1].contiguous(), blocks[:, 1:].contiguous()).to(self.device)


def as_blocks(tokenizer: Any, data: Any, block_size: int, *, name: str) -> TokenBlocks:
    """The blocks of ``data``: text records (tokenised here) or an object with ``token_ids()``.

    ``token_ids()`` (a token store's split, :class:`codex_ml.data.store.TokenSplit`)
    returns a 1-D integer array, typically a ``numpy.memmap``; it is not copied.
    """
    token_ids = getattr(data, "token_ids", None)
    if callable(token_ids):
        return TokenBlocks(token_ids(), block_size, name=name)
    ids = torch.tensor(encode_records(tokenizer, data, name=name), dtype=torch.long)
    return TokenBlocks(ids, block_size, name=name)


def build_blocks(tokenizer: Any, records: Iterable[str], block_size: int, *, name: str) -> Blocks:
    """``pack_blocks(encode_records(...))``: the one call the trainer makes per split."""
    return pack_blocks(encode_records(tokenizer, records, name=name), block_size, name=name)


class BatchSampler:
    """Draws batches of blocks uniformly at random, with replacement, from a seeded generator.

    Under data parallelism every rank draws the indices for the whole world and
    keeps its own slice: ranks see different blocks while their generators stay
    in the same state, so one saved state resumes them all.

    For blocks whose targets skip positions (``masked`` instruction data),
    ``loss_tokens`` counts the targets drawn that carry the loss, on the
    device (read back only when the trainer logs).
    """

    def __init__(
        self,
        blocks: Blocks | TokenBlocks | Any,  # or ExampleBlocks (training/examples.py)
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.blocks: Blocks | TokenBlocks | Any = blocks
        device = blocks.index_device
        # A generator beside the ids: drawing indices never waits on the host for resident ids.
        self.generator: torch.Generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self._draw = (batch_size * world_size,)
        self._mine = slice(rank * batch_size, (rank + 1) * batch_size)
        self._device = device
        self.masked: bool = bool(getattr(blocks, "masked", False))
        self.loss_tokens: torch.Tensor = torch.zeros((), dtype=torch.long)

    def next_batch(self) -> Batch:
        """``(inputs, targets, positions)``, each ``(batch_size, block_size)`` (or None)."""
        index = torch.randint(
            len(self.blocks), self._draw, generator=self.generator, device=self._device
        )[self._mine]
        batch = self.blocks.take(index)
        if self.masked:
            counted = (batch.targets != IGNORE_INDEX).sum()
            self.loss_tokens = self.loss_tokens.to(counted.device) + counted
        return batch

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> bool:
        """Restore the generator; False when the state is from another kind of device.

        CPU and CUDA generators keep different states, so a run saved on one
        and resumed on the other cannot continue the same batch sequence.
        """
        saved = state["generator"]
        if saved.numel() != self.generator.get_state().numel():
            return False
        self.generator.set_state(saved)
        return True
