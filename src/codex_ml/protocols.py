"""The small protocols every component of a kind follows.

A registry entry is a *factory*; these describe what the factory returns, and
so what each ``get_<kind>`` is typed to return. They are structural
(``typing.Protocol``): a third-party component never needs to import codex_ml
to satisfy one. Attributes are read-only properties here, so that a plain
attribute and a ``@property`` both satisfy them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Adapter",
    "DataLoader",
    "Metric",
    "MetricReport",
    "Model",
    "RewardModel",
    "Tokenizer",
    "Trainer",
]


@runtime_checkable
class Tokenizer(Protocol):
    """Turns text into token ids and back."""

    @property
    def vocab_size(self) -> int:
        """Every id the tokenizer can produce (the size of an embedding table)."""
        ...

    @property
    def pad_id(self) -> int:
        """The id batches are padded with."""
        ...

    @property
    def eos_id(self) -> int:
        """The id that ends a document."""
        ...

    @property
    def bos_id(self) -> int:
        """The id that starts a document."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``."""
        ...

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


class Model(Protocol):
    """A ``torch.nn.Module`` (or alike): ``model(input_ids, labels=None)`` gives logits and loss.

    Only what every trainer relies on is named, so that Hugging Face models and
    plain modules both fit without importing torch to type-check.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The forward pass."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[Any]:
        """The trainable tensors."""
        ...


class Metric(Protocol):
    """``metric(preds, targets, **kw) -> float``.

    Metrics differ in what they take (``ppl(nlls)``, ``ppl(logits, ids)``,
    keywords such as ``weights_path=``), so only the float result is fixed.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> float:
        """The score of ``preds`` against ``targets``."""
        ...


@runtime_checkable
class RewardModel(Protocol):
    """Scores a completion given its prompt; higher is better."""

    def evaluate(self, prompt: str, completion: str) -> float:
        """The reward of one completion."""
        ...

    def batch_evaluate(self, pairs: Iterable[tuple[str, str]]) -> list[float]:
        """The rewards of ``(prompt, completion)`` pairs, in order."""
        ...


class Trainer(Protocol):
    """Trains a model on text records and returns a result with history and metrics."""

    def __call__(
        self,
        model: Any,
        tokenizer: Tokenizer,
        train_data: Iterable[str],
        eval_data: Iterable[str] | None = None,
        *,
        callbacks: Sequence[Any] = (),
    ) -> Any:
        """Train ``model`` on ``train_data`` (text records) and return the result."""
        ...


@runtime_checkable
class Adapter(Protocol):
    """Turns a built model into the model to train, and saves, loads and merges what it trains.

    ``apply`` chooses which parameters train (and may add modules, as LoRA
    does); a checkpoint then holds only :meth:`trainable_state`, never the
    base weights, and :meth:`load_trainable_state` puts it back into a model
    built and applied the same way. :meth:`merge` folds what was trained into
    the base weights, for an export that needs no adapter code. The trainer
    never sees an adapter: it trains whatever parameters require a gradient.
    """

    def apply(self, model: Any) -> Any:
        """The model to train: ``model`` with its trainable parameters chosen (in place or new)."""
        ...

    def trainable_state(self, model: Any) -> Mapping[str, Any]:
        """The tensors a checkpoint holds, by name: what trains, no frozen base weight."""
        ...

    def load_trainable_state(self, model: Any, state: Mapping[str, Any]) -> None:
        """Put a :meth:`trainable_state` back into ``model`` (built and applied the same way)."""
        ...

    def merge(self, model: Any) -> Any:
        """``model`` as a plain model of its base's type, with what was trained folded in."""
        ...


#: A data loader factory returns an iterable of text records (``str``), or of instruction
#: examples (``codex_ml.data.examples.PromptCompletion`` / ``Chat``: the token store masks them).
DataLoader = Callable[..., Iterable[str]]

#: What a metric returns when it reports several numbers at once.
MetricReport = Mapping[str, float]
