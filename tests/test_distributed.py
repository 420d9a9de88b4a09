"""Data-parallel training under torchrun, and plain single-process training without it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer, load_checkpoint
from codex_ml.training.distributed import World, distributed_world

SCRIPT = Path(__file__).parent / "scripts" / "ddp_train.py"
SRC = Path(__file__).parents[1] / "src"


def _torchrun(tmp_path: Path, *args: str) -> None:
    """Run the training script on two Gloo processes (one thread each)."""
    env = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(SCRIPT),
        str(tmp_path),
        *args,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _reports(tmp_path: Path, run: str = "run") -> tuple[dict, dict]:
    return tuple(json.loads((tmp_path / f"{run}-rank-{r}.json").read_text()) for r in (0, 1))


def test_two_gloo_ranks_train_to_identical_weights(tmp_path):
    _torchrun(tmp_path)
    rank0, rank1 = _reports(tmp_path)
    assert rank0["initial_sha256"] != rank1["initial_sha256"]  # DDP had to align them
    assert rank0["sha256"] == rank1["sha256"]
    assert rank0["sha256"] != rank0["initial_sha256"]
    assert rank0["steps"] == rank1["steps"] == 6
    assert rank0["tokens_seen"] == 6 * 4 * 32 * 2  # both ranks' tokens
    # Only rank 0 writes files; every rank reports (lifecycle hooks run on every rank),
    # checkpoints only from rank 0, the rank that writes them.
    assert rank0["checkpoint"] == str(tmp_path / "run" / "checkpoints" / "step-6")
    assert rank1["checkpoint"] is None
    assert rank1["callback_records"] > 0
    assert rank0["callback_records"] > rank1["callback_records"]  # and its checkpoints
    assert not rank0["process_group_left_open"] and not rank1["process_group_left_open"]

    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=5)
    load_checkpoint(tmp_path / "run", model)
    assert _script().weights_sha256(model) == rank0["sha256"]


def test_fsdp_on_two_gloo_ranks_trains_saves_a_plain_checkpoint_and_resumes(tmp_path):
    _torchrun(tmp_path, "--strategy", "fsdp", "--checkpoint-every", "2")
    rank0, rank1 = _reports(tmp_path)
    assert rank0["initial_sha256"] != rank1["initial_sha256"]  # both start from rank 0's
    assert rank0["sha256"] == rank1["sha256"] != rank0["initial_sha256"]  # gathered on both
    assert rank0["steps"] == 6 and rank0["tokens_seen"] == 6 * 4 * 32 * 2
    assert rank0["checkpoint"] == str(tmp_path / "run" / "checkpoints" / "step-6")
    assert rank1["checkpoint"] is None

    # The checkpoint holds the full weights: one process loads it, with no FSDP at all.
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=5)
    loaded = load_checkpoint(tmp_path / "run", model)
    assert _script().weights_sha256(model) == rank0["sha256"]
    assert loaded.meta["trainer"]["strategy"] == "fsdp"
    optimizer_state = loaded.state["optimizer"]["state"]
    assert "blocks.0.attn.qkv.weight" in optimizer_state  # full, keyed by parameter name
    full = dict(model.named_parameters())["blocks.0.attn.qkv.weight"]
    assert optimizer_state["blocks.0.attn.qkv.weight"]["exp_avg"].shape == full.shape

    # Resumed at step 4 by the same two processes, it ends where the whole run ended.
    step4 = tmp_path / "run" / "checkpoints" / "step-4"
    _torchrun(tmp_path, "--strategy", "fsdp", "--resume", str(step4), "--name", "resumed")
    resumed0, resumed1 = _reports(tmp_path, "resumed")
    assert resumed0["sha256"] == resumed1["sha256"] == rank0["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_compiled_training_under_torchrun_keeps_the_ranks_equal(tmp_path, strategy):
    _torchrun(tmp_path, "--strategy", strategy, "--compile")
    rank0, rank1 = _reports(tmp_path)
    assert rank0["sha256"] == rank1["sha256"] != rank0["initial_sha256"]
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=5)
    load_checkpoint(tmp_path / "run", model)  # plain names: no _orig_mod., no module.
    assert _script().weights_sha256(model) == rank0["sha256"]


def _script():
    """The training script as a module, for its weights_sha256."""
    spec = importlib.util.spec_from_file_location("ddp_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_torchrun_there_is_one_process_and_no_process_group(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with distributed_world(torch.device("cpu")) as world:
        assert world == World(rank=0, local_rank=0, size=1)
        assert world.is_main and not world.distributed
        assert not dist.is_initialized()
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=0)
    records = ["a single process trains without torch.distributed " * 4] * 10
    FunctionalTrainer(max_steps=2, batch_size=2, block_size=32, device="cpu", num_threads=1)(
        model, ByteTokenizer(), records
    )
    assert not dist.is_initialized()


def test_a_single_process_run_leaves_the_normal_exit_alone():
    from codex_ml.training.distributed import finalization_is_unsafe

    # Runs under torchrun are subprocesses: nothing in this process builds DDP.
    assert not finalization_is_unsafe()


EXIT_PROBE = """
import atexit, sys
from codex_ml.training import distributed
atexit.register(lambda: print("finalized", flush=True))
print("written before the exit", end="")  # no newline, not flushed yet
sys.stderr.write("and to stderr")
distributed.exit_process(3)
"""


def test_exit_process_flushes_then_skips_finalization():
    env = os.environ | {"PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3
    assert done.stdout == "written before the exit"  # flushed, and no atexit handler ran
    assert done.stderr.endswith("and to stderr")
