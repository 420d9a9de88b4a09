"""Tokenizers: the file-free byte tokenizer, Hugging Face ones, and a BPE trained on the run.

Importing this package is free: ``byte_level`` is pure Python, and the
Hugging Face names are loaded (with transformers) only when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from codex_ml.tokenizers.byte_level import ByteTokenizer

_LAZY = {
    "HFTokenizer": "codex_ml.tokenizers.hf",
    "load_hf_tokenizer": "codex_ml.tokenizers.hf",
    "gpt2_offline_tokenizer": "codex_ml.tokenizers.hf",
    "tinyllama_offline_tokenizer": "codex_ml.tokenizers.hf",
    "bpe_tokenizer": "codex_ml.tokenizers.bpe",
}

__all__ = ["ByteTokenizer", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
