"""A small decoder-only transformer language model, read top to bottom like nanoGPT.

Pre-norm blocks of causal self-attention and a GELU MLP; rotary position
embeddings by default (``positions="learned"`` for GPT-2's learned table);
input and output embeddings tied; GPT-2 initialisation. Attention goes through
``F.scaled_dot_product_attention``, so the fast kernel is the plain path.

Padding: the tokenizers pad on the right, so real tokens never attend to pads
under the causal mask. When an ``attention_mask`` with zeros is given, padded
keys are masked out anyway (any padding side then gives clean attention), and
labels at padded positions are ignored by the loss. Positions count from the
first column, so only right padding gives positions identical to the unpadded
sequence.

Packed examples: ``position_ids`` (``(B, T)``, restarting at 0 where a new
example begins, as Hugging Face models take them) give each token its position
in its own example, and attention a block-diagonal causal mask, so nothing is
carried across an example boundary; without them, positions count from the
first column and attention takes the fused ``is_causal`` path.

Generation: ``forward(..., cache=model.new_cache(B))`` keeps each layer's keys
and values in a :class:`KVCache`, so that every new token costs one
position's work instead of a rerun of the whole sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from codex_ml.models.parameters import count_parameters
from codex_ml.models.placement import resolve_device, resolve_dtype
from codex_ml.models.sampling import generate

POSITIONS = ("rope", "learned")
IGNORE_INDEX = -100
#: The rotary base (theta): channel pair i turns by position * ROPE_BASE ** (-2i / head_dim).
ROPE_BASE = 10000.0


@dataclass
class DecoderOnlyConfig:
    """Sizes and switches of a :class:`DecoderOnlyLM`; checked when created."""

    vocab_size: int = 259  # ByteTokenizer: 256 bytes + pad, bos, eos
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 256  # longest sequence the model accepts
    dropout: float = 0.0
    positions: str = "rope"  # "rope" or "learned"
    bias: bool = False  # biases in Linear and LayerNorm layers
    tie_embeddings: bool = True  # output projection shares the token embedding

    #: The architecture's name in run provenance, as Hugging Face configs name theirs.
    model_type: ClassVar[str] = "decoder_only"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_layer", "n_head", "n_embd", "block_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be a float in [0, 1), got {self.dropout!r}.")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}.")
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                "each head gets n_embd // n_head channels."
            )
        if self.positions == "rope" and self.head_dim % 2:
            raise ValueError(
                f"positions='rope' needs an even head size, but n_embd // n_head = "
                f"{self.head_dim}; change n_embd or n_head, or use positions='learned'."
            )

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


@dataclass
class CausalLMOutput:
    """What ``forward`` returns: logits (B, T, V) and, given labels, the mean loss."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None


class Rotary(nn.Module):
    """Rotary position embeddings: rotate channel pairs of q and k by position-dependent angles.

    Relative positions then show up in the q.k dot products directly, with no
    learned table and no parameters.
    """

    def __init__(self, head_dim: int, block_size: int, base: float = ROPE_BASE) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2).float() / head_dim))
        angles = torch.outer(torch.arange(block_size).float(), inv_freq)  # (block_size, hd/2)
        # Derived from the config, so not saved with the weights.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(
        self, x: torch.Tensor, start: int = 0, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        # x: (B, nh, T, hd) at positions start..start+T-1, or at `positions` (B, T). Rotate in
        # float32: bf16 angles lose the small frequencies.
        if positions is not None:
            cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)
        else:
            T = x.size(-2)
            cos, sin = self.cos[start : start + T], self.sin[start : start + T]
        cos, sin = cos.float(), sin.float()
        x1, x2 = x.float().chunk(2, dim=-1)
        rotated = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return rotated.to(x.dtype)


