"""Trains a tiny model for a long time, to be stopped by a signal; test_signals.py runs it.

Alone or under ``torchrun``. Each rank writes its pid to ``pid-<R>``; rank 0
appends ``<step>`` to ``steps`` after every step's log record, so a test knows
which steps were finished before it sent its signal. When the trainer
returns, each rank writes ``rank-<R>.json`` (what the trainer returned and a
sha256 of its weights) and the process exits as ``codex-ml train`` does: with
``128 + signal`` (130, 143) after a signal, else 0.

Usage: [torchrun --standalone --nproc_per_node=2] signal_train.py OUTPUT_DIR [MAX_STEPS]
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer
from codex_ml.training.distributed import exit_process, finalization_is_unsafe
from codex_ml.training.interrupt import exit_status

RECORDS = [f"Line {i}: a long run that a scheduler will stop." for i in range(100)]


def weights_sha256(model: nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main(output_dir: Path, max_steps: int) -> int:
    rank = int(os.environ.get("RANK", "0"))
    (output_dir / f"pid-{rank}").write_text(str(os.getpid()))
    steps = output_dir / "steps"

    def announce(record: dict) -> None:
        if record["event"] == "log":
            with open(steps, "a") as handle:
                handle.write(f"{record['step']}\n")

    model = build_decoder_only(n_layer=1, n_head=2, n_embd=16, block_size=16, seed=0)
    trainer = FunctionalTrainer(
        max_steps=max_steps,
        batch_size=2,
        block_size=16,
        warmup_steps=2,
        log_every=1,
        device="cpu",
        num_threads=1,
        output_dir=str(output_dir / "run"),
    )
    result = trainer(model, ByteTokenizer(), RECORDS, callbacks=[announce])
    report = {
        "steps": result.steps,
        "interrupted": result.interrupted,
        "stop_signal": result.stop_signal,
        "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
        "sha256": weights_sha256(model),
    }
    (output_dir / f"rank-{rank}.json").write_text(json.dumps(report))
    return exit_status(result.stop_signal) if result.interrupted else 0


if __name__ == "__main__":
    torch.manual_seed(0)
    status = main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
    if finalization_is_unsafe():  # as `codex-ml train` ends a torchrun worker
        exit_process(status)
    sys.exit(status)
