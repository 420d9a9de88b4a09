"""codex-ml's decoder (``decoder_only``, ``minilm``) as a standard ``transformers`` architecture.

Both positions of the decoder have an exact counterpart, layer for layer:

- ``positions="learned"``: GPT-2 (``GPT2LMHeadModel``). Same pre-norm LayerNorm
  blocks, fused q/k/v, learned position table; GPT-2's ``Conv1D`` layers hold
  the transposed ``nn.Linear`` weight, and ``activation_function="gelu"`` is
  the exact (erf) GELU that ``F.gelu`` computes.
- ``positions="rope"``: GPT-NeoX (``GPTNeoXForCausalLM``) with every channel
  rotated (``rotary_pct=1``), the rotate-half convention, the same base, and
  sequential residuals (``use_parallel_residual=False``). Llama is not one:
  its RMSNorm and gated SiLU MLP compute something else than LayerNorm and a
  GELU MLP, for every setting.

Without ``bias`` codex-ml's layers have no bias where these architectures
always have one; a bias of zeros adds exactly nothing, so it stands in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from codex_ml.export.errors import ExportError
from codex_ml.models.decoder_only import ROPE_BASE, DecoderOnlyConfig, DecoderOnlyLM

#: The settings of :class:`DecoderOnlyConfig` this mapping reads; any other is refused.
_MAPPED = frozenset(
    {
        "vocab_size",
        "n_layer",
        "n_head",
        "n_embd",
        "block_size",
        "dropout",
        "positions",
        "bias",
        "tie_embeddings",
    }
)

if TYPE_CHECKING:
    from transformers import PretrainedConfig

Weights = dict[str, torch.Tensor]


def hf_counterpart(
    model: DecoderOnlyLM, special_ids: Mapping[str, int]
) -> tuple[PretrainedConfig, Weights]:
    """The ``transformers`` config and state dict that compute what ``model`` computes.

    ``special_ids`` holds ``bos_token_id``, ``eos_token_id`` and ``pad_token_id``.
    """
    check_representable(model)
    settings = model.config
    common = {
        "vocab_size": settings.vocab_size,
        "tie_word_embeddings": settings.tie_embeddings,
        "dtype": model.wte.weight.dtype,
        **special_ids,
    }
    if settings.positions == "learned":
        return _gpt2_config(model, common), gpt2_weights(model)
    return _gpt_neox_config(model, common), gpt_neox_weights(model)


def check_representable(model: DecoderOnlyLM) -> None:
    """Refuse a model the mapping would export as something that generates differently."""
    if type(model) is not DecoderOnlyLM:
        raise ExportError(
            f"model: {type(model).__qualname__} subclasses codex-ml's decoder, and export "
            "cannot know what it changed, so it has no standard transformers architecture to "
            "write it as. Export the plain decoder_only model, or save this one with your "
            "own code."
        )
    unknown = [f.name for f in dataclasses.fields(DecoderOnlyConfig) if f.name not in _MAPPED]
    if unknown:
        name = unknown[0]
        raise ExportError(
            f"model.{name}={getattr(model.config, name)!r}: export has no mapping of this "
            "setting onto GPT-2 or GPT-NeoX, so the exported model would not generate what "
            "codex-ml generates. Teach codex_ml.export.decoder_only about it first."
        )
    layer_norm_eps(model)


def layer_norm_eps(model: DecoderOnlyLM) -> float:
    """The epsilon all LayerNorms share (the architectures have one setting for all)."""
    found = {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)}
    if len(found) != 1:
        raise ExportError(
            f"model: its LayerNorms use different epsilons ({sorted(found)}), and GPT-2 and "
            "GPT-NeoX have one for all; this model cannot be exported exactly."
        )
    return found.pop()


def _sizes(model: DecoderOnlyLM) -> dict[str, int]:
    settings = model.config
    return {
        "layers": settings.n_layer,
        "heads": settings.n_head,
        "width": settings.n_embd,
        "inner": model.blocks[0].mlp.fc.out_features,
        "context": settings.block_size,
    }


def _gpt2_config(model: DecoderOnlyLM, common: dict[str, object]) -> PretrainedConfig:
    from transformers import GPT2Config

    size, dropout = _sizes(model), model.config.dropout
    return GPT2Config(
        n_layer=size["layers"],
        n_head=size["heads"],
        n_embd=size["width"],
        n_inner=size["inner"],
        n_positions=size["context"],
        activation_function="gelu",
        layer_norm_epsilon=layer_norm_eps(model),
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        architectures=["GPT2LMHeadModel"],
        **common,
    )


def _gpt_neox_config(model: DecoderOnlyLM, common: dict[str, object]) -> PretrainedConfig:
    from transformers import GPTNeoXConfig

    size, dropout = _sizes(model), model.config.dropout
    return GPTNeoXConfig(
        num_hidden_layers=size["layers"],
        num_attention_heads=size["heads"],
        hidden_size=size["width"],
        intermediate_size=size["inner"],
        max_position_embeddings=size["context"],
        hidden_act="gelu",
        layer_norm_eps=layer_norm_eps(model),
        rotary_pct=1.0,
        rotary_emb_base=ROPE_BASE,
        use_parallel_residual=False,
        attention_bias=model.config.bias,
        hidden_dropout=dropout,
        attention_dropout=dropout,
        architectures=["GPTNeoXForCausalLM"],
        **common,
    )


def gpt2_weights(model: DecoderOnlyLM) -> Weights:
    """``GPT2LMHeadModel``'s state dict (``Conv1D`` weights are ``nn.Linear``'s transposed)."""
    assert model.wpe is not None
    weights = {
        "transformer.wte.weight": model.wte.weight,
        "transformer.wpe.weight": model.wpe.weight,
    }
    for index, block in enumerate(model.blocks):
        at = f"transformer.h.{index}."
        weights |= _norm(at + "ln_1", block.ln_1) | _norm(at + "ln_2", block.ln_2)
        weights |= _conv1d(at + "attn.c_attn", block.attn.qkv)
        weights |= _conv1d(at + "attn.c_proj", block.attn.proj)
        weights |= _conv1d(at + "mlp.c_fc", block.mlp.fc) | _conv1d(
            at + "mlp.c_proj", block.mlp.proj
        )
    weights |= _norm("transformer.ln_f", model.ln_f)
    return _finish(model, weights, "lm_head.weight")


def gpt_neox_weights(model: DecoderOnlyLM) -> Weights:
    """``GPTNeoXForCausalLM``'s state dict (q/k/v rows regrouped head by head)."""
    bias, heads = model.config.bias, model.config.n_head
    weights = {"gpt_neox.embed_in.weight": model.wte.weight}
    for index, block in enumerate(model.blocks):
        at = f"gpt_neox.layers.{index}."
        attention = block.attn
        weights |= _norm(at + "input_layernorm", block.ln_1)
        weights |= _norm(at + "post_attention_layernorm", block.ln_2)
        qkv = _linear(at + "attention.query_key_value", attention.qkv, with_bias=bias)
        weights |= {name: per_head_qkv(tensor, heads) for name, tensor in qkv.items()}
        weights |= _linear(at + "attention.dense", attention.proj, with_bias=bias)
        weights |= _linear(at + "mlp.dense_h_to_4h", block.mlp.fc, with_bias=True)
        weights |= _linear(at + "mlp.dense_4h_to_h", block.mlp.proj, with_bias=True)
    weights |= _norm("gpt_neox.final_layer_norm", model.ln_f)
    # GPT-NeoX checkpoints name the output layer embed_out (transformers 5 reads it as lm_head).
    return _finish(model, weights, "embed_out.weight")


