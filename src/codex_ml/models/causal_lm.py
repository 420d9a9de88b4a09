"""Is a saved Hugging Face model a causal LM? Decided from its ``config.json`` alone.

codex-ml trains a model to predict each next token from the ones before it.
An encoder (BERT, MiniLM, RoBERTa) sees the whole text at once, and an
encoder-decoder (T5, BART) needs a second input; ``AutoModelForCausalLM``
loads some of them anyway (``bert`` maps to ``BertLMHeadModel``), bolting a
fresh head onto a model whose attention looks ahead, and the run "trains" on
the answer. So the config is read first, before a weight is loaded, and such a
model is refused naming its ``model_type`` and architecture.

The rule: ``is_encoder_decoder`` is refused; a ``model_type`` that
transformers has no causal-LM class for is refused; and a family that is an
encoder unless its config says ``is_decoder: true`` (those with a masked-LM
class as well as a causal one: bert, roberta, electra...) is refused without
that flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: What a refusal offers instead.
FITTING_MODELS = (
    "decoder-only causal LMs such as gpt2, llama, mistral, qwen2, phi3 or gemma "
    "(a folder saved from AutoModelForCausalLM), or codex-ml's own model=offline/decoder_only"
)


def causal_lm_refusal(config: Mapping[str, Any]) -> str | None:
    """Why the model a ``config.json`` describes is not a causal LM, or None when it is one.

    ``config`` is the parsed ``config.json`` (or ``PretrainedConfig.to_dict()``).
    """
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = config.get("model_type")
    what = _described(config)
    if config.get("is_encoder_decoder"):
        return (
            f"{what}, an encoder-decoder: it writes its output from a separate encoded input, "
            "not by continuing the text"
        )
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return f"{what}, for which transformers has no causal language model class"
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not _runs_as_decoder(config):
        return (
            f"{what}, an encoder: its attention sees the whole text at once, so it cannot learn "
            "to predict the next token (transformers runs this family as a decoder only when "
            "its config.json says is_decoder: true)"
        )
    return None


def require_causal_lm(config: Mapping[str, Any], directory: str | Path) -> None:
    """Raise :class:`NotACausalLMError` unless ``config`` describes a causal LM."""
    refusal = causal_lm_refusal(config)
    if refusal is not None:
        raise NotACausalLMError(
            f"model: {directory} holds {refusal}. codex-ml trains causal language models, which "
            f"predict each token from the ones before it: {FITTING_MODELS}."
        )


class NotACausalLMError(ValueError):
    """A model directory holds an encoder or an encoder-decoder: refused before loading."""


def _runs_as_decoder(config: Mapping[str, Any]) -> bool:
    # XLM names its causal mode `causal`; the others `is_decoder`.
    return bool(config.get("is_decoder") or config.get("causal"))


def _described(config: Mapping[str, Any]) -> str:
    """``a 'bert' model (BertModel)``: its type and the architectures it was saved as."""
    architectures = config.get("architectures") or []
    saved_as = f" ({', '.join(map(str, architectures))})" if architectures else ""
    return f"a {config.get('model_type')!r} model{saved_as}"
