"""Instruction fine-tuning throughput (issue 19): codex-ml against TRL's ``SFTTrainer``.

    python -m benchmarks.sft            # 3 interleaved runs of each; writes results/sft.json
    python -m benchmarks.sft --quick    # a toy size, 1 run each: checks that it runs

One GPT-2 (random weights, a small BPE tokenizer, saved once with
``save_pretrained``) is fine-tuned on the same prompt/completion pairs by both,
with packing and the loss on completion tokens only: codex-ml's ``jsonl``
loader, token store and ``offline:functional`` trainer (``training.packing``),
and ``trl.SFTTrainer`` with ``packing=True``
(``benchmarks/probes/sft_train.py``). Same batch, row length, optimiser,
schedule, clipping and pinned thread count; every run a fresh process, the two
variants interleaved, the ratio taken within this run. The number that counts
is answer tokens trained per second: targets that carried the loss. Goal:
>= 1.0x TRL's.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.measure import REPO_ROOT, Sample, child_env, probe, round_robin, timed_probe
from benchmarks.report import Goal, Section, table
from benchmarks.training import _shape_args

RESULTS = REPO_ROOT / "benchmarks" / "results" / "sft.json"
LABELS = {
    "functional": "codex-ml: jsonl pairs + offline:functional (packing)",
    "trl": "trl.SFTTrainer (packing)",
}
WORDS = [
    "the",
    "river",
    "stone",
    "cloud",
    "lamp",
    "garden",
    "window",
    "paper",
    "bridge",
    "candle",
    "forest",
    "harbor",
    "kettle",
    "meadow",
    "pencil",
    "rocket",
    "saddle",
    "tunnel",
    "violin",
    "wagon",
    "yellow",
    "anchor",
    "basket",
    "cactus",
    "dragon",
    "engine",
    "feather",
    "guitar",
    "helmet",
    "island",
    "jacket",
    "old",
    "small",
    "bright",
    "quiet",
    "cold",
    "warm",
    "early",
    "late",
    "under",
    "over",
    "near",
    "far",
]


def make_base(folder: Path, *, n_layer: int, n_embd: int, n_head: int, context: int) -> Path:
    """A GPT-2 with random weights and the tiny GPT-2's BPE tokenizer, saved once."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from codex_ml.testing.artefacts import make_tiny_gpt2

    make_tiny_gpt2(folder)  # the tokenizer; the model is replaced below
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        n_positions=context,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    return folder


def make_pairs(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` prompt/completion pairs of a few to a few dozen words each."""
    rng = random.Random(seed)

    def words(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    rows = [
        {"prompt": f"Question: {words(3, 20)}?\nAnswer:", "completion": f" {words(2, 16)}."}
        for _ in range(n)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _rows(samples: Mapping[str, Sample], baseline: str) -> list[list[Any]]:
    base = samples[baseline].median_of("answer_tokens_per_s")
    cpu_base = samples[baseline].median_of("answer_tokens_per_cpu_s")
    rows = []
    for name, sample in samples.items():
        rate = sample.median_of("answer_tokens_per_s")
        rows.append(
            [
                name,
                f"{rate:,.0f}",
                f"{min(d['answer_tokens_per_s'] for d in sample.details):,.0f} - "
                f"{max(d['answer_tokens_per_s'] for d in sample.details):,.0f}",
                f"{rate / base:.3f}x",
                f"{sample.median_of('answer_tokens_per_cpu_s'):,.0f}",
                f"{sample.median_of('answer_tokens_per_cpu_s') / cpu_base:.3f}x",
                f"{sample.median_of('tokens_per_s'):,.0f}",
                f"{sample.median_of('final_loss'):.3f}",
                f"{sample.median_of('peak_rss_mb'):.0f}",
                f"{sample.median:.1f}",
            ]
        )
    return rows


HEADER = [
    "variant",
    "answer tokens/s (steps 2..N, median)",
    "range",
    "vs TRL",
    "answer tokens per CPU-s",
    "vs TRL (CPU)",
    "all tokens/s",
    "final loss",
    "peak RSS MiB",
    "process s",
]


def run(
    workdir: Path, *, model: Mapping[str, int], shape: Mapping[str, int], pairs: int, repeats: int
) -> Section:
    """Both variants at ``shape`` on a base of ``model``'s size, ``repeats`` runs each."""
    base = make_base(workdir / "gpt2-base", context=shape["block-size"], **model)
    data = make_pairs(workdir / "pairs.jsonl", pairs)
    env = child_env(
        extra={
            "CODEX_ML_CACHE_DIR": str(workdir / "cache"),
            "HF_DATASETS_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(workdir / "datasets"),
        }
    )
    args = ["--base", str(base), "--data", str(data), *_shape_args(shape)]
    variants = {LABELS[v]: timed_probe(probe("sft_train", v, *args), env) for v in LABELS}
    samples = round_robin(variants, repeats)
    ours, theirs = samples[LABELS["functional"]], samples[LABELS["trl"]]
    section = Section("Instruction fine-tuning throughput")
    section.add(
        f"GPT-2 (n_layer={model['n_layer']}, n_embd={model['n_embd']}, n_head={model['n_head']}, "
        f"random weights, a {_vocab(base)}-token BPE tokenizer), {pairs:,} prompt/completion "
        f"pairs, the loss on completion tokens only, packing; batch {shape['batch-size']} rows "
        f"of {shape['block-size']} tokens, {shape['steps']} steps, AdamW, "
        f"torch.set_num_threads({shape['threads']}), sdpa attention, CPU. {repeats} fresh "
        "processes per variant, interleaved."
    )
    section.add(table(HEADER, _rows(samples, LABELS["trl"])))
    section.goals.append(
        Goal(
            "instruction data: codex-ml / TRL SFTTrainer (answer tokens/s)",
            ours.median_of("answer_tokens_per_s") / theirs.median_of("answer_tokens_per_s"),
            1.0,
            ">=",
        )
    )
    section.raw = {
        "model": dict(model),
        "shape": dict(shape),
        "pairs": pairs,
        "samples": [s.to_json() for s in samples.values()],
    }
    return section


def _vocab(base: Path) -> int:
    return int(json.loads((base / "config.json").read_text())["vocab_size"])


def sizes(*, quick: bool) -> tuple[dict[str, int], dict[str, int], int]:
    """(the model's size, the run's shape, how many pairs)."""
    if quick:
        model = {"n_layer": 1, "n_embd": 32, "n_head": 2}
        shape = {"steps": 4, "batch-size": 2, "block-size": 64, "warmup-steps": 1, "threads": 1}
        return model, shape, 64
    model = {"n_layer": 4, "n_embd": 256, "n_head": 4}
    shape = {"steps": 40, "batch-size": 8, "block-size": 256, "warmup-steps": 5, "threads": 1}
    return model, shape, 4000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sft", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="toy size, one run of each")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    model, shape, pairs = sizes(quick=args.quick)
    with tempfile.TemporaryDirectory(prefix="codex-ml-sft-") as work:
        section = run(
            Path(work),
            model=model,
            shape=shape,
            pairs=pairs,
            repeats=1 if args.quick else args.repeats,
        )
    print("\n\n".join(section.body))
    print(table(["goal", "value", "target", ""], [goal.row() for goal in section.goals]))
    if not args.quick:
        goals = [{**vars(goal), "met": goal.met} for goal in section.goals]
        RESULTS.write_text(json.dumps({"goals": goals, **section.raw}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
