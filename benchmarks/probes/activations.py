"""Train ``decoder_only`` for a few steps with or without activation checkpointing; prints JSON.

Usage: ``python activations.py on|off --n-layer 8 --n-embd 128 --block-size 512 ...``.
The functional trainer runs ``--steps`` steps (AdamW, dropout 0.1, one seed, the
tiny corpus as bytes, no evaluation, no checkpoint files) with
``activation_checkpointing`` as asked. Reported: ``peak_mb`` the memory the
run's peak added to what was held before training (the CPU: the process's peak
resident memory, ``ru_maxrss``, less its peak before the trainer was called;
CUDA: ``torch.cuda.max_memory_allocated`` less the allocation before),
``step_s`` the median time of steps 2..N (from the trainer's per-step log
records), and ``losses``, every step's loss, which must be the same either way.
"""

import argparse
import json
import resource
import statistics

import torch

from codex_ml.data.lines import load_tiny_corpus
from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer


def rss_peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["on", "off"])
    for name, default in (
        ("n-layer", 8),
        ("n-head", 4),
        ("n-embd", 128),
        ("block-size", 512),
        ("batch-size", 8),
        ("steps", 6),
        ("threads", 1),
    ):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    cuda = args.device.startswith("cuda")
    model = build_decoder_only(
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        block_size=args.block_size,
        dropout=0.1,
        seed=0,
        device=args.device,
    )
    trainer = FunctionalTrainer(
        max_steps=args.steps,
        batch_size=args.batch_size,
        block_size=args.block_size,
        warmup_steps=1,
        log_every=1,
        device=args.device,
        precision="fp32",
        num_threads=args.threads,
        activation_checkpointing=args.mode == "on",
    )
    records = load_tiny_corpus()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    else:
        before = rss_peak_mb()
    result = trainer(model, ByteTokenizer(), records)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else rss_peak_mb()
    logged = [r for r in result.history if r["event"] == "log"]
    step_s = [trainer.batch_size * trainer.block_size / r["tokens_per_s"] for r in logged[1:]]
    print(
        json.dumps(
            {
                "mode": args.mode,
                "peak_mb": peak - before,
                "before_mb": before,
                "step_s": statistics.median(step_s),
                "losses": [r["loss"] for r in logged],
                "parameters": sum(p.numel() for p in model.parameters()),
            }
        )
    )


if __name__ == "__main__":
    main()
