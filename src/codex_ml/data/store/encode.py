"""Tokenise many records at once: the fastest way each kind of tokenizer offers.

- :class:`~codex_ml.tokenizers.byte_level.ByteTokenizer`: the ids *are* the
  UTF-8 bytes, so a whole batch is one ``bytes`` join and one numpy view;
- a Hugging Face fast tokenizer: ``encode_batch`` on its Rust backend, which
  spreads a batch over the cores (``RAYON_NUM_THREADS`` caps them);
- a tokenizer with ``encode_many(texts)`` (a plugin's own batch path);
- any other tokenizer: ``encode`` per record, which always works.

Every path gives the ids ``training.data.encode_records`` would: each record's
ids followed by ``eos_id``, empty records skipped. Every batch is checked
(:class:`IdCheck`) before it is written: a tokenizer that gives a float, a
negative id or one outside its own ``vocab_size`` is named in one paragraph,
never truncated into a store that trains on the wrong ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from codex_ml.config import ConfigError

#: texts -> one flat int64 array of ids, eos after each text.
BatchEncode = Callable[[Sequence[str]], Any]


class IdCheck:
    """Token ids as an int64 array, refused unless they are ints in ``0..vocab_size - 1``.

    The error names the tokenizer (its class) and the id at fault: a float id
    would be truncated (3.7 -> 3) and an id past ``vocab_size`` would index
    past the model's embedding, so neither may reach a store or a trainer.
    """

    def __init__(self, tokenizer: Any) -> None:
        kind = type(tokenizer)
        self.name = f"{kind.__module__}.{kind.__qualname__}"
        self.vocab_size = tokenizer.vocab_size
        if not _is_int(self.vocab_size) or self.vocab_size < 1:
            raise self._error(f"has vocab_size {self.vocab_size!r}, not a positive int")
        if not _is_int(tokenizer.eos_id) or not 0 <= tokenizer.eos_id < self.vocab_size:
            raise self._error(f"has eos_id {tokenizer.eos_id!r}, not an id of its vocabulary")

    def __call__(self, ids: Any) -> Any:
        import numpy as np

        try:
            array = np.asarray(ids)
        except (OverflowError, ValueError) as exc:
            raise self._error(f"gave ids numpy cannot hold as integers ({exc})") from None
        if array.size == 0:
            return array.astype(np.int64).reshape(-1)
        if array.dtype.kind not in "iu":
            flat = array.reshape(-1).tolist()
            fractional = (v for v in flat if isinstance(v, float) and not v.is_integer())
            example = next(fractional, next((v for v in flat if not _is_int(v)), flat[0]))
            raise self._error(f"gave the id {example!r} ({type(example).__name__}), not an int")
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= self.vocab_size:
            raise self._error(
                f"gave the id {low if low < 0 else high}, outside its vocabulary "
                f"(0..{self.vocab_size - 1} for its vocab_size {self.vocab_size})"
            )
        return array.astype(np.int64, copy=False).reshape(-1)

    def _error(self, what: str) -> ConfigError:
        return ConfigError(
            f"the tokenizer ({self.name}) {what}; token ids are ints from 0 to vocab_size - 1. "
            "Fix the tokenizer's encode or its vocab_size (or choose another tokenizer=); "
            "nothing was written.",
            where="tokenizer",
        )


def _is_int(value: Any) -> bool:
    """An int (Python's or numpy's), not a bool."""
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def batch_encoder(tokenizer: Any) -> tuple[str, BatchEncode]:
    """``(name of the path taken, function)`` for ``tokenizer``; the function checks its ids."""
    check = IdCheck(tokenizer)
    method, encode = _fastest(tokenizer)
    return method, lambda texts: check(encode(texts))


def _fastest(tokenizer: Any) -> tuple[str, BatchEncode]:
    from codex_ml.tokenizers.byte_level import ByteTokenizer

    eos = int(tokenizer.eos_id)

    if type(tokenizer) is ByteTokenizer and not (tokenizer.add_bos or tokenizer.add_eos):
        return "bytes (vectorised)", lambda texts: _bytes_ids(texts, eos)
    backend = getattr(getattr(tokenizer, "hf_tokenizer", None), "backend_tokenizer", None)
    if backend is not None:
        special = bool(getattr(tokenizer, "add_special_tokens", False))
        batch = getattr(backend, "encode_batch_fast", None) or backend.encode_batch

        def hf(texts: Sequence[str]) -> Any:
            texts = [t for t in texts if t]
            encodings = batch(texts, add_special_tokens=special)
            return _join([e.ids for e in encodings], eos)

        return "Hugging Face fast tokenizer (encode_batch)", hf
    many = getattr(tokenizer, "encode_many", None)
    if callable(many):
        return "encode_many", lambda texts: _join(many([t for t in texts if t]), eos)

    def one_by_one(texts: Sequence[str]) -> Any:
        return _join([tokenizer.encode(t) for t in texts if t], eos)

    return "encode (one record at a time)", one_by_one


def _bytes_ids(texts: Sequence[str], eos: int) -> Any:
    import numpy as np

    encoded = [t.encode("utf-8") for t in texts if t]
    if not encoded:
        return np.empty(0, dtype=np.uint16)
    # 0xFF never occurs in UTF-8, so it can stand for the eos id until the ids are widened.
    data = np.frombuffer(b"\xff".join(encoded) + b"\xff", dtype=np.uint8)
    ends = np.flatnonzero(data == 0xFF)  # one per record: cheaper to find in the bytes
    ids = data.astype(np.uint16)
    ids[ends] = eos
    return ids


def _join(rows: Sequence[Sequence[int]], eos: int) -> Any:
    import numpy as np

    flat: list[Any] = []
    for row in rows:
        flat.extend(row)
        flat.append(eos)
    return np.array(flat) if flat else np.empty(0, dtype=np.int64)  # IdCheck says what they are