class KVCache:
    """Keys and values of every token seen so far, for each layer, in preallocated buffers.

    Writing in place (rather than concatenating per token) keeps the cost of a
    new token independent of how many came before, apart from attention itself.
    """

    keys: torch.Tensor
    values: torch.Tensor
    length: int

    def __init__(
        self,
        config: DecoderOnlyConfig,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        # (n_layer, B, nh, block_size, hd): a layer's slice up to `length` is what it has seen.
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, config.head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # tokens cached so far, the position of the next one

    @property
    def capacity(self) -> int:
        return self.keys.size(3)

    def append(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k``, ``v`` (B, nh, T, hd) after the cached tokens; return all of them."""
        end = self.length + k.size(2)
        self.keys[layer, :, :, self.length : end] = k
        self.values[layer, :, :, self.length : end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through ``scaled_dot_product_attention``."""

    n_head: int
    dropout: float
    qkv: nn.Linear
    proj: nn.Linear
    resid_dropout: nn.Dropout
    rotary: Rotary | None

    def __init__(self, config: DecoderOnlyConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotary = (
            Rotary(config.head_dim, config.block_size) if config.positions == "rope" else None
        )

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None,
        cache: KVCache | None = None,
        layer: int = 0,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        start = 0 if cache is None else cache.length
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, nh, T, hd)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.rotary is not None:
            q, k = self.rotary(q, start, positions), self.rotary(k, start, positions)
        if cache is not None:
            k, v = cache.append(layer, k, v)  # (B, nh, start + T, hd)
        dropout_p = self.dropout if self.training else 0.0
        if attn_mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        elif start == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:  # after cached tokens: the new ones see all of those, and causally each other
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=_offset_causal_mask(T, start, x.device), dropout_p=dropout_p
            )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """The position-wise feed-forward layer: expand 4x, GELU, project back."""

    fc: nn.Linear
    proj: nn.Linear
    dropout: nn.Dropout

    def __init__(self, config: DecoderOnlyConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm: normalise, transform, add back to the residual stream."""

    ln_1: nn.LayerNorm
    attn: CausalSelfAttention
    ln_2: nn.LayerNorm
    mlp: MLP

    def __init__(self, config: DecoderOnlyConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        attn_mask: torch.Tensor | None,
        cache: KVCache | None = None,
        layer: int = 0,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), attn_mask, cache, layer, positions)
        return x + self.mlp(self.ln_2(x))


class DecoderOnlyLM(nn.Module):
    """A GPT-style language model: ``forward(input_ids, attention_mask, labels)``."""

    config: DecoderOnlyConfig
    wte: nn.Embedding
    wpe: nn.Embedding | None
    drop: nn.Dropout
    blocks: nn.ModuleList
    ln_f: nn.LayerNorm
    lm_head: nn.Linear

    def __init__(self, config: DecoderOnlyConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = (
            nn.Embedding(config.block_size, config.n_embd)
            if config.positions == "learned"
            else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Training-time only, not part of the architecture: see activation_checkpointing_enable().
        self.activation_checkpointing = False
        self.checkpoint_options: dict[str, Any] = {}
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream, so
        # its variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        cache: KVCache | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> CausalLMOutput:
        """Logits of every position; with ``cache``, ``input_ids`` continue the cached tokens.

        A cache (from :meth:`new_cache`) is filled as a side effect: after the
        call it also holds ``input_ids``. Padding masks are for whole sequences
        only, so ``attention_mask`` and ``cache`` do not mix. ``position_ids``
        (packed examples, see the module docstring) do not mix with a cache either.
        """
        seq_len = input_ids.size(1)
        start = 0 if cache is None else cache.length
        if start + seq_len > self.config.block_size:
            raise ValueError(
                f"Sequence length {start + seq_len} exceeds block_size={self.config.block_size}; "
                "crop the input or build the model with a larger block_size."
            )
        if cache is not None and attention_mask is not None and not bool(attention_mask.all()):
            raise ValueError(
                "A padded batch (attention_mask with zeros) cannot be run with a KV cache; "
                "generate from unpadded prompts, or run without the cache."
            )
        if position_ids is not None and cache is not None:
            raise ValueError("position_ids (packed examples) cannot be run with a KV cache.")
        x = self.wte(input_ids)  # (B, T, C)
        if self.wpe is not None:
            at = position_ids
            if at is None:
                at = torch.arange(start, start + seq_len, device=input_ids.device)
            x = x + self.wpe(at)
        x = self.drop(x)
        attn_mask = None if cache is not None else padding_attention_mask(attention_mask, seq_len)
        if position_ids is not None:
            attn_mask = packed_attention_mask(position_ids, attn_mask)
        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for layer, block in enumerate(self.blocks):
            if recompute and cache is None:
                # Only the block's input is kept; the backward pass runs it again (with
                # the same dropout: the checkpoint replays the random state).
                x = checkpoint(
                    block, x, attn_mask, None, layer, position_ids, **self.checkpoint_options
                )
            else:
                x = block(x, attn_mask, cache, layer, position_ids)
        if cache is not None:
            cache.length += seq_len
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None if labels is None else causal_lm_loss(logits, labels, attention_mask)
        return CausalLMOutput(logits=logits, loss=loss)

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs: dict[str, Any] | None = None
    ) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them.

        Named and called as in ``transformers``, so a trainer switches both
        kinds of model the same way. ``activation_checkpointing_kwargs`` go to
        :func:`torch.utils.checkpoint.checkpoint` (non-reentrant by default).
        Only training steps are affected: evaluation and generation run as before.
        """
        self.checkpoint_options = {
            "use_reentrant": False,
            **(activation_checkpointing_kwargs or {}),
        }
        self.activation_checkpointing = True

    def activation_checkpointing_disable(self) -> None:
        """Keep every activation again (the default)."""
        self.activation_checkpointing = False

    def new_cache(self, batch_size: int) -> KVCache:
        """An empty KV cache for ``batch_size`` sequences, on the model's device and dtype."""
        weight = self.wte.weight
        return KVCache(self.config, batch_size, device=weight.device, dtype=weight.dtype)

    def get_input_embeddings(self) -> nn.Embedding:
        """The token embedding table (named as Hugging Face models name theirs)."""
        return self.wte

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Distinct parameters; ``exclude_embeddings`` leaves out the token/position tables.

        With tied embeddings the output projection is the token table, so it is
        counted once (and left out with it).
        """
        n = count_parameters(self)
        if exclude_embeddings:
            n -= self.wte.weight.numel()
            if self.wpe is not None:
                n -= self.wpe.weight.numel()
        return n

    def generate(
        self,
        input_ids: torch.Tensor,
        *,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_k: int | None = None,
        eos_id: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Continue ``input_ids``; see :func:`codex_ml.models.sampling.generate`."""
        return generate(
            self,
            input_ids,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            eos_id=eos_id,
            block_size=self.config.block_size,
            generator=generator,
            use_cache=use_cache,
        )


def _offset_causal_mask(T: int, start: int, device: torch.device) -> torch.Tensor:
    """(T, start + T) mask: new token i sees the ``start`` cached ones and new ones up to i."""
    return torch.ones(T, start + T, dtype=torch.bool, device=device).tril(diagonal=start)


def padding_attention_mask(attention_mask: torch.Tensor | None, T: int) -> torch.Tensor | None:
    """Causal mask that also hides padded keys, or ``None`` when nothing is padded.

    ``None`` keeps attention on the fused ``is_causal`` path. Every query may
    always attend to itself, so a padding query never has an all-masked row
    (which would give NaN).
    """
    if attention_mask is None or bool(attention_mask.all()):
        return None
    device = attention_mask.device
    causal = torch.ones(T, T, dtype=torch.bool, device=device).tril()
    keys = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T)
    return (causal & keys) | torch.eye(T, dtype=torch.bool, device=device)  # (B, 1, T, T)


def packed_attention_mask(
    position_ids: torch.Tensor, attn_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Causal attention kept inside each example: ``(B, 1, T, T)``, True where a query may look.

    A new example begins wherever a position does not follow the one before
    (the rule ``transformers`` uses for packed ``position_ids``). ``attn_mask``
    (a padding mask) is applied as well.
    """
    T = position_ids.shape[1]
    step = torch.diff(position_ids, dim=1, prepend=position_ids[:, :1] - 1)
    example = (step != 1).cumsum(dim=1)  # (B, T): which example each token is in
    same = example[:, :, None] == example[:, None, :]
    causal = torch.ones(T, T, dtype=torch.bool, device=position_ids.device).tril()
    mask = (same & causal).unsqueeze(1)
    return mask if attn_mask is None else mask & attn_mask


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean next-token cross-entropy: position t predicts ``labels[t + 1]``.

    Labels equal to -100, and labels at padded positions, are ignored.
    """
    targets = labels[:, 1:]
    if attention_mask is not None:
        targets = targets.masked_fill(attention_mask[:, 1:] == 0, IGNORE_INDEX)
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)).float(),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
    )


