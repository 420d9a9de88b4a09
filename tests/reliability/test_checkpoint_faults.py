"""Checkpoints: SIGKILL at random moments loses no finished step; damaged files are refused.

The kill loop trains a tiny model in a child process (forked from this one, so
it starts in milliseconds), saving a checkpoint every step, and SIGKILLs it
after a seeded random delay: before its first step, mid-step, mid-save, mid-prune.
After every kill the newest checkpoint must load, be at least as new as the
last save the child announced, and hold exactly the weights the uninterrupted
run had at that step; the next child resumes from it. After the last kill the
run is finished and must end on the uninterrupted run's weights, bit for bit.

Resuming from a damaged checkpoint (truncated, corrupt, another model's, a
pickle that would run code, a safetensors header that lies) stops with a
CheckpointError naming the file, before a single weight changes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
)
from codex_ml.training.checkpoint import META_FILE, MODEL_FILE, STATE_FILE

from . import report

KILLS = 20
MAX_STEPS = 60
BLOCK = 16
RECORDS = [f"Line {i}: a tiny corpus for a tiny model, {i * 7 % 13} times over." for i in range(60)]


def tiny_model(seed: int = 0, **overrides: Any) -> nn.Module:
    settings = {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": BLOCK, "dropout": 0.1}
    return build_decoder_only(seed=seed, **(settings | overrides))


def trainer(output_dir: Path, **overrides: Any) -> FunctionalTrainer:
    settings = {
        "max_steps": MAX_STEPS,
        "batch_size": 2,
        "block_size": BLOCK,
        "warmup_steps": 5,
        "log_every": 10,
        "checkpoint_every": 1,
        "keep_checkpoints": 2,
        "device": "cpu",
        "num_threads": 1,
        "output_dir": str(output_dir),
    }
    return FunctionalTrainer(**(settings | overrides))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The uninterrupted run, every one of its checkpoints kept; and its seconds per step."""
    run_dir = tmp_path_factory.mktemp("reference")
    started = time.perf_counter()
    trainer(run_dir, keep_checkpoints=MAX_STEPS)(tiny_model(), ByteTokenizer(), RECORDS)
    return run_dir, (time.perf_counter() - started) / MAX_STEPS


def reference_weights(reference: Path, step: int) -> dict[str, torch.Tensor]:
    model = tiny_model(seed=99)
    load_checkpoint(reference / "checkpoints" / f"step-{step}", model)
    return weights(model)


# -- SIGKILL -------------------------------------------------------------------------------------


def _train_in_child(run_dir: str, events: str) -> None:
    """The child: resume from the newest checkpoint (if any), announce each finished save."""
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def announce(record: dict[str, Any]) -> None:
        if record["event"] == "checkpoint":  # save_checkpoint has returned: the step is durable
            os.write(fd, f"{record['step']}\n".encode())

    resume = find_latest_checkpoint(run_dir)
    run = trainer(Path(run_dir), resume_from=None if resume is None else str(resume))
    # A fresh start begins where the reference did; a resumed one from other weights, so
    # that everything it ends with must have come from the checkpoint.
    model = tiny_model(seed=0 if resume is None else 7)
    run(model, ByteTokenizer(), RECORDS, callbacks=[announce])


def _announced(events: Path) -> int:
    lines = events.read_text().split() if events.exists() else []
    return max(map(int, lines), default=0)


def _kill_chain(
    run_dir: Path, reference: Path, rng: random.Random, longest: float, budget: int
) -> int:
    """Kill children training in ``run_dir`` until ``budget`` kills or the run is done; check
    every checkpoint left behind, then finish the run and check its end. Returns the kills."""
    fork = multiprocessing.get_context("fork")
    events = run_dir.with_suffix(".events")
    kills = 0
    while kills < budget:
        child = fork.Process(target=_train_in_child, args=(str(run_dir), str(events)))
        child.start()
        child.join(timeout=rng.uniform(0.0, longest))
        if child.exitcode is None:
            os.kill(child.pid, signal.SIGKILL)
            child.join()
            kills += 1
            report.record("faults_injected")
        assert child.exitcode in (0, -signal.SIGKILL), child.exitcode
        announced = _announced(events)
        if find_latest_checkpoint(run_dir) is None:
            assert announced == 0  # killed before its first save: nothing was promised
            continue
        model = tiny_model(seed=99)
        step = load_checkpoint(run_dir, model).step  # the previous complete checkpoint loads
        step_lost = step < announced
        wrong = not same(weights(model), reference_weights(reference, step))
        report.record("data_lost", int(step_lost or wrong))
        assert not step_lost, f"step {announced} was announced, the newest checkpoint is {step}"
        assert not wrong, f"the weights of step {step} differ from the uninterrupted run's"
        if child.exitcode == 0:
            break  # it finished between two kills
    # Finishing from the last checkpoint reaches the uninterrupted run's result exactly.
    finished = tiny_model(seed=5)
    result = trainer(run_dir, resume_from=str(run_dir))(finished, ByteTokenizer(), RECORDS)
    assert result.steps == MAX_STEPS
    wrong = not same(weights(finished), reference_weights(reference, MAX_STEPS))
    report.record("data_lost", int(wrong))
    assert not wrong, "the resumed run did not end on the uninterrupted run's weights"
    report.record("runs_survived", kills)
    return kills


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "total", [KILLS, pytest.param(10 * KILLS, marks=pytest.mark.slow, id="soak")]
)
def test_sigkill_at_random_moments_never_loses_a_finished_step(
    total: int, tmp_path: Path, reference: tuple[Path, float]
) -> None:
    reference_dir, seconds_per_step = reference
    # Kill within twice the time of a fair share of a run's steps (plus a child's start-up),
    # so that the kills spread over the whole run however fast this machine is.
    longest = 0.05 + 2 * seconds_per_step * MAX_STEPS / KILLS
    rng = random.Random(total)
    kills = chains = 0
    while kills < total:  # a run that finishes early is followed by a fresh one
        chains += 1
        run_dir = tmp_path / f"run-{chains}"
        kills += _kill_chain(run_dir, reference_dir, rng, longest, total - kills)
    assert kills == total and chains <= total // 4


