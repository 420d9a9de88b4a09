"""How many bytes of text each token id stands for: what bits per byte divides by.

For a byte-level tokenizer every token is a run of UTF-8 bytes, so the bytes
of any stretch of tokens (a held-out split cut at ``--max-tokens``, say) are
the sum of their tokens' lengths, exactly, even where a token ends inside a
multi-byte character. Special tokens (eos between records) stand for no text.

- :class:`~codex_ml.tokenizers.byte_level.ByteTokenizer`: 1 for each byte id,
  0 for pad/bos/eos;
- a Hugging Face tokenizer with a byte-level decoder (GPT-2's, codex-ml's
  ``bpe``): each vocabulary entry's length in the byte-level alphabet (one
  character per byte), 0 for special tokens, the UTF-8 length of other added
  tokens;
- any other tokenizer: ``None``, since its tokens need not map to bytes.
"""

from __future__ import annotations

import json
from typing import Any

from codex_ml.tokenizers.byte_level import ByteTokenizer


def token_byte_lengths(tokenizer: Any) -> list[int] | None:
    """Bytes of text per token id (indexed by id), or None where tokens are not bytes."""
    if isinstance(tokenizer, ByteTokenizer):
        return [1] * 256 + [0] * (tokenizer.vocab_size - 256)
    backend = getattr(getattr(tokenizer, "hf_tokenizer", None), "backend_tokenizer", None)
    if backend is None or not is_byte_level(backend):
        return None
    lengths = [0] * int(tokenizer.vocab_size)
    for token, index in backend.get_vocab(with_added_tokens=False).items():
        if index < len(lengths):
            lengths[index] = len(token)
    for index, added in backend.get_added_tokens_decoder().items():
        if index < len(lengths):
            lengths[index] = 0 if added.special else len(added.content.encode("utf-8"))
    return lengths


def is_byte_level(backend: Any) -> bool:
    """Whether a ``tokenizers.Tokenizer`` decodes its tokens as GPT-2 byte-level symbols."""
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    kinds = [decoder.get("type")] + [d.get("type") for d in decoder.get("decoders", [])]
    return "ByteLevel" in kinds
