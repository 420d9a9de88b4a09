"""Section 5, generation speed: codex-ml's KV-cached sampling against ``transformers``.

One set of weights in both: codex-ml's ``decoder_only`` built GPT-2 style
(learned positions, biases, tied embeddings) at the default size, and a
``transformers`` ``GPT2LMHeadModel`` holding the very same tensors (exact
GELU, so the two compute the same function; their logits are compared before
timing). Variants, interleaved at each length, greedy, in this one process
with one torch thread:

- codex-ml ``generate`` on the ``decoder_only`` model (its :class:`KVCache`);
- codex-ml ``generate`` on the Hugging Face twin (what the ``hf`` model key
  runs: the model's own cache through codex-ml's sampling loop);
- ``transformers`` ``model.generate(use_cache=True)`` on the twin, the baseline.

Tokens/s counts new tokens over the whole call (prompt included, as a user
waits for it). Flatness is the time per token at the longest length over that
at the shortest: 1.0 means a new token costs the same however many came before.

    python -m benchmarks.generation            # full size; prints the section
    python -m benchmarks.generation --quick    # seconds; toy sizes
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.measure import Sample, round_robin
from benchmarks.report import Goal, Section, table

#: codex-ml's default decoder size (configs/model/offline/decoder_only.yaml), GPT-2 style.
DEFAULT_SIZE = {"n_layer": 4, "n_head": 4, "n_embd": 128}
QUICK_SIZE = {"n_layer": 2, "n_head": 2, "n_embd": 32}
LENGTHS = (64, 256, 1024)
QUICK_LENGTHS = (8, 16, 32)
PROMPT_TOKENS = 16
VOCAB = 259  # the default byte tokenizer's

OURS = "codex-ml decoder_only (KVCache)"
OURS_HF = "codex-ml loop on the HF model (hf key)"
BASELINE = "transformers generate(use_cache=True)"


def build_pair(size: dict[str, int], context: int, seed: int = 0) -> tuple[Any, Any]:
    """(codex-ml decoder_only, transformers GPT-2) with identical weights, in eval mode."""
    from codex_ml.models.decoder_only import build_decoder_only

    ours = build_decoder_only(
        vocab_size=VOCAB, block_size=context, positions="learned", bias=True, seed=seed, **size
    )
    return ours.eval(), gpt2_twin(ours).eval()


def gpt2_twin(model: Any) -> Any:
    """A ``GPT2LMHeadModel`` computing what ``model`` (learned positions, biases) computes."""
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    if c.positions != "learned" or not c.bias or not c.tie_embeddings:
        raise ValueError("a GPT-2 twin needs positions='learned', bias=True, tied embeddings")
    config = GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.block_size,
        n_embd=c.n_embd,
        n_layer=c.n_layer,
        n_head=c.n_head,
        activation_function="gelu",  # codex-ml's MLP uses exact GELU, GPT-2 the tanh one
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    twin = GPT2LMHeadModel(config)
    theirs = {
        "transformer.wte.weight": model.wte.weight,
        "transformer.wpe.weight": model.wpe.weight,
    }
    names = {"ln_1": "ln_1", "ln_2": "ln_2", "attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj"}
    names |= {"mlp.fc": "mlp.c_fc", "mlp.proj": "mlp.c_proj"}
    for i, block in enumerate(model.blocks):
        for ours_name, their_name in names.items():
            module = block.get_submodule(ours_name)
            weight = module.weight
            # GPT-2's Conv1D stores (in, out), nn.Linear (out, in); LayerNorms match.
            theirs[f"transformer.h.{i}.{their_name}.weight"] = (
                weight.t() if weight.dim() == 2 else weight
            )
            theirs[f"transformer.h.{i}.{their_name}.bias"] = module.bias
    theirs |= {
        "transformer.ln_f.weight": model.ln_f.weight,
        "transformer.ln_f.bias": model.ln_f.bias,
    }
    theirs["lm_head.weight"] = model.lm_head.weight
    missing, unexpected = twin.load_state_dict(
        {k: v.detach().clone() for k, v in theirs.items()}, strict=False
    )
    if unexpected or [k for k in missing if not k.endswith(".attn.bias")]:
        raise RuntimeError(f"GPT-2 twin: missing {missing}, unexpected {unexpected}")
    return twin


def max_logit_gap(ours: Any, twin: Any, prompt: Any) -> float:
    """Largest absolute difference between the two models' logits on ``prompt``."""
    import torch

    with torch.no_grad():
        return float((ours(prompt).logits - twin(prompt).logits).abs().max())


