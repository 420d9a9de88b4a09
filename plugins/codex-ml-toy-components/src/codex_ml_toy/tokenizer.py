"""A character-level tokenizer with a minimal encode/decode interface."""

from __future__ import annotations

from collections.abc import Sequence

_DEFAULT_ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!?"


class ToyTokenizer:
    """Character-level tokenizer; ``vocab`` maps characters to ids (default: a-z, punctuation)."""

    def __init__(self, vocab: dict[str, int] | None = None) -> None:
        self.vocab = dict(vocab) if vocab else {ch: i for i, ch in enumerate(_DEFAULT_ALPHABET)}
        self.inverse = {i: ch for ch, i in self.vocab.items()}
        self.pad_id = len(self.vocab)
        self.bos_id = self.eos_id = self.pad_id + 1
        self.vocab_size = self.pad_id + 2

    def encode(self, text: str) -> list[int]:
        return [self.vocab[ch] for ch in text.lower() if ch in self.vocab]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.inverse.get(int(i), "") for i in ids)
