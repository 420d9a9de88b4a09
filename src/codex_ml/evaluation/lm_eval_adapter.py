"""codex-ml's model and tokenizer as an lm-evaluation-harness language model.

:class:`CodexLM` answers the harness's three requests the way its ``hf``
model (``lm_eval --model hf``) answers them for the same weights, so that a
task scores the same on a run and on its ``codex-ml export`` folder:

- ``loglikelihood``: the harness's own encoding of (context, continuation)
  (:class:`lm_eval.api.model.TemplateLM`: trailing spaces move to the
  continuation, the pair is encoded whole and split at the context's length,
  an empty context becomes the prefix token), the input cut from the left to
  the model's context length, and the continuation's summed log-probabilities
  with whether greedy decoding would give it;
- ``loglikelihood_rolling``: the harness's rolling windows over the whole text
  (each token predicted once, the first from the prefix token);
- ``generate_until``: greedy decoding (sampling where a task asks for it) until
  eos or ``max_gen_toks`` tokens, cut at the first stop string.

The prefix token is the tokenizer's bos (codex-ml's tokenizers fall back to
eos), as the ``hf`` model's is the exported tokenizer's bos, else eos. Inputs
are batched right-padded: the models are causal, so padding after a row never
changes its logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import (
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from codex_ml.models.sampling import context_length, generate

#: The harness's own fallbacks: the context length of a model that states none, and the
#: tokens a generation request may produce when it does not say.
DEFAULT_MAX_LENGTH = 2048
DEFAULT_MAX_GEN_TOKS = 256
#: Tokens generated between two looks for a stop string.
_GENERATION_CHUNK = 32

#: A loglikelihood request as TemplateLM passes it: (request key, context ids, continuation ids).
TokenRequest = tuple[Any, list[int], list[int]]


class CodexLM(TemplateLM):
    """A codex-ml causal LM and its tokenizer behind lm-evaluation-harness's ``LM`` interface."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        batch_size: int = 8,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.codex_tokenizer = tokenizer
        self.batch_size = batch_size
        self._device = next(model.parameters()).device
        self._max_length = max_length or context_length(model) or DEFAULT_MAX_LENGTH

    # --- what the harness asks of every LM --------------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return int(self.codex_tokenizer.eos_id)

    @property
    def prefix_token_id(self) -> int:
        return int(self.codex_tokenizer.bos_id)

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def tokenizer_name(self) -> str:
        return type(self.codex_tokenizer).__name__

    def tok_encode(
        self, string: str, add_special_tokens: bool | None = None, **_: Any
    ) -> list[int]:
        """codex-ml's ids for ``string`` (its tokenizer adds special tokens only if set to)."""
        return list(self.codex_tokenizer.encode(string))

    def tok_decode(self, tokens: Sequence[int]) -> str:
        return str(self.codex_tokenizer.decode(list(tokens)))

    # --- loglikelihood ------------------------------------------------------------------------

    def _loglikelihood_tokens(
        self, requests: list[TokenRequest], disable_tqdm: bool = False, **_: Any
    ) -> list[tuple[float, bool]]:
        """Summed log-probability of each continuation, and whether greedy decoding gives it."""
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i][1] + requests[i][2]))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            rows = [(requests[i][1] + requests[i][2])[-(self.max_length + 1) :][:-1] for i in chunk]
            log_probs = self._log_probs(rows)
            for index, row, scores in zip(chunk, rows, log_probs, strict=True):
                continuation = requests[index][2]
                picked = scores[len(row) - len(continuation) : len(row)]
                wanted = torch.tensor(continuation, device=picked.device)
                total = picked.gather(-1, wanted.unsqueeze(-1)).sum()
                results[index] = (float(total), bool((picked.argmax(-1) == wanted).all()))
        return [r for r in results if r is not None]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Each text's log-likelihood from the harness's rolling windows (tokens scored once)."""
        totals = []
        for (text,) in (request.args for request in requests):
            windows = [
                make_disjoint_window(window)
                for window in get_rolling_token_windows(
                    token_list=self.tok_encode(text),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                )
            ]
            scored = self._loglikelihood_tokens([(None, ctx, cont) for ctx, cont in windows])
            totals.append(sum(logprob for logprob, _ in scored))
        return totals

    def _log_probs(self, rows: list[list[int]]) -> list[torch.Tensor]:
        """Log-softmax over the vocabulary at each position of each row (float32)."""
        width = max(len(row) for row in rows)
        batch = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            batch[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                logits = self.model(input_ids=batch.to(self.device)).logits
        finally:
            self.model.train(was_training)
        scores = F.log_softmax(logits.float(), dim=-1)
        return [scores[i, : len(row)] for i, row in enumerate(rows)]

    # --- generation ---------------------------------------------------------------------------

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy (or, where asked, sampled) text after each context, cut at its stop strings."""
        return [
            self._generate(context, dict(kwargs)) for context, kwargs in (r.args for r in requests)
        ]

    def _generate(self, context: str, gen_kwargs: dict[str, Any]) -> str:
        kwargs = normalize_gen_kwargs(gen_kwargs, DEFAULT_MAX_GEN_TOKS)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=None)
        budget = int(kwargs.pop("max_gen_toks"))
        temperature = float(kwargs.get("temperature", 0.0)) if kwargs.get("do_sample") else 0.0
        room = max(self.max_length - budget, 1)
        ids = (self.tok_encode(context) or [self.prefix_token_id])[-room:]
        prompt_length = len(ids)
        text = ""
        while len(ids) - prompt_length < budget:
            step = min(_GENERATION_CHUNK, budget - (len(ids) - prompt_length))
            out = generate(
                self.model,
                torch.tensor([ids], device=self.device),
                max_new_tokens=step,
                temperature=temperature,
                eos_id=self.eot_token_id,
            )[0].tolist()
            new = out[len(ids) :]
            ids = out
            ended = self.eot_token_id in new
            if ended:
                ids = ids[: len(ids) - len(new) + new.index(self.eot_token_id)]
            text = self.tok_decode(ids[prompt_length:])
            if ended or any(stop and stop in text for stop in until):
                break
        return postprocess_generated_text(text, until, None)
