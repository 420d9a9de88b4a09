"""`torchrun -m codex_ml.cli train` runs the same job with DDP on two CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_codex_ml_train_under_torchrun_writes_one_run_directory(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run_dir = tmp_path / "ddp-run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "codex_ml.cli", "train", f"hydra.run.dir={run_dir}", "model=offline/minilm",
        "training.max_steps=6", "training.batch_size=4", "training.block_size=64",
        "training.eval_every=0", "training.checkpoint_every=0", "run.progress=false",
        "run.max_new_tokens=8",
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["steps"] == 6
    # Two ranks, each 4 blocks of 64 tokens a step: the world's tokens are counted once.
    assert summary["tokens_seen"] == 6 * 2 * 4 * 64
    assert (run_dir / "checkpoints").is_dir()
    assert done.stdout.count("run directory:") == 1  # only rank 0 reports and writes


@pytest.mark.slow
def test_fsdp_under_torchrun_then_evaluate_in_one_process(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    run_dir = tmp_path / "fsdp-run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "codex_ml.cli", "train", f"hydra.run.dir={run_dir}", "training.strategy=fsdp",
        "training.max_steps=4", "training.batch_size=4", "training.block_size=64",
        "training.eval_every=2", "training.checkpoint_every=2", "run.progress=false",
        "run.max_new_tokens=8",
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert summary["metrics"]  # rank 0 scored the samples alone, on the gathered weights
    # The checkpoint is a plain one: evaluate loads it in a single process.
    evaluated = subprocess.run(
        [sys.executable, "-m", "codex_ml.cli", "evaluate", str(run_dir)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    report = json.loads((run_dir / "evaluation.json").read_text())
    assert report["metrics"]["ppl"] == pytest.approx(summary["metrics"]["ppl"], rel=1e-4)