# -- damaged checkpoints on resume ---------------------------------------------------------------


def _rehash(step_dir: Path) -> None:
    """Make meta.json vouch for the files as they are now (what a forger would do)."""
    import hashlib

    meta = json.loads((step_dir / META_FILE).read_text())
    for name in meta["files"]:
        data = (step_dir / name).read_bytes()
        meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (step_dir / META_FILE).write_text(json.dumps(meta))


def _truncate(step_dir: Path) -> Path:
    path = step_dir / MODEL_FILE
    path.write_bytes(path.read_bytes()[:-100])
    return path


def _flip_a_byte(step_dir: Path) -> Path:
    path = step_dir / STATE_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))
    return path


class _RunsCode:
    """Unpickling this calls Path.touch on the marker: code run by loading a checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (Path.touch, (self.marker,))


def _pickle_that_runs_code(step_dir: Path) -> Path:
    path = step_dir / STATE_FILE
    state = torch.load(path, weights_only=True)
    state["payload"] = _RunsCode(step_dir.parent.parent / "pwned")
    torch.save(state, path)
    _rehash(step_dir)
    return path


def _lying_safetensors_header(step_dir: Path) -> Path:
    path = step_dir / MODEL_FILE
    header = json.dumps(
        {"wte.weight": {"dtype": "F32", "shape": [2**40, 2**20], "data_offsets": [0, 2**62]}}
    ).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 64)
    _rehash(step_dir)
    return path


def _weights_as_a_pickle(step_dir: Path) -> Path:
    path = step_dir / MODEL_FILE
    torch.save(tiny_model().state_dict(), path)  # a .pt file under the safetensors name
    _rehash(step_dir)
    return path


def _no_meta(step_dir: Path) -> Path:
    path = step_dir / META_FILE
    path.unlink()
    return path


DAMAGE = {
    "truncated weights": (_truncate, "truncated"),
    "corrupt optimizer state": (_flip_a_byte, "corrupt"),
    "pickle that runs code": (_pickle_that_runs_code, "not written by codex-ml"),
    "safetensors header that lies": (_lying_safetensors_header, "cannot be read"),
    "weights that are a pickle": (_weights_as_a_pickle, "cannot be read"),
    "meta.json missing": (_no_meta, "missing"),
}


@pytest.fixture
def short_run(tmp_path: Path) -> Path:
    """A finished 3-step run with one checkpoint (step-3)."""
    run_dir = tmp_path / "run"
    trainer(run_dir, max_steps=3, checkpoint_every=0)(tiny_model(), ByteTokenizer(), RECORDS)
    return run_dir


@pytest.mark.parametrize("damage", DAMAGE, ids=str)
def test_resuming_from_a_damaged_checkpoint_names_the_file_and_changes_nothing(
    damage: str, short_run: Path
) -> None:
    damage_fn, message = DAMAGE[damage]
    step_dir = short_run / "checkpoints" / "step-3"
    damaged = damage_fn(step_dir)
    report.record("faults_injected")
    before_files = sorted(p.name for p in (short_run / "checkpoints").iterdir())
    model = tiny_model(seed=1)
    before = weights(model)
    with pytest.raises(CheckpointError, match=message) as caught:
        trainer(short_run, resume_from=str(short_run))(model, ByteTokenizer(), RECORDS)
    assert str(damaged) in str(caught.value)
    assert caught.value.path == damaged
    assert same(weights(model), before)  # nothing loaded, nothing trained, nothing reinitialised
    assert sorted(p.name for p in (short_run / "checkpoints").iterdir()) == before_files
    assert not (short_run / "pwned").exists()  # no code in the checkpoint ran
    assert "\n" not in str(caught.value)  # one paragraph (torch's own goes on for twelve lines)
    report.record("bad_inputs_tried")
    report.record("runs_survived")


def test_resuming_into_a_model_of_another_shape_names_the_file(short_run: Path) -> None:
    wider = tiny_model(seed=1, n_embd=32)
    before = weights(wider)
    with pytest.raises(CheckpointError, match="does not fit") as caught:
        trainer(short_run, resume_from=str(short_run))(wider, ByteTokenizer(), RECORDS)
    assert str(short_run / "checkpoints" / "step-3" / MODEL_FILE) in str(caught.value)
    assert same(weights(wider), before)
    report.record("bad_inputs_tried")


def test_a_resume_target_without_a_checkpoint_is_refused_not_started_afresh(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="No checkpoint found"):
        trainer(tmp_path / "out", resume_from=str(empty))(tiny_model(), ByteTokenizer(), RECORDS)
    assert not (tmp_path / "out" / "checkpoints").exists()  # no fresh run was started instead
    assert time.perf_counter() - started < 60
    report.record("bad_inputs_tried")
