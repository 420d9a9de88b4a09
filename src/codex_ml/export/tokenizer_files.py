"""A run's tokenizer as Hugging Face tokenizer files, giving the ids codex-ml gives.

The byte tokenizer becomes a ``tokenizers`` byte-level tokenizer: each byte
is its GPT-2 byte-level symbol, mapped to the byte's own id, with no merges,
and pad/bos/eos as special tokens at 256-258. Special-token text typed into a
prompt ("<eos>") stays bytes (``split_special_tokens``), as it does in
codex-ml, and broken UTF-8 decodes to U+FFFD the way Python's does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_ml.export.errors import ExportError
from codex_ml.tokenizers.byte_level import ByteTokenizer

#: How the byte tokenizer's special ids read as text, in id order (pad, bos, eos).
BYTE_SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


def write_tokenizer(folder: Path, tokenizer: Any, context_length: int | None) -> None:
    """Save ``tokenizer`` into ``folder`` for ``AutoTokenizer.from_pretrained``."""
    if isinstance(tokenizer, ByteTokenizer):
        byte_tokenizer_for_transformers(tokenizer, context_length).save_pretrained(folder)
        return
    hf_tokenizer = getattr(tokenizer, "hf_tokenizer", None)
    if hf_tokenizer is None:
        raise ExportError(
            f"tokenizer: {type(tokenizer).__qualname__} is neither codex-ml's byte tokenizer "
            "nor a Hugging Face tokenizer, so export cannot write it as tokenizer files. Export "
            "a run with the bytes or an hf tokenizer, or give your tokenizer an hf_tokenizer "
            "attribute holding a transformers tokenizer with the same ids."
        )
    hf_tokenizer.save_pretrained(folder)


def byte_symbols() -> dict[int, str]:
    """GPT-2's byte-level alphabet: each byte as one printable character."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:  # control characters and spaces move past Latin-1, in order
            symbols[byte] = chr(256 + shifted)
            shifted += 1
    return symbols


def byte_tokenizer_for_transformers(tokenizer: ByteTokenizer, context_length: int | None) -> Any:
    """A ``PreTrainedTokenizerFast`` with ``tokenizer``'s ids, bos/eos defaults included."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {symbol: byte for byte, symbol in byte_symbols().items()}
    backend = Tokenizer(models.BPE(vocab, []))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    pad, bos, eos = BYTE_SPECIAL_TOKENS
    backend.add_special_tokens([AddedToken(t, special=True) for t in BYTE_SPECIAL_TOKENS])
    assert [backend.token_to_id(t) for t in BYTE_SPECIAL_TOKENS] == [
        tokenizer.pad_id,
        tokenizer.bos_id,
        tokenizer.eos_id,
    ]
    _add_bos_eos(backend, tokenizer)
    extra = {} if context_length is None else {"model_max_length": context_length}
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        split_special_tokens=True,
        clean_up_tokenization_spaces=False,
        **extra,
    )


def _add_bos_eos(backend: Any, tokenizer: ByteTokenizer) -> None:
    """Add bos/eos around the text where ``tokenizer.encode`` does by default."""
    if not (tokenizer.add_bos or tokenizer.add_eos):
        return
    from tokenizers import processors

    _, bos, eos = BYTE_SPECIAL_TOKENS
    parts = [bos] * tokenizer.add_bos + ["$A"] + [eos] * tokenizer.add_eos
    backend.post_processor = processors.TemplateProcessing(
        single=" ".join(parts),
        special_tokens=[(bos, tokenizer.bos_id), (eos, tokenizer.eos_id)],
    )
