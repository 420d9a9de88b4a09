"""A bigram language model: the smallest thing that follows the codex-ml model protocol."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


def build_toy_model(vocab_size: int = 34, seed: int = 0) -> Any:
    """A bigram LM over ``vocab_size`` ids; torch is imported only when this is called."""
    import torch
    from torch import nn

    class BigramLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = nn.Embedding(vocab_size, vocab_size)

        def forward(self, input_ids, attention_mask=None, labels=None):  # type: ignore[no-untyped-def]
            logits = self.table(input_ids)
            loss = None
            if labels is not None:
                loss = nn.functional.cross_entropy(
                    logits[:, :-1].reshape(-1, vocab_size),
                    labels[:, 1:].reshape(-1),
                    ignore_index=-100,
                )
            return SimpleNamespace(logits=logits, loss=loss)

    torch.manual_seed(seed)
    return BigramLM()
