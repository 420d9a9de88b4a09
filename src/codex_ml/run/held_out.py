"""Scoring a run's held-out split: every token, streamed, summed once.

The end of ``codex-ml train`` and ``codex-ml evaluate`` score the held-out
split the same way: the whole split by default (``run.eval_max_tokens`` /
``--max-tokens`` cap it to its first tokens), read one batch at a time from
the token store's memory map, every held-out token a target exactly once
(:func:`codex_ml.training.eval_batches.stream_batches`). What comes out:

- ``eval_loss``: the mean next-token NLL (nats) over the tokens scored, and
  ``eval_ppl`` = ``exp(eval_loss)``, the run's one perplexity;
- ``eval_accuracy@token``: the share of those tokens predicted exactly;
- ``eval_tokens``: how many tokens were scored;
- ``bits_per_byte``: the summed NLL over ``ln 2`` times the UTF-8 bytes of the
  text those tokens stand for, comparable across tokenizers. Scoring the whole
  split, that is the bytes of the held-out records (the store counts them as it
  tokenises; eos tokens stand for no text). Scoring a prefix, it is the sum of
  the scored tokens' own byte lengths, which only byte-level tokenizers have
  (:mod:`codex_ml.tokenizers.token_bytes`); for another tokenizer a capped
  score has no ``bits_per_byte``, and says why.

A split of instruction data (a masked store) is scored the way it trains:
whole examples packed into blocks (:func:`codex_ml.training.examples.example_batches`),
and only the tokens that carry the loss (completions, assistant turns) are
targets, so every number above is over those tokens alone, and the cap counts
them. Their bytes are the scored tokens' own byte lengths: a byte-level
tokenizer gives ``bits_per_byte``, any other says why it has none (the bytes
of a prompt and its template are not what the loss predicts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HeldOut:
    """A held-out split as one stream of ids (each record's ids, then eos) and what it holds."""

    ids: Any  # 1-D: a numpy memmap of the token store's eval split, or a tensor
    records: int
    text_bytes: int | None  # UTF-8 bytes of the records; None when not known (an older store)
    flags: Any = None  # instruction data: the store's flag per id (LOSS, START); None for text
    loss_tokens: int | None = None  # instruction data: the ids that carry the loss

    @property
    def tokens(self) -> int:
        return len(self.ids)

    @property
    def target_tokens(self) -> int:
        """How many tokens the whole split scores: every id, or those that carry the loss."""
        return self.tokens if self.loss_tokens is None else self.loss_tokens

    @classmethod
    def of_store(cls, store: Any) -> HeldOut:
        """The token store's eval split, memory-mapped (nothing is read until scored)."""
        if store.masked:
            flags, loss_tokens = store.flags("eval"), store.loss_tokens("eval")
            return cls(store.ids("eval"), store.records("eval"), None, flags, loss_tokens)
        return cls(store.ids("eval"), store.records("eval"), store.text_bytes("eval"))

    @classmethod
    def of_texts(cls, tokenizer: Any, records: Sequence[Any]) -> HeldOut:
        """Records tokenised here, as the token store would (other data given to evaluate);
        instruction examples as their text (:func:`codex_ml.data.chat.record_text`)."""
        import torch

        from codex_ml.data.chat import record_text
        from codex_ml.training.data import encode_records

        texts = [record_text(record) for record in records]

        ids = torch.tensor(encode_records(tokenizer, texts, name="eval data"), dtype=torch.long)
        kept = [text for text in texts if text]
        size = sum(len(text.encode("utf-8", "surrogatepass")) for text in kept)
        return cls(ids, len(kept), size)


@dataclass
class HeldOutScore:
    """Sums over the scored tokens and, where metrics need them, the per-token values."""

    tokens: int = 0
    nll_sum: float = 0.0  # nats
    correct: int = 0
    text_bytes: int | None = None
    bytes_unknown: str | None = None  # why there is no byte count
    nlls: Any = None  # per-token NLLs (float32), kept only for token-nll metrics
    predictions: Any = None  # predicted and target ids, kept only for token-ids metrics
    targets: Any = None

    def numbers(self) -> dict[str, float | int]:
        """``eval_loss``, ``eval_ppl``, ``eval_accuracy@token`` and ``eval_tokens``."""
        loss = self.nll_sum / self.tokens
        return {
            "eval_loss": loss,
            "eval_ppl": math.exp(loss) if loss < 700 else math.inf,
            "eval_accuracy@token": self.correct / self.tokens,
            "eval_tokens": self.tokens,
        }

    @property
    def bits_per_byte(self) -> float | None:
        if not self.text_bytes:
            return None
        return self.nll_sum / (math.log(2) * self.text_bytes)


def score_held_out(
    model: Any,
    tokenizer: Any,
    held_out: HeldOut,
    *,
    block_size: int,
    batch_size: int,
    max_tokens: int | None = None,
    keep: frozenset[str] = frozenset(),
) -> HeldOutScore:
    """Score the first ``max_tokens`` (None: all) tokens of ``held_out`` with ``model``.

    ``keep`` names the per-token inputs to return as arrays (``token-nll``,
    ``token-ids``), for the configured metrics that read them.
    """
    import torch

    from codex_ml.models.sampling import context_length
    from codex_ml.training.eval_batches import eval_batches
    from codex_ml.training.examples import without_kv_cache

    limit = context_length(model)
    block_size = min(block_size, limit) if limit else block_size
    whole = max_tokens is None or max_tokens >= held_out.target_tokens
    masked = held_out.flags is not None
    lengths = None if whole and not masked else token_byte_table(tokenizer)
    result = HeldOutScore()
    nll_sum = torch.zeros((), dtype=torch.float64)
    kept: dict[str, list[Any]] = {"nlls": [], "predictions": [], "targets": []}
    scored_bytes = 0
    cap = None if whole else max_tokens
    batches = _batches(tokenizer, held_out, block_size, batch_size, max_tokens)
    scoring = eval_batches(model, batches, device=next(model.parameters()).device)
    # Packed examples stay apart in a Hugging Face model only when it builds no KV cache.
    with closing(scoring), without_kv_cache(model):  # train mode back at once if the cap stops
        for batch in scoring:
            nlls, predicted, targets = _scored(batch, None if cap is None else cap - result.tokens)
            nll_sum += nlls.double().sum()
            result.correct += int((predicted == targets).sum())
            result.tokens += targets.numel()
            if lengths is not None:
                scored_bytes += int(lengths[targets].sum())
            if "token-nll" in keep:
                kept["nlls"].append(nlls.numpy())
            if "token-ids" in keep:
                kept["predictions"].append(predicted.numpy())
                kept["targets"].append(targets.numpy())
            if cap is not None and result.tokens >= cap:
                break
    result.nll_sum = float(nll_sum)
    _count_bytes(result, held_out, whole=whole, lengths=lengths, scored_bytes=scored_bytes)
    _keep_arrays(result, kept)
    return result


def _batches(
    tokenizer: Any, held_out: HeldOut, block_size: int, batch_size: int, max_tokens: int | None
) -> Any:
    """The split's batches: one stream of text, or whole instruction examples packed."""
    from codex_ml.training.eval_batches import stream_batches
    from codex_ml.training.examples import example_batches

    if held_out.flags is not None:
        return example_batches(
            held_out.ids, held_out.flags, block_size=block_size, batch_size=batch_size
        )
    return stream_batches(
        held_out.ids,
        first_input=int(tokenizer.eos_id),
        block_size=block_size,
        batch_size=batch_size,
        max_tokens=max_tokens,
    )


def _scored(batch: Any, room: int | None) -> tuple[Any, Any, Any]:
    """A batch's NLLs, predicted and target ids at the targets that carry the loss, in order:
    the first ``room`` of them (None: all)."""
    from codex_ml.training.data import IGNORE_INDEX

    targets = batch.targets.flatten().cpu()
    scored = targets != IGNORE_INDEX
    nlls = batch.token_nlls().cpu()
    predicted = batch.logits.argmax(-1).flatten().cpu()[scored]
    targets = targets[scored]
    if room is not None and room < targets.numel():
        nlls, predicted, targets = nlls[:room], predicted[:room], targets[:room]
    return nlls, predicted, targets


def token_byte_table(tokenizer: Any) -> Any:
    """:func:`~codex_ml.tokenizers.token_bytes.token_byte_lengths` as a tensor (or None)."""
    import torch

    from codex_ml.tokenizers.token_bytes import token_byte_lengths

    lengths = token_byte_lengths(tokenizer)
    return None if lengths is None else torch.tensor(lengths, dtype=torch.long)


def _count_bytes(
    result: HeldOutScore, held_out: HeldOut, *, whole: bool, lengths: Any, scored_bytes: int
) -> None:
    if held_out.flags is not None:
        _count_example_bytes(result, lengths, scored_bytes)
    elif whole and held_out.text_bytes is not None:
        result.text_bytes = held_out.text_bytes
    elif whole:
        result.bytes_unknown = (
            "the token store was written before it counted bytes; remove it to have it rebuilt"
        )
    elif lengths is not None:
        result.text_bytes = scored_bytes
    else:
        result.bytes_unknown = (
            "the tokenizer's tokens are not bytes, so the bytes of part of the split are not "
            "known; score the whole split (no max-tokens cap)"
        )


def _count_example_bytes(result: HeldOutScore, lengths: Any, scored_bytes: int) -> None:
    """Instruction data: the bytes of the tokens that carry the loss, which only a byte-level
    tokenizer knows (the store counts no bytes for it: its records are not what is scored)."""
    if lengths is not None:
        result.text_bytes = scored_bytes
    else:
        result.bytes_unknown = (
            "the held-out split is instruction data, scored on the tokens that carry the loss "
            "only, and the tokenizer's tokens are not bytes, so the bytes those tokens stand "
            "for are not known"
        )


def _keep_arrays(result: HeldOutScore, kept: dict[str, list[Any]]) -> None:
    import numpy as np

    for name, parts in kept.items():
        if parts:
            setattr(result, name, np.concatenate(parts))
