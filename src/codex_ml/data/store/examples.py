"""Tokenise instruction examples: their ids, and a flag byte per token saying what it is.

Each example becomes its parts' tokens (:func:`codex_ml.data.chat.example_parts`)
followed by the tokenizer's ``eos_id`` (unless its last token already is
one), and each token gets flags (:data:`LOSS`, :data:`START`), which the token
store keeps beside the ids (``train.mask``, ``eval.mask``):

- :data:`LOSS`: the token is a target that carries the loss: it belongs to a
  completion or to an assistant's turn, or is the eos after one;
- :data:`START`: the token is its example's first. A first token never carries
  the loss: nothing of its example comes before it to predict it from. The
  trainer cuts blocks at these boundaries and keeps attention and positions
  inside each example (``codex_ml.training.examples``).

How a part becomes tokens depends on the tokenizer, as for plain text
(:mod:`.encode`): the byte tokenizer's ids are the UTF-8 bytes of each part; a
Hugging Face fast tokenizer tokenises the whole example at once and a token
carries the loss when its characters (its offsets) overlap a part that does,
so tokens are what they would be for the text as a whole; any other tokenizer
encodes each part on its own. Ids are checked as plain text's are
(:class:`~.encode.IdCheck`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from codex_ml.data.chat import Part, example_parts
from codex_ml.data.examples import Chat, PromptCompletion
from codex_ml.data.store.encode import IdCheck
from codex_ml.data.store.layout import LOSS, START

Example = PromptCompletion | Chat
#: examples -> (ids as int64, flags as uint8), one flat array each.
ExampleEncode = Callable[[Sequence[Example]], tuple[Any, Any]]


def example_encoder(tokenizer: Any) -> tuple[str, ExampleEncode]:
    """``(name of the path taken, function)`` for ``tokenizer``; the function checks its ids."""
    import numpy as np

    check = IdCheck(tokenizer)
    eos = int(tokenizer.eos_id)
    method, tokens_of = _token_path(tokenizer)

    def encode(examples: Sequence[Example]) -> tuple[Any, Any]:
        pieces = tokens_of([example_parts(example, tokenizer) for example in examples])
        ids, flags = [], []
        for example_ids, example_loss in pieces:
            example_ids, example_flags = _ended(example_ids, example_loss, eos, np)
            ids.append(example_ids)
            flags.append(example_flags)
        if not ids:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8)
        return check(np.concatenate(ids)), np.concatenate(flags)

    return method, encode


def _ended(ids: Any, loss: Any, eos: int, np: Any) -> tuple[Any, Any]:
    """An example's ids with eos after them, and its flags."""
    ids = np.asarray(ids, dtype=np.int64)
    loss = np.asarray(loss, dtype=bool)
    if not len(ids) or ids[-1] != eos:
        last = bool(loss[-1]) if len(loss) else False
        ids = np.append(ids, eos)
        loss = np.append(loss, last)
    flags = loss.astype(np.uint8) * LOSS
    flags[0] = START  # never LOSS: no token of its example comes before the first
    return ids, flags


#: parts of each example -> (ids, carries-the-loss) of each example.
_TokensOf = Callable[[list[list[Part]]], list[tuple[Any, Any]]]


def _token_path(tokenizer: Any) -> tuple[str, _TokensOf]:
    from codex_ml.tokenizers.byte_level import ByteTokenizer

    if type(tokenizer) is ByteTokenizer and not (tokenizer.add_bos or tokenizer.add_eos):
        return "bytes of each part", _byte_tokens
    backend = getattr(getattr(tokenizer, "hf_tokenizer", None), "backend_tokenizer", None)
    if backend is not None:
        special = bool(getattr(tokenizer, "add_special_tokens", False))
        return (
            "Hugging Face fast tokenizer (whole examples, offsets)",
            lambda examples: _offset_tokens(backend, special, examples),
        )

    def each_part(examples: list[list[Part]]) -> list[tuple[Any, Any]]:
        import numpy as np

        found = []
        for parts in examples:
            ids = [np.asarray(tokenizer.encode(text), dtype=np.int64) for text, _ in parts]
            loss = [np.full(len(i), trained) for i, (_, trained) in zip(ids, parts, strict=True)]
            found.append(_joined(ids, loss, np))
        return found

    return "encode (each part on its own)", each_part


def _joined(ids: list[Any], loss: list[Any], np: Any) -> tuple[Any, Any]:
    if not ids:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
    return np.concatenate(ids), np.concatenate(loss)


def _byte_tokens(examples: list[list[Part]]) -> list[tuple[Any, Any]]:
    import numpy as np

    found = []
    for parts in examples:
        data = [text.encode("utf-8") for text, _ in parts]
        ids = np.frombuffer(b"".join(data), dtype=np.uint8).astype(np.int64)
        loss = np.repeat([trained for _, trained in parts], [len(d) for d in data])
        found.append((ids, loss.astype(bool)))
    return found


def _offset_tokens(
    backend: Any, special: bool, examples: list[list[Part]]
) -> list[tuple[Any, Any]]:
    """Each example tokenised whole; a token carries the loss if it overlaps a part that does."""
    import numpy as np

    texts = ["".join(text for text, _ in parts) for parts in examples]
    encodings = backend.encode_batch(texts, add_special_tokens=special)
    found = []
    for parts, encoding in zip(examples, encodings, strict=True):
        ids = np.asarray(encoding.ids, dtype=np.int64)
        offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
        starts, ends = offsets[:, 0], offsets[:, 1]
        loss = np.zeros(len(ids), dtype=bool)
        at = 0
        for text, trained in parts:
            span_end = at + len(text)
            if trained:
                overlaps = (ends > at) & (starts < span_end)
                inside = (starts == ends) & (starts >= at) & (starts < span_end)  # zero-width
                loss |= overlaps | inside
            at = span_end
        found.append((ids, loss))
    return found