def build_decoder_only(
    *,
    vocab_size: int = 259,
    n_layer: int = 4,
    n_head: int = 4,
    n_embd: int = 128,
    block_size: int = 256,
    dropout: float = 0.0,
    positions: str = "rope",
    bias: bool = False,
    tie_embeddings: bool = True,
    device: str = "cpu",
    dtype: str = "float32",
    seed: int | None = None,
) -> DecoderOnlyLM:
    """A nanoGPT-style decoder-only LM (~0.8M parameters by default, trains on a CPU)."""
    config = DecoderOnlyConfig(
        vocab_size=vocab_size,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        block_size=block_size,
        dropout=dropout,
        positions=positions,
        bias=bias,
        tie_embeddings=tie_embeddings,
    )
    # Check placement before spending time on initialisation.
    target_device, target_dtype = resolve_device(device), resolve_dtype(dtype)
    if seed is None:
        model = DecoderOnlyLM(config)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int or None, got {seed!r}.")
        # Reproducible weights without reseeding the caller's global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DecoderOnlyLM(config)
    return model.to(device=target_device, dtype=target_dtype)


def build_minilm(
    *,
    vocab_size: int = 259,
    n_layer: int = 2,
    n_head: int = 2,
    n_embd: int = 64,
    block_size: int = 128,
    dropout: float = 0.0,
    positions: str = "rope",
    bias: bool = False,
    tie_embeddings: bool = True,
    device: str = "cpu",
    dtype: str = "float32",
    seed: int | None = None,
) -> DecoderOnlyLM:
    """A tiny decoder-only LM preset (~0.12M parameters) for smoke runs and tests."""
    return build_decoder_only(
        vocab_size=vocab_size,
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        block_size=block_size,
        dropout=dropout,
        positions=positions,
        bias=bias,
        tie_embeddings=tie_embeddings,
        device=device,
        dtype=dtype,
        seed=seed,
    )
