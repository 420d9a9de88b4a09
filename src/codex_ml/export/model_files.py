"""A run's model as a ``transformers`` folder: config, safetensors weights, generation config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_ml.export.errors import ExportError

WEIGHTS_FILE = "model.safetensors"


def special_ids(tokenizer: Any) -> dict[str, int]:
    """The tokenizer's bos/eos/pad ids under the names ``transformers`` configs use."""
    return {
        "bos_token_id": int(tokenizer.bos_id),
        "eos_token_id": int(tokenizer.eos_id),
        "pad_token_id": int(tokenizer.pad_id),
    }


def write_model(folder: Path, model: Any, tokenizer: Any) -> str:
    """Write ``model`` into ``folder``; returns the ``transformers`` class it loads as."""
    from transformers import PreTrainedModel

    from codex_ml.models.decoder_only import DecoderOnlyLM

    ids = special_ids(tokenizer)
    if isinstance(model, DecoderOnlyLM):
        architecture = _write_decoder_only(folder, model, ids)
    elif isinstance(model, PreTrainedModel):
        architecture = _write_hf(folder, model)
    else:
        raise ExportError(
            f"model: {type(model).__qualname__} is neither codex-ml's decoder (decoder_only, "
            "minilm) nor a transformers model, so export knows no standard architecture for "
            "it. Save it with its own code instead."
        )
    _write_generation_config(folder, ids)
    return architecture


def _write_decoder_only(folder: Path, model: Any, ids: dict[str, int]) -> str:
    from safetensors.torch import save_file

    from codex_ml.export.decoder_only import hf_counterpart

    config, weights = hf_counterpart(model, ids)
    config.save_pretrained(folder)
    save_file(weights, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    return str(config.architectures[0])


def _write_hf(folder: Path, model: Any) -> str:
    """A Hugging Face model stays its own type: ``save_pretrained`` (safetensors)."""
    model.save_pretrained(folder)
    return type(model).__name__


def _write_generation_config(folder: Path, ids: dict[str, int]) -> None:
    """The tokenizer's ids and nothing else, as ``codex-ml generate`` uses them.

    A model's own generation config (a repetition penalty, sampling defaults)
    is not carried over: codex-ml never applied it, so greedy decoding from the
    folder would otherwise give other text.
    """
    from transformers import GenerationConfig

    GenerationConfig(**ids).save_pretrained(folder)
