"""Tiny but real Hugging Face artefacts, built in a second for tests and demos.

``gpt2-offline`` and ``tinyllama-offline`` load whatever ``save_pretrained``
wrote into a directory. These builders write exactly that -- a BPE tokenizer
trained on a paragraph of text and a randomly initialised two-layer model, in
safetensors -- so tests exercise the real loading path without any download.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

#: What the tiny tokenizers learn their merges from.
TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. A small model learns from a small
corpus, one token at a time. Tokenizers split text into pieces; models predict
the next piece from the ones before it. Offline artefacts live on disk, so a
training run never waits for the network. Registries map keys to factories,
and factories build tokenizers, models, metrics, data loaders and trainers.
Plugins add entries; tests check every promise the documentation makes.
"""

_VOCAB_SIZE = 384
_HIDDEN = 32
_LAYERS = 2
_HEADS = 2
_CONTEXT = 128


def make_tiny_gpt2(directory: str | os.PathLike[str]) -> Path:
    """Write a tiny GPT-2 (tokenizer + model, safetensors) into ``directory``; return it."""
    tokenizer = _train_tokenizer(["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=_CONTEXT,
        n_embd=_HIDDEN,
        n_layer=_LAYERS,
        n_head=_HEADS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save(directory, tokenizer, lambda: GPT2LMHeadModel(config))


def make_tiny_llama(directory: str | os.PathLike[str]) -> Path:
    """Write a tiny Llama (tokenizer + model, safetensors) into ``directory``; return it."""
    tokenizer = _train_tokenizer(["<unk>", "<s>", "</s>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        intermediate_size=2 * _HIDDEN,
        num_hidden_layers=_LAYERS,
        num_attention_heads=_HEADS,
        num_key_value_heads=_HEADS,
        max_position_embeddings=_CONTEXT,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
    )
    return _save(directory, tokenizer, lambda: LlamaForCausalLM(config))


def make_artefact_tree(root: str | os.PathLike[str]) -> Path:
    """Build ``root/artifacts/models/{gpt2,tinyllama}/``, the layout the defaults expect.

    Point ``CODEX_ML_PROJECT_ROOT`` at ``root`` (or ``CODEX_ML_ARTIFACTS_DIR`` at
    ``root/artifacts``) and the offline catalogue entries load from it.
    """
    root = Path(root)
    models_dir = root / "artifacts" / "models"
    make_tiny_gpt2(models_dir / "gpt2")
    make_tiny_llama(models_dir / "tinyllama")
    return root


def _train_tokenizer(special_tokens: list[str]) -> Tokenizer:
    # Byte-level BPE, as GPT-2 uses: every string is encodable, nothing is <unk>.
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TRAINING_TEXT.splitlines(), trainer)
    return tokenizer


def _save(
    directory: str | os.PathLike[str],
    tokenizer: PreTrainedTokenizerFast,
    build_model: Callable[[], PreTrainedModel],
) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # The same weights on every call, without disturbing the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model()
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory
