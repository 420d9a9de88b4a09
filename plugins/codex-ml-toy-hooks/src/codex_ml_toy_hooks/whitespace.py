"""A tokenizer over white-space separated words, growing its vocabulary as it goes."""

from __future__ import annotations

from collections.abc import Sequence


class WhitespaceTokenizer:
    """Words to ids; unknown words get the next free id, up to ``max_words`` words.

    Ids 0-2 are pad, bos and eos; words follow them. The vocabulary is bounded
    (``vocab_size``), as a model's embedding table must be.
    """

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, max_words: int = 1024) -> None:
        self.vocab: dict[str, int] = {}
        self.max_words = max_words
        self.vocab_size = max_words + 3

    def encode(self, text: str) -> list[int]:
        return [self._id(word) for word in text.split()]

    def _id(self, word: str) -> int:
        if word not in self.vocab:
            if len(self.vocab) >= self.max_words:
                raise ValueError(f"more than max_words={self.max_words} distinct words")
            self.vocab[word] = len(self.vocab) + 3
        return self.vocab[word]

    def decode(self, ids: Sequence[int]) -> str:
        inverse = {i: word for word, i in self.vocab.items()}
        return " ".join(inverse[i] for i in ids if i in inverse)
