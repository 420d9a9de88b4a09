"""Checkpoints: round trip, crash safety, clear errors for damaged files, bit-exact resume."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import (
    CheckpointError,
    FunctionalTrainer,
    find_latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from codex_ml.training.optim import build_optimizer

BLOCK = 32
RECORDS = [f"Record {i}: the quick brown fox jumps over the lazy dog." for i in range(150)]
SCRIPTS = Path(__file__).parent / "scripts"
CPU = torch.device("cpu")


def small_model(seed: int = 0, **overrides) -> nn.Module:
    settings = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": BLOCK, "seed": seed}
    return build_decoder_only(**(settings | overrides))


def trainer(**overrides) -> FunctionalTrainer:
    settings = {
        "max_steps": 4,
        "batch_size": 4,
        "block_size": BLOCK,
        "warmup_steps": 2,
        "log_every": 2,
        "device": "cpu",
        "num_threads": 1,
    }
    return FunctionalTrainer(**(settings | overrides))


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


@pytest.fixture
def trained(tmp_path) -> tuple[nn.Module, Path]:
    """A model trained for 4 steps and the run directory holding its checkpoint."""
    model = small_model()
    trainer(output_dir=str(tmp_path))(model, ByteTokenizer(), RECORDS)
    return model, tmp_path


def test_round_trip_restores_weights_optimizer_and_metadata(trained):
    model, run_dir = trained
    fresh = small_model(seed=1)
    optimizer = build_optimizer(fresh, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), device=CPU)
    assert not same_weights(fresh, model)
    checkpoint = load_checkpoint(run_dir, fresh, optimizer)
    assert same_weights(fresh, model)
    saved_moments = [state["exp_avg"] for state in checkpoint.state["optimizer"]["state"].values()]
    loaded_moments = [
        optimizer.state[p]["exp_avg"] for group in optimizer.param_groups for p in group["params"]
    ]
    assert len(loaded_moments) == len(saved_moments) > 0
    assert all(torch.equal(a, b) for a, b in zip(saved_moments, loaded_moments, strict=True))
    assert checkpoint.path == run_dir / "checkpoints" / "step-4"
    assert checkpoint.step == 4 and checkpoint.state["step"] == 4
    assert checkpoint.state["tokens_seen"] == 4 * 4 * BLOCK
    meta = checkpoint.meta
    assert meta["format_version"] == 1
    assert meta["model_class"] == "codex_ml.models.decoder_only.DecoderOnlyLM"
    assert meta["parameters"] == sum(p.numel() for p in model.parameters())
    assert meta["trainer"]["max_steps"] == 4 and meta["trainer"]["block_size"] == BLOCK


def test_tied_weights_stay_tied_after_loading(trained):
    _, run_dir = trained
    fresh = small_model(seed=1)
    load_checkpoint(run_dir, fresh)
    assert fresh.lm_head.weight is fresh.wte.weight
    assert torch.equal(fresh.lm_head.weight, fresh.wte.weight)


def test_a_run_dir_its_checkpoints_dir_and_a_step_dir_all_load(trained):
    _, run_dir = trained
    step_dir = run_dir / "checkpoints" / "step-4"
    assert find_latest_checkpoint(run_dir) == step_dir
    assert find_latest_checkpoint(run_dir / "checkpoints") == step_dir
    for path in (run_dir, run_dir / "checkpoints", step_dir):
        assert load_checkpoint(path, small_model(seed=1)).path == step_dir


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    trainer(max_steps=5, checkpoint_every=1, keep_checkpoints=2, output_dir=str(tmp_path))(
        small_model(), ByteTokenizer(), RECORDS
    )
    checkpoints = tmp_path / "checkpoints"
    assert sorted(path.name for path in checkpoints.iterdir()) == ["latest", "step-4", "step-5"]
    assert (checkpoints / "latest").read_text().strip() == "step-5"


def test_a_rerun_into_the_same_directory_replaces_its_checkpoint(tmp_path):
    for seed in (0, 1):
        model = small_model(seed=seed)
        trainer(output_dir=str(tmp_path))(model, ByteTokenizer(), RECORDS)
    fresh = small_model(seed=2)
    load_checkpoint(tmp_path, fresh)
    assert same_weights(fresh, model)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_an_interrupted_write_leaves_the_previous_checkpoint_in_charge(trained):
    model, run_dir = trained
    checkpoints = run_dir / "checkpoints"
    good = checkpoints / "step-4"
    # A writer killed mid-way leaves its temporary directory ...
    partial_tmp = checkpoints / ".tmp-step-8-abc123"
    partial_tmp.mkdir()
    (partial_tmp / "model.safetensors").write_bytes(b"\x00" * 100)
    # ... and, had it been renamed file by file, a step directory missing its meta.json.
    half = checkpoints / "step-8"
    half.mkdir()
    data = (good / "model.safetensors").read_bytes()
    (half / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert load_checkpoint(run_dir, small_model(seed=1)).path == good  # via `latest`
    (checkpoints / "latest").unlink()
    assert find_latest_checkpoint(run_dir) == good  # by scanning: step-8 is incomplete
    fresh = small_model(seed=1)
    load_checkpoint(run_dir, fresh)
    assert same_weights(fresh, model)
    # The next save clears the leftovers.
    save_checkpoint(run_dir, step=9, model=model, state={"step": 9}, config={}, keep=5)
    assert not partial_tmp.exists()


def test_a_checkpoint_moved_aside_for_replacement_is_still_found(trained):
    model, run_dir = trained
    checkpoints = run_dir / "checkpoints"
    # A rerun replacing step-4 moves the old one aside, then renames the new one in;
    # killed between the two, `latest` names a directory that is gone.
    aside = checkpoints / ".trash-step-4-abc123"
    aside.mkdir()
    (checkpoints / "step-4").rename(aside / "step-4")
    assert find_latest_checkpoint(run_dir) == aside / "step-4"
    fresh = small_model(seed=1)
    load_checkpoint(run_dir, fresh)
    assert same_weights(fresh, model)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (_truncate, "model.safetensors", "truncated"),
        (_flip_a_byte, "model.safetensors", "corrupt"),
        (_truncate, "state.pt", "truncated"),
        (_flip_a_byte, "state.pt", "corrupt"),
        (Path.unlink, "state.pt", "missing"),
        (Path.unlink, "model.safetensors", "missing"),
        (lambda path: path.write_text("{not json"), "meta.json", "not valid JSON"),
        (lambda path: path.write_text('{"format_version": 99}'), "meta.json", "format_version"),
    ],
)
def test_a_damaged_file_is_a_checkpoint_error_naming_it(trained, damage, file, message):
    _, run_dir = trained
    damaged = run_dir / "checkpoints" / "step-4" / file
    damage(damaged)
    fresh = small_model(seed=1)
    before = small_model(seed=1)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(run_dir, fresh)
    assert str(damaged) in str(caught.value)
    assert caught.value.path == damaged
    assert same_weights(fresh, before)  # nothing was loaded


def test_weights_of_another_shape_are_a_checkpoint_error_and_load_nothing(trained):
    _, run_dir = trained
    wider = small_model(seed=1, n_embd=48)
    before = {name: tensor.clone() for name, tensor in wider.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not fit") as caught:
        load_checkpoint(run_dir, wider)
    assert "wte.weight: file (259, 32), model (259, 48)" in str(caught.value)
    assert all(torch.equal(before[name], t) for name, t in wider.state_dict().items())


def test_a_model_with_other_layers_is_a_checkpoint_error(trained):
    _, run_dir = trained
    with pytest.raises(CheckpointError, match=r"missing blocks\.2\."):
        load_checkpoint(run_dir, small_model(seed=1, n_layer=3))


def test_optimizer_state_of_another_setup_is_a_checkpoint_error(trained):
    _, run_dir = trained
    model = small_model(seed=1)
    single_group = torch.optim.AdamW(model.parameters())
    with pytest.raises(CheckpointError, match=r"state\.pt holds optimizer state"):
        load_checkpoint(run_dir, model, single_group)


def test_a_directory_without_checkpoints_is_a_checkpoint_error(tmp_path):
    assert find_latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="No checkpoint found"):
        load_checkpoint(tmp_path, small_model())
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere", small_model())


def _interrupt_at(step: int):
    def callback(record: dict) -> None:
        if record["event"] == "log" and record["step"] == step:
            os.kill(os.getpid(), signal.SIGINT)

    return callback


def _crash_after_checkpoint(step: int):
    def callback(record: dict) -> None:
        if record["event"] == "checkpoint" and record["step"] == step:
            raise RuntimeError("simulated crash")

    return callback


@pytest.mark.parametrize("stop", ["sigint", "crash"])
def test_a_resumed_run_reproduces_an_uninterrupted_run_bit_for_bit(tmp_path, stop):
    settings = {"max_steps": 10, "log_every": 1, "grad_accum_steps": 2}
    # Dropout makes the global RNG part of the state that has to be restored.
    uninterrupted = small_model(dropout=0.1)
    expected = trainer(**settings)(uninterrupted, ByteTokenizer(), RECORDS)

    first = small_model(dropout=0.1)
    if stop == "sigint":
        partial = trainer(**settings, output_dir=str(tmp_path))(
            first, ByteTokenizer(), RECORDS, callbacks=[_interrupt_at(4)]
        )
        assert partial.interrupted and partial.steps == 5
    else:
        with pytest.raises(RuntimeError, match="simulated crash"):
            trainer(**settings, output_dir=str(tmp_path), checkpoint_every=3)(
                first, ByteTokenizer(), RECORDS, callbacks=[_crash_after_checkpoint(6)]
            )

    resumed = small_model(seed=1, dropout=0.1)  # other initial weights: all must come from disk
    result = trainer(**settings, output_dir=str(tmp_path), resume_from=str(tmp_path))(
        resumed, ByteTokenizer(), RECORDS
    )
    assert result.steps == 10 and result.tokens_seen == expected.tokens_seen
    pairs = zip(uninterrupted.named_parameters(), resumed.parameters(), strict=True)
    for (name, want), got in pairs:
        assert torch.equal(want, got), name
    assert result.history[0]["step"] == (6 if stop == "sigint" else 7)
    assert result.final_metrics["train_loss"] == expected.final_metrics["train_loss"]


def _kill_a_writer_and_load(run_dir: Path, kill_after: float) -> None:
    """Start the checkpoint writer, SIGKILL it ``kill_after`` s after its third save, load."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    writer = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "checkpoint_writer.py"), str(run_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    saved = [int(writer.stdout.readline().split()[1]) for _ in range(3)]
    try:
        writer.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        writer.send_signal(signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    model = build_decoder_only(n_layer=2, n_head=4, n_embd=128, block_size=64, seed=0)
    checkpoint = load_checkpoint(run_dir, model)
    assert checkpoint.step >= saved[-1]
    # The writer fills every weight with the step number: weights and step belong together.
    assert all(bool((p == checkpoint.step).all()) for p in model.parameters())
    assert json.loads((checkpoint.path / "meta.json").read_text())["step"] == checkpoint.step


def test_sigkill_while_saving_leaves_a_loadable_checkpoint(tmp_path):
    # A few saves' time after the third one: the kill often lands inside a save.
    _kill_a_writer_and_load(tmp_path, kill_after=random.Random(0).uniform(0.0, 0.2))


@pytest.mark.slow
def test_sigkill_at_many_moments_leaves_a_loadable_checkpoint(tmp_path):
    rng = random.Random(1234)
    for _ in range(8):  # each round continues the previous round's checkpoints
        _kill_a_writer_and_load(tmp_path, kill_after=rng.uniform(0.0, 0.2))
