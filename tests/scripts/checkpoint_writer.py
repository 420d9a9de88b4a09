"""Saves checkpoints in a loop until killed; tests/test_checkpoint.py kills it with SIGKILL.

Every weight of checkpoint ``step-N`` equals N, so a test can tell that a
loaded checkpoint's weights and step belong together. Continues from the
newest checkpoint in the directory, so it can be started again after a kill.

Usage: python checkpoint_writer.py OUTPUT_DIR
"""

from __future__ import annotations

import sys

import torch

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.training import find_latest_checkpoint, save_checkpoint


def main(output_dir: str) -> None:
    torch.set_num_threads(1)
    model = build_decoder_only(n_layer=2, n_head=4, n_embd=128, block_size=64, seed=0)
    latest = find_latest_checkpoint(output_dir)
    step = 0 if latest is None else int(latest.name.removeprefix("step-"))
    while True:
        step += 1
        with torch.no_grad():
            for param in model.parameters():
                param.fill_(step)
        state = {"step": step, "payload": torch.full((250_000,), float(step))}
        save_checkpoint(output_dir, step=step, model=model, state=state, config={}, keep=2)
        print(f"saved {step}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