def per_head_qkv(tensor: torch.Tensor, heads: int) -> torch.Tensor:
    """codex-ml's rows [q | k | v] (each head after head) as GPT-NeoX's [q_h k_h v_h] per head."""
    grouped = tensor.reshape(3, heads, -1, *tensor.shape[1:])  # (3, nh, hd[, C])
    return grouped.transpose(0, 1).reshape(tensor.shape)


def _bias_or_zeros(module: nn.Linear | nn.LayerNorm, size: int) -> torch.Tensor:
    bias = module.bias
    weight = module.weight
    return bias if bias is not None else torch.zeros(size, dtype=weight.dtype, device=weight.device)


def _norm(name: str, norm: nn.LayerNorm) -> Weights:
    return {
        f"{name}.weight": norm.weight,
        f"{name}.bias": _bias_or_zeros(norm, norm.weight.size(0)),
    }


def _linear(name: str, linear: nn.Linear, *, with_bias: bool) -> Weights:
    weights = {f"{name}.weight": linear.weight}
    if with_bias:
        weights[f"{name}.bias"] = _bias_or_zeros(linear, linear.out_features)
    return weights


def _conv1d(name: str, linear: nn.Linear) -> Weights:
    return {
        f"{name}.weight": linear.weight.t(),
        f"{name}.bias": _bias_or_zeros(linear, linear.out_features),
    }


def _finish(model: DecoderOnlyLM, weights: Weights, output_name: str) -> Weights:
    """Add the output layer unless tied, and detach everything onto the CPU, contiguous."""
    if not model.config.tie_embeddings:
        weights[output_name] = model.lm_head.weight
    return {name: t.detach().to("cpu").contiguous() for name, t in weights.items()}
