"""Trains a tiny model with the functional trainer; test_distributed.py runs it under torchrun.

Each rank starts from different random weights (DistributedDataParallel must
make them equal) and, after training, writes ``rank-<R>.json`` with a sha256
of its weights and what the trainer returned.

Usage: torchrun --standalone --nproc_per_node=2 ddp_train.py OUTPUT_DIR
       [--strategy ddp|fsdp] [--max-steps N] [--resume CHECKPOINT] [--name RUN]
       [--checkpoint-every N] [--compile]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer
from codex_ml.training.distributed import exit_process, finalization_is_unsafe

RECORDS = [f"Line {i}: data parallel training splits the batch over ranks." for i in range(100)]


def weights_sha256(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(
    output_dir: Path,
    *,
    strategy: str,
    max_steps: int,
    resume: str | None,
    run: str,
    checkpoint_every: int,
    compile: bool,
) -> None:
    rank = int(os.environ["RANK"])
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=rank)
    initial = weights_sha256(model)
    trainer = FunctionalTrainer(
        max_steps=max_steps,
        batch_size=4,
        block_size=32,
        warmup_steps=2,
        log_every=2,
        device="cpu",
        num_threads=1,
        output_dir=str(output_dir / run),
        checkpoint_every=checkpoint_every,
        keep_checkpoints=5,
        strategy=strategy,
        compile=compile,
        resume_from=resume,
    )
    logged: list[dict] = []
    result = trainer(model, ByteTokenizer(), RECORDS, callbacks=[logged.append])
    report = {
        "initial_sha256": initial,
        "sha256": weights_sha256(model),
        "steps": result.steps,
        "tokens_seen": result.tokens_seen,
        "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
        "callback_records": len(logged),
        "process_group_left_open": dist.is_initialized(),
    }
    (output_dir / f"{run}-rank-{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--strategy", default="ddp")
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--resume")
    parser.add_argument("--name", default="run")
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    main(
        args.output_dir,
        strategy=args.strategy,
        max_steps=args.max_steps,
        resume=args.resume,
        run=args.name,
        checkpoint_every=args.checkpoint_every,
        compile=args.compile,
    )
    if finalization_is_unsafe():  # as `codex-ml train` ends a torchrun worker
        exit_process(0)
