"""From text records to training batches: tokenise, pack into blocks, sample.

Records are tokenised, joined with the tokenizer's end-of-sequence id and cut
into blocks of ``block_size + 1`` tokens; a block's first ``block_size`` tokens
are the inputs and its last ``block_size`` the next-token targets. Blocks are
built once, moved to the device once, and batches are drawn from them by index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Blocks:
    """Packed inputs and their next-token targets, both ``(n_blocks, block_size)``."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def to(self, device: torch.device) -> Blocks:
        return Blocks(self.inputs.to(device), self.targets.to(device))


def encode_records(tokenizer: Any, records: Iterable[str], *, name: str) -> list[int]:
    """All records' token ids, each record followed by ``tokenizer.eos_id``.

    ``name`` (``"train_data"``, ``"eval_data"``) is only used in error messages.
    """
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
    return ids


def pack_blocks(ids: list[int], block_size: int, *, name: str) -> Blocks:
    """Cut ``ids`` into blocks that overlap by one token, so every token is a target once."""
    n_blocks = (len(ids) - 1) // block_size
    if n_blocks < 1:
        raise ValueError(
            f"{name} has {len(ids)} tokens after tokenising, but one block needs "
            f"block_size + 1 = {block_size + 1}. Give it more text or lower block_size."
        )
    stream = torch.tensor(ids[: n_blocks * block_size + 1], dtype=torch.long)
    blocks = stream.unfold(0, block_size + 1, block_size)  # (n_blocks, block_size + 1), a view
    return Blocks(blocks[:, :-1].contiguous(), blocks[:, 1:].contiguous())


def build_blocks(tokenizer: Any, records: Iterable[str], block_size: int, *, name: str) -> Blocks:
    """``pack_blocks(encode_records(...))``: the one call the trainer makes per split."""
    return pack_blocks(encode_records(tokenizer, records, name=name), block_size, name=name)


class BatchSampler:
    """Draws batches of blocks uniformly at random, with replacement, from a seeded generator.

    Under data parallelism every rank draws the indices for the whole world and
    keeps its own slice: ranks see different blocks while their generators stay
    in the same state, so one saved state resumes them all.
    """

    def __init__(
        self, blocks: Blocks, *, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        self.blocks = blocks
        device = blocks.inputs.device
        # A generator on the blocks' device: drawing indices never waits on the host.
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)
        self._draw = (batch_size * world_size,)
        self._mine = slice(rank * batch_size, (rank + 1) * batch_size)
        self._device = device

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)``, each ``(batch_size, block_size)``."""
        index = torch.randint(
            len(self.blocks), self._draw, generator=self.generator, device=self._device
        )[self._mine]
        return self.blocks.inputs[index], self.blocks.targets[index]

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
