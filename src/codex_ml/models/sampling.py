"""Autoregressive generation for any model whose output has ``.logits`` (B, T, V).

With a key/value cache each new token costs one position's forward pass, not
a rerun of the whole sequence: codex-ml's decoder keeps a :class:`KVCache`
(``model.new_cache``), a Hugging Face model its ``past_key_values``. A model
with neither reruns its (cropped) context for every token, as it always did.

The sampling itself (greedy, temperature, top-k, the caller's generator) is
one loop for every model, so a seed gives the same text whichever model
kind, and whether the cache is used or not, up to float rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

#: Logits (B, V) of the next token, given every token so far (B, T).
NextLogits = Callable[[torch.Tensor], torch.Tensor]

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
    use_cache: bool = True,
) -> torch.Tensor:
    """Append up to ``max_new_tokens`` tokens to ``input_ids`` ((B, T) or (T,)).

    ``temperature == 0`` picks the most likely token (greedy, deterministic);
    otherwise tokens are sampled from ``softmax(logits / temperature)``, limited
    to the ``top_k`` most likely when given. Once a row emits ``eos_id`` it is
    filled with ``eos_id``, and generation stops when every row has. The context
    fed to the model is cropped to its last ``block_size`` tokens (default: the
    model config's context length). The model runs in eval mode (no dropout)
    and is put back in the mode it was in. ``use_cache=False`` reruns the
    context for every token (the reference the cached path is tested against).
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
    next_logits = _next_logits(model, block_size, use_cache)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            logits = next_logits(ids)  # (B, V)
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


def _next_logits(model: nn.Module, block_size: int | None, use_cache: bool) -> NextLogits:
    """How to get the next token's logits from ``model``: with its KV cache where it has one."""
    rerun = _Rerun(model, block_size)
    step = _cache_step(model) if use_cache else None
    return rerun if step is None else _Cached(step, block_size, rerun)


class _Rerun:
    """Run the model on the whole (cropped) context for every token: works for any model."""

    def __init__(self, model: nn.Module, block_size: int | None) -> None:
        self.model, self.block_size = model, block_size

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        context = ids if self.block_size is None else ids[:, -self.block_size :]
        return self.model(context).logits[:, -1, :].float()


#: Run a model on new tokens after a cache (None: start one); returns (logits, cache).
CacheStep = Callable[[torch.Tensor, Any], "tuple[torch.Tensor, Any]"]


class _Cached:
    """Feed the model only the tokens its cache has not seen yet.

    Positions are absolute: once the sequence outgrows the context, the cropped
    window's tokens all move to new positions and no cached key stays valid. From
    then on every token reruns the last ``block_size`` tokens, exactly as the
    uncached path does, which is still a fixed cost per token. A model that
    returns no cache is rerun from its second token on.
    """

    def __init__(self, step: CacheStep, block_size: int | None, rerun: _Rerun) -> None:
        self.step, self.block_size, self.rerun = step, block_size, rerun
        self.cache: Any = None
        self.seen = 0  # tokens the cache holds
        self.usable = True

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        if self.block_size is not None and ids.size(1) > self.block_size:
            self.usable, self.cache = False, None  # free it: it cannot be used again
        if not self.usable:
            return self.rerun(ids)
        logits, self.cache = self.step(ids[:, self.seen :], self.cache)
        self.seen = ids.size(1)
        self.usable = self.cache is not None
        return logits[:, -1, :].float()


def _cache_step(model: nn.Module) -> CacheStep | None:
    """Run ``model`` with its own KV cache: codex-ml's decoder, or a Hugging Face model."""
    new_cache = getattr(model, "new_cache", None)
    if callable(new_cache):

        def decoder_step(new_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
            cache = new_cache(new_ids.size(0)) if cache is None else cache
            return model(new_ids, cache=cache).logits, cache

        return decoder_step
    can_generate = getattr(model, "can_generate", None)
    if callable(can_generate) and can_generate():  # transformers' GenerationMixin
        return _hf_cache_step(model)
    return None


def _hf_cache_step(model: nn.Module) -> CacheStep:
    """A Hugging Face model's own cache, as ``generate(use_cache=True)`` uses it."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    # transformers 5.x names the cache `cache`; earlier releases `past_key_values`.
    name = "cache" if "cache" in accepted else "past_key_values"
    # Only the last position's logits are needed, also after a long prompt.
    extra = {"logits_to_keep": 1} if "logits_to_keep" in accepted else {}

    def hf_step(new_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        out = model(input_ids=new_ids, use_cache=True, **{name: cache}, **extra)
        return out.logits, out.get(name)

    return hf_step


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
    if not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        raise ValueError(
            f"temperature must be a finite number >= 0 (0 means greedy), got {temperature!r}."
        )
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a positive int or None, got {top_k!r}.")


def _device_of(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
