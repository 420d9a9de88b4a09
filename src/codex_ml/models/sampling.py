"""Autoregressive generation for any model whose output has ``.logits`` (B, T, V).

No key/value cache: each step reruns the (cropped) context. That is simple,
works for our models and Hugging Face ones alike, and is fast enough for the
short continuations codex-ml samples during and after training.
"""

from __future__ import annotations

import torch
from torch import nn

# Config attributes that name a model's longest context, ours first, then Hugging Face's.
_CONTEXT_ATTRIBUTES = ("block_size", "n_positions", "max_position_embeddings")


@torch.no_grad()
def generate(
    model: nn.Module,
    input_ids: torch.Tensor,
    *,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_k: int | None = None,
    eos_id: int | None = None,
    block_size: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append up to ``max_new_tokens`` tokens to ``input_ids`` ((B, T) or (T,)).

    ``temperature == 0`` picks the most likely token (greedy, deterministic);
    otherwise tokens are sampled from ``softmax(logits / temperature)``, limited
    to the ``top_k`` most likely when given. Once a row emits ``eos_id`` it is
    filled with ``eos_id``, and generation stops when every row has. The context
    fed to the model is cropped to its last ``block_size`` tokens (default: the
    model config's context length). The model runs in eval mode (no dropout)
    and is put back in the mode it was in.
    """
    _check_arguments(max_new_tokens, temperature, top_k)
    single = input_ids.dim() == 1
    ids = input_ids.unsqueeze(0) if single else input_ids
    if ids.dim() != 2 or ids.size(1) == 0:
        raise ValueError(
            f"input_ids must be (T,) or (B, T) with T >= 1, got shape {tuple(input_ids.shape)}."
        )
    ids = ids.to(_device_of(model))
    block_size = block_size or context_length(model)
    finished = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            context = ids if block_size is None else ids[:, -block_size:]
            logits = model(context).logits[:, -1, :].float()  # (B, V)
            next_ids = _pick(logits, temperature, top_k, generator)  # (B, 1)
            if eos_id is not None:
                next_ids = next_ids.masked_fill(finished[:, None], eos_id)
                finished |= next_ids[:, 0] == eos_id
            ids = torch.cat((ids, next_ids), dim=1)
            if eos_id is not None and bool(finished.all()):
                break
    finally:
        model.train(was_training)
    return ids[0] if single else ids


def context_length(model: nn.Module) -> int | None:
    """The longest context ``model`` accepts, read from its config, or ``None`` if unknown."""
    config = getattr(model, "config", None)
    for attribute in _CONTEXT_ATTRIBUTES:
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _pick(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth_best = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def _check_arguments(max_new_tokens: int, temperature: float, top_k: int | None) -> None:
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or max_new_tokens < 0
    ):
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}.")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 means greedy), got {temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}.")


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
