"""LoRA fine-tuning throughput (issue 19): codex-ml against ``peft`` + ``transformers.Trainer``.

    python -m benchmarks.lora            # 5 interleaved runs of each; writes results/lora.json
    python -m benchmarks.lora --quick    # a toy size, 1 run each: checks that it runs

One GPT-2 base (random weights, saved once with ``save_pretrained``) is
fine-tuned with LoRA on ``c_attn`` (r 8, alpha 16, dropout 0.05) by both: codex-ml's
``hf`` model key, ``lora`` adapter and ``offline:functional`` trainer, and
``peft.get_peft_model`` with ``transformers.Trainer`` (``benchmarks/probes/lora_train.py``).
Same data, batch, sequence length, optimiser, schedule, clipping and pinned
thread count; every run a fresh process, the two variants interleaved, the
ratios taken within this run. Goals: tokens/s >= 1.0x the baseline's, peak RSS
<= 1.0x.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from benchmarks.measure import REPO_ROOT, child_env, probe, round_robin, timed_probe
from benchmarks.report import Goal, Section, table
from benchmarks.training import _header, _rows, _shape_args

RESULTS = REPO_ROOT / "benchmarks" / "results" / "lora.json"
LABELS = {
    "functional": "codex-ml: lora adapter + offline:functional",
    "hf": "peft.get_peft_model + transformers.Trainer",
}


def make_base(folder: Path, *, n_layer: int, n_embd: int, n_head: int, context: int) -> Path:
    """A GPT-2 with random weights and the byte tokenizer's vocabulary, saved once."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=259,
        bos_token_id=257,
        eos_token_id=258,
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


def run(
    workdir: Path, *, model: Mapping[str, int], shape: Mapping[str, int], repeats: int
) -> Section:
    """Both variants at ``shape`` on a base of ``model``'s size, ``repeats`` runs each."""
    base = make_base(workdir / "gpt2-base", context=shape["block-size"], **model)
    env = child_env(extra={"CODEX_ML_CACHE_DIR": str(workdir / "index-lora")})
    args = ["--base", str(base), *_shape_args(shape)]
    variants = {LABELS[v]: timed_probe(probe("lora_train", v, *args), env) for v in LABELS}
    samples = round_robin(variants, repeats)
    ours, theirs = samples[LABELS["functional"]], samples[LABELS["hf"]]
    first = ours.details[0]
    section = Section("LoRA fine-tuning throughput")
    section.add(
        f"GPT-2 base (n_layer={model['n_layer']}, n_embd={model['n_embd']}, "
        f"n_head={model['n_head']}, {first['parameters']:,} parameters with the adapters, "
        f"{first['trainable_parameters']:,} of them trained), LoRA on `c_attn` (r 8, alpha 16, "
        f"dropout 0.05), byte tokenizer, tiny corpus; batch {shape['batch-size']} x "
        f"{shape['block-size']} tokens, {shape['steps']} steps, AdamW, "
        f"torch.set_num_threads({shape['threads']}), CPU. {repeats} fresh processes per "
        "variant, interleaved."
    )
    section.add(table(_header("peft + Trainer"), _rows(samples, LABELS["hf"])))
    section.goals += [
        Goal(
            "LoRA: codex-ml / peft + transformers.Trainer (tokens/s)",
            ours.median_of("tokens_per_s") / theirs.median_of("tokens_per_s"),
            1.0,
            ">=",
        ),
        Goal(
            "LoRA: codex-ml / peft + transformers.Trainer (peak RSS)",
            ours.median_of("peak_rss_mb") / theirs.median_of("peak_rss_mb"),
            1.0,
            "<=",
        ),
    ]
    section.raw = {
        "model": dict(model),
        "shape": dict(shape),
        "samples": [s.to_json() for s in samples.values()],
    }
    return section


def sizes(*, quick: bool) -> tuple[dict[str, int], dict[str, int]]:
    """(the base's size, the run's shape): ~3M parameters and ~0.1 s a step on one core."""
    if quick:
        model = {"n_layer": 1, "n_embd": 32, "n_head": 2}
        shape = {"steps": 4, "batch-size": 2, "block-size": 32, "warmup-steps": 1, "threads": 1}
        return model, shape
    model = {"n_layer": 4, "n_embd": 256, "n_head": 4}
    shape = {"steps": 60, "batch-size": 8, "block-size": 128, "warmup-steps": 5, "threads": 1}
    return model, shape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lora", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="toy size, one run of each")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    model, shape = sizes(quick=args.quick)
    with tempfile.TemporaryDirectory(prefix="codex-ml-lora-") as work:
        section = run(
            Path(work), model=model, shape=shape, repeats=1 if args.quick else args.repeats
        )
    print("\n\n".join(section.body))
    print(table(["goal", "value", "target", ""], [goal.row() for goal in section.goals]))
    if not args.quick:
        goals = [{**vars(goal), "met": goal.met} for goal in section.goals]
        RESULTS.write_text(json.dumps({"goals": goals, **section.raw}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