def _variants(ours: Any, twin: Any, prompt: Any, n: int) -> dict[str, Callable[[], Any]]:
    from codex_ml.models.sampling import generate

    def hf_generate() -> Any:
        return twin.generate(
            prompt,
            max_new_tokens=n,
            min_new_tokens=n,
            do_sample=False,
            use_cache=True,
            pad_token_id=0,
        )

    return {
        OURS: lambda: generate(ours, prompt, max_new_tokens=n, temperature=0),
        OURS_HF: lambda: generate(twin, prompt, max_new_tokens=n, temperature=0),
        BASELINE: hf_generate,
    }


def _timed(call: Callable[[], Any], n: int) -> Callable[[], tuple[float, dict[str, Any]]]:
    def measure() -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        out = call()
        seconds = time.perf_counter() - started
        return seconds, {"tokens_per_s": n / seconds, "tokens": out[0, -n:].tolist()}

    return measure


def measure(
    *, size: dict[str, int], lengths: Sequence[int], repeats: int, threads: int = 1
) -> dict[int, dict[str, Sample]]:
    """length -> variant -> seconds of each call (payloads: tokens/s, the tokens made)."""
    import torch

    torch.set_num_threads(threads)
    context = PROMPT_TOKENS + max(lengths)
    ours, twin = build_pair(size, context)
    prompt = torch.randint(0, VOCAB, (1, PROMPT_TOKENS), generator=torch.Generator().manual_seed(0))
    gap = max_logit_gap(ours, twin, prompt)
    if gap > 1e-3:
        raise RuntimeError(f"the two models differ (max logit gap {gap:.3g}); not the same weights")
    results = {}
    for n in lengths:
        variants = _variants(ours, twin, prompt, n)
        for call in variants.values():  # warm up: first-call allocations, lazy imports
            call()
        results[n] = round_robin(
            {name: _timed(call, n) for name, call in variants.items()}, repeats
        )
    return results


def run(
    workdir: Path | None = None,
    *,
    size: dict[str, int] = DEFAULT_SIZE,
    lengths: Sequence[int] = LENGTHS,
    repeats: int = 5,
    threads: int = 1,
) -> Section:
    """Measure and report; ``workdir`` is unused (the section writes no files)."""
    results = measure(size=size, lengths=lengths, repeats=repeats, threads=threads)
    section = Section("5. Generation speed (issue 12)")
    section.add(
        f"codex-ml `decoder_only` at {size['n_layer']} layers, {size['n_head']} heads, "
        f"{size['n_embd']} wide, learned positions and biases (GPT-2 style), vocabulary "
        f"{VOCAB}, and a `transformers` GPT-2 holding the same weights; greedy decoding "
        f"after a {PROMPT_TOKENS}-token prompt, {threads} torch thread, median of {repeats} "
        "interleaved calls per length."
    )
    rows, raw = [], {}
    short, long = min(lengths), max(lengths)
    for n, samples in results.items():
        base = samples[BASELINE].median_of("tokens_per_s")
        same = samples[OURS].details[0]["tokens"] == samples[BASELINE].details[0]["tokens"]
        for name, sample in samples.items():
            tps = sample.median_of("tokens_per_s")
            rows.append(
                [n, name, f"{tps:,.0f}", f"{1000 / tps:.2f}", f"{tps / base:.2f}x"]
                + ([("yes" if same else "no")] if name == OURS else [""])
            )
        raw[str(n)] = {name: sample.to_json() for name, sample in samples.items()}
        for name in (OURS, OURS_HF):
            section.goals.append(
                Goal(
                    f"{name} vs transformers, {n} new tokens",
                    samples[name].median_of("tokens_per_s") / base,
                    1.0,
                    ">=",
                )
            )
    section.add(
        table(
            ["new tokens", "variant", "tokens/s", "ms/token", "vs transformers", "same tokens"],
            rows,
        )
    )
    flat = []
    for name in (OURS, OURS_HF, BASELINE):
        per_token = {n: 1 / results[n][name].median_of("tokens_per_s") for n in (short, long)}
        flat.append([name, f"{per_token[long] / per_token[short]:.2f}"])
        if name != BASELINE:
            section.goals.append(
                Goal(
                    f"{name}: time per token at {long} over at {short}",
                    per_token[long] / per_token[short],
                    1.3,
                    "<=",
                )
            )
    section.add(table(["variant", f"time per token at {long} / at {short}"], flat))
    section.raw = raw
    return section


def markdown(section: Section) -> str:
    """The section on its own, goals first, for pasting into ``docs/benchmarks.md``."""
    goals = table(["goal", "measured", "target", ""], [goal.row() for goal in section.goals])
    return "\n\n".join([f"### {section.title}", goals, *section.body]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generation", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="toy sizes, a few seconds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.quick:
        section = run(size=QUICK_SIZE, lengths=QUICK_LENGTHS, repeats=1, threads=args.threads)
    else:
        section = run(repeats=args.repeats, threads=args.threads)
    print(markdown(section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
