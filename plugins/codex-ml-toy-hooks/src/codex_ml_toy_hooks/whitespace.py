"""A tokenizer over white-space separated words, growing its vocabulary as it goes."""

from __future__ import annotations

from collections.abc import Sequence


class WhitespaceTokenizer:
    """Words to ids; unknown words get the next free id."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}

    def encode(self, text: str) -> list[int]:
        return [self.vocab.setdefault(word, len(self.vocab)) for word in text.split()]

    def decode(self, ids: Sequence[int]) -> str:
        inverse = {i: word for word, i in self.vocab.items()}
        return " ".join(inverse[i] for i in ids)
