"""A tokenizer that needs no files: UTF-8 bytes are the tokens.

Ids 0..255 are the bytes themselves; three special ids follow them (pad, bos,
eos), so the vocabulary has 259 entries. Any text round-trips exactly, in any
language, which makes it the default for runs that must not depend on
downloaded artefacts.
"""

from __future__ import annotations

from collections.abc import Sequence

from codex_ml.tokenizers.batching import BatchEncodeMixin

_N_BYTES = 256


class ByteTokenizer(BatchEncodeMixin):
    """UTF-8 byte tokenizer with pad/bos/eos after the 256 byte ids (vocab 259)."""

    pad_id = _N_BYTES
    bos_id = _N_BYTES + 1
    eos_id = _N_BYTES + 2
    vocab_size = _N_BYTES + 3

    def __init__(self, *, add_bos: bool = False, add_eos: bool = False) -> None:
        # The defaults for encode(); a trainer that separates documents with eos
        # can set add_eos=True once instead of at every call.
        self.add_bos = add_bos
        self.add_eos = add_eos

    def encode(
        self, text: str, *, add_bos: bool | None = None, add_eos: bool | None = None
    ) -> list[int]:
        """Ids of ``text``'s UTF-8 bytes, with bos/eos if asked (``None``: the instance default)."""
        if not isinstance(text, str):
            raise TypeError(f"ByteTokenizer.encode expects a str, got {type(text).__name__}.")
        ids = list(text.encode("utf-8"))
        if self.add_bos if add_bos is None else add_bos:
            ids.insert(0, self.bos_id)
        if self.add_eos if add_eos is None else add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of the byte ids; specials are dropped and broken UTF-8 becomes U+FFFD.

        A model can emit any byte sequence, so decoding must never raise on one.
        """
        data = bytearray()
        for token in ids:
            token = int(token)
            if not 0 <= token < self.vocab_size:
                raise ValueError(
                    f"Token id {token} is outside ByteTokenizer's vocabulary "
                    f"(0..{self.vocab_size - 1})."
                )
            if token < _N_BYTES:
                data.append(token)
        return data.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"ByteTokenizer(add_bos={self.add_bos}, add_eos={self.add_eos})"
