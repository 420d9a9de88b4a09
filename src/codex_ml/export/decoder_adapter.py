"""A LoRA adapter of codex-ml's decoder, renamed onto the architecture its base exports as.

``--adapter-only`` writes the base as export always does (GPT-2 for learned
positions, GPT-NeoX for rotary ones, :mod:`codex_ml.export.decoder_only`), so
the adapter must name that architecture's layers: ``blocks.0.attn.qkv``
becomes GPT-2's ``transformer.h.0.attn.c_attn`` (a ``Conv1D``, hence
``fan_in_fan_out``) or GPT-NeoX's ``gpt_neox.layers.0.attention.query_key_value``,
whose q/k/v rows are grouped head by head: the adapter's ``B`` rows are
regrouped the same way. ``A`` and ``B`` keep their shapes either way: peft
applies ``B A x`` beside a ``Conv1D`` just as beside an ``nn.Linear``.
"""

from __future__ import annotations

import re
from typing import Any

from codex_ml.export.decoder_only import per_head_qkv
from codex_ml.export.errors import ExportError

#: positions -> (the counterpart's prefix of block N, codex-ml layer -> counterpart layer).
LAYERS: dict[str, tuple[str, dict[str, str]]] = {
    "learned": (
        "transformer.h.{}.",
        {
            "attn.qkv": "attn.c_attn",
            "attn.proj": "attn.c_proj",
            "mlp.fc": "mlp.c_fc",
            "mlp.proj": "mlp.c_proj",
        },
    ),
    "rope": (
        "gpt_neox.layers.{}.",
        {
            "attn.qkv": "attention.query_key_value",
            "attn.proj": "attention.dense",
            "mlp.fc": "mlp.dense_h_to_4h",
            "mlp.proj": "mlp.dense_4h_to_h",
        },
    ),
}
_WEIGHT = re.compile(r"^blocks\.(\d+)\.(.+)\.(lora_[AB]\.weight)$")
_LAYER = re.compile(r"^blocks\.(\d+)\.(.+)$")


def counterpart_adapter(
    model: Any, config: dict[str, Any], weights: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``config`` and ``weights`` (peft's names for ``model``) renamed onto the exported base."""
    positions = model.config.positions
    prefix, layers = LAYERS[positions]
    renamed: dict[str, Any] = {}
    for name, tensor in weights.items():
        match = _WEIGHT.match(name)
        if match is None or match.group(2) not in layers:
            raise _unmapped(name)
        block, layer, part = match.groups()
        if positions == "rope" and layer == "attn.qkv" and part.startswith("lora_B"):
            tensor = per_head_qkv(tensor, model.config.n_head)  # B's rows are q/k/v rows
        renamed[f"{prefix.format(block)}{layers[layer]}.{part}"] = tensor
    targets = []
    for path in config["target_modules"]:
        match = _LAYER.match(path)
        if match is None or match.group(2) not in layers:
            raise _unmapped(path)
        targets.append(prefix.format(match.group(1)) + layers[match.group(2)])
    mapped = {**config, "target_modules": sorted(targets), "fan_in_fan_out": positions == "learned"}
    return mapped, renamed


def _unmapped(name: str) -> ExportError:
    return ExportError(
        f"adapter: LoRA on {name} has no counterpart in the architecture the base exports as "
        "(only the attention and MLP projections of each block do: attn.qkv, attn.proj, "
        "mlp.fc, mlp.proj), so --adapter-only cannot write it. Export merged (without "
        "--adapter-only), which folds every adapter into the weights."
    )
