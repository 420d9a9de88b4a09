"""The small protocols every component of a kind follows.

A registry entry is a *factory*; these describe what the factory returns.
They are structural (``typing.Protocol``): a third-party component never
needs to import codex_ml to satisfy one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Tokenizer(Protocol):
    """Turns text into token ids and back."""

    vocab_size: int
    pad_id: int
    eos_id: int
    bos_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def batch_encode(
        self,
        texts: Sequence[str],
        *,
        max_length: int | None = None,
        padding: bool = True,
        truncation: bool = True,
    ) -> dict[str, list[list[int]]]:
        """Return ``{"input_ids": [...], "attention_mask": [...]}``, padded with ``pad_id``."""
        ...


class Metric(Protocol):
    """``metric(preds, targets, **kw) -> float``."""

    def __call__(self, preds: Any, targets: Any, **kwargs: Any) -> float: ...


@runtime_checkable
class RewardModel(Protocol):
    """Scores a completion given its prompt; higher is better."""

    def evaluate(self, prompt: str, completion: str) -> float: ...

    def batch_evaluate(self, pairs: Iterable[tuple[str, str]]) -> list[float]: ...


class Trainer(Protocol):
    """Trains a model on text records and returns a result with history and metrics."""

    def __call__(
        self,
        model: Any,
        tokenizer: Tokenizer,
        train_data: Iterable[str],
        eval_data: Iterable[str] | None = None,
        *,
        callbacks: Sequence[Callable[..., None]] = (),
    ) -> Any: ...


#: A data loader factory returns an iterable of text records (``str``).
DataLoader = Callable[..., Iterable[str]]

#: What a metric returns when it reports several numbers at once.
MetricReport = Mapping[str, float]
