"""Models: the in-repo decoder-only LM, sampling, and offline Hugging Face models.

Importing this package is free: each name (and torch with it) is loaded on
first use, so the registry can describe model entries without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "DecoderOnlyConfig": "codex_ml.models.decoder_only",
    "DecoderOnlyLM": "codex_ml.models.decoder_only",
    "CausalLMOutput": "codex_ml.models.decoder_only",
    "build_decoder_only": "codex_ml.models.decoder_only",
    "build_minilm": "codex_ml.models.decoder_only",
    "generate": "codex_ml.models.sampling",
    "count_parameters": "codex_ml.models.parameters",
    "load_causal_lm": "codex_ml.models.hf",
    "hf_model": "codex_ml.models.hf",
    "gpt2_offline_model": "codex_ml.models.hf",
    "tinyllama_offline_model": "codex_ml.models.hf",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
