"""Trains a tiny model with the functional trainer; test_distributed.py runs it under torchrun.

Each rank starts from different random weights (DistributedDataParallel must
make them equal) and, after training, writes ``rank-<R>.json`` with a sha256
of its weights and what the trainer returned.

Usage: torchrun --standalone --nproc_per_node=2 ddp_train.py OUTPUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
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


def main(output_dir: Path) -> None:
    rank = int(os.environ["RANK"])
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=rank)
    initial = weights_sha256(model)
    trainer = FunctionalTrainer(
        max_steps=6,
        batch_size=4,
        block_size=32,
        warmup_steps=2,
        log_every=2,
        device="cpu",
        num_threads=1,
        output_dir=str(output_dir / "run"),
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
    (output_dir / f"rank-{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    torch.manual_seed(0)
    main(Path(sys.argv[1]))
    if finalization_is_unsafe():  # as `codex-ml train` ends a torchrun worker
        exit_process(0)
