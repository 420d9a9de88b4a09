"""Tokenise many records at once: the fastest way each kind of tokenizer offers.

- :class:`~codex_ml.tokenizers.byte_level.ByteTokenizer`: the ids *are* the
  UTF-8 bytes, so a whole batch is one ``bytes`` join and one numpy view;
- a Hugging Face fast tokenizer: ``encode_batch`` on its Rust backend, which
  spreads a batch over the cores (``RAYON_NUM_THREADS`` caps them);
- a tokenizer with ``encode_many(texts)`` (a plugin's own batch path);
- any other tokenizer: ``encode`` per record, which always works.

Every path gives the ids ``training.data.encode_records`` would: each record's
ids followed by ``eos_id``, empty records skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

#: texts -> one flat int64 array of ids, eos after each text.
BatchEncode = Callable[[Sequence[str]], Any]


def batch_encoder(tokenizer: Any) -> tuple[str, BatchEncode]:
    """``(name of the path taken, function)`` for ``tokenizer``."""
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

    flat: list[int] = []
    for row in rows:
        flat.extend(row)
        flat.append(eos)
    return np.array(flat, dtype=np.int64)
