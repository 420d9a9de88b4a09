"""SIGTERM (what Slurm and Kubernetes send before SIGKILL) ends a run at a checkpoint.

As the first Ctrl-C does: the step in progress is finished, a checkpoint of it
is saved, and the trainer returns ``interrupted`` with the signal's name; the
process then exits 143 (130 for Ctrl-C). In one process, in-process and as a
real external signal; under ``torchrun`` (the launcher forwards the signal to
its workers), where every rank must stop after the same step and rank 0 must
have saved it before the launcher's grace period ends; and with only one rank
signalled, where the others must follow it. No finished step may be lost: the
checkpoint is at least as new as the last step announced before the signal,
and a resumed run ends on the uninterrupted run's weights, bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import load_checkpoint
from codex_ml.training.interrupt import GracefulInterrupt, exit_status

from . import report
from .test_checkpoint_faults import RECORDS, same, tiny_model, trainer, weights

SCRIPT = Path(__file__).parents[1] / "scripts" / "signal_train.py"
SRC = Path(__file__).parents[2] / "src"


class _Fallback(Exception):
    """Raised by the stand-in handler: the signal reached it, not the run's."""


@pytest.fixture
def sigterm_guard() -> Iterator[None]:
    """While a test runs, a SIGTERM that nothing else handles fails it instead of killing pytest."""

    def fallback(signum: int, frame: object) -> None:
        raise _Fallback(f"signal {signum} was not handled by the run")

    previous = signal.signal(signal.SIGTERM, fallback)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _send_at(step: int, signum: signal.Signals) -> Callable[[dict[str, Any]], None]:
    def callback(record: dict[str, Any]) -> None:
        if record["event"] == "log" and record["step"] == step:
            os.kill(os.getpid(), signum)

    return callback


# -- in one process -------------------------------------------------------------------------------


def test_sigterm_is_a_request_to_stop_and_only_a_second_ctrl_c_aborts(sigterm_guard: None) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupt.requested and interrupt.signal == "SIGTERM"
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler or launcher repeating itself
        assert interrupt.signal == "SIGTERM"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # a person who does not want to wait
    assert {s: signal.getsignal(s) for s in before} == before
    assert (exit_status("SIGTERM"), exit_status("SIGINT"), exit_status(None)) == (143, 130, 130)
    report.record("faults_injected", 3)


def test_sigterm_finishes_the_step_checkpoints_and_resumes_bit_for_bit(
    tmp_path: Path, sigterm_guard: None
) -> None:
    settings = {"max_steps": 10, "log_every": 1, "checkpoint_every": 0}
    uninterrupted = tiny_model()
    trainer(tmp_path / "reference", **settings)(uninterrupted, ByteTokenizer(), RECORDS)

    run_dir = tmp_path / "run"
    stopped = trainer(run_dir, **settings)(
        tiny_model(), ByteTokenizer(), RECORDS, callbacks=[_send_at(3, signal.SIGTERM)]
    )
    report.record("faults_injected")
    # The signal arrives after step 3 was reported; step 4 is finished, then saved.
    assert stopped.interrupted and stopped.stop_signal == "SIGTERM"
    assert stopped.steps == 4 and stopped.checkpoint == run_dir / "checkpoints" / "step-4"
    assert stopped.history[-1]["step"] == 4  # the last step's loss is logged
    resumed = tiny_model(seed=7)
    result = trainer(run_dir, **settings, resume_from=str(run_dir))(
        resumed, ByteTokenizer(), RECORDS
    )
    wrong = result.steps != 10 or not same(weights(resumed), weights(uninterrupted))
    report.record("data_lost", int(wrong))
    assert not wrong
    report.record("runs_survived")


# -- a real signal from outside ------------------------------------------------------------------


def _start(output_dir: Path, *, torchrun: bool) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command = [sys.executable, *(launcher if torchrun else []), str(SCRIPT), str(output_dir)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _announced(output_dir: Path) -> int:
    steps = output_dir / "steps"
    return max(map(int, steps.read_text().split()), default=0) if steps.exists() else 0


def _signal_after_a_step(
    process: subprocess.Popen, output_dir: Path, signum: signal.Signals, pid: int | None = None
) -> tuple[int, str]:
    """Wait for a finished step, send ``signum`` (to ``pid``, default the process); returns the
    last step announced before the signal, and the process's stderr once it has ended."""
    deadline = time.monotonic() + 120
    while _announced(output_dir) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    announced = _announced(output_dir)
    assert announced >= 2, process.communicate(timeout=60)[1][-3000:]
    target = pid if pid is not None else process.pid
    os.kill(target, signum)
    report.record("faults_injected")
    _, stderr = process.communicate(timeout=120)
    return announced, stderr


def _check_saved(output_dir: Path, step: int, announced: int) -> None:
    """``step`` is saved, loads, and is no older than the last step announced before the signal."""
    model = tiny_model()
    loaded = load_checkpoint(output_dir / "run", model)
    lost = loaded.step != step or step < announced
    report.record("data_lost", int(lost))
    assert not lost, f"saved step {loaded.step}, stopped at {step}, announced {announced}"


def _rank(output_dir: Path, rank: int) -> dict[str, Any]:
    return json.loads((output_dir / f"rank-{rank}.json").read_text())


@pytest.mark.timeout(300)
def test_an_external_sigterm_exits_143_after_saving_the_step(tmp_path: Path) -> None:
    process = _start(tmp_path, torchrun=False)
    announced, stderr = _signal_after_a_step(process, tmp_path, signal.SIGTERM)
    assert process.returncode == 143, stderr[-3000:]
    assert "Terminated (SIGTERM): finishing this step, then I will save a checkpoint" in stderr
    assert "Traceback" not in stderr
    result = _rank(tmp_path, 0)
    assert result["interrupted"] and result["stop_signal"] == "SIGTERM"
    _check_saved(tmp_path, result["steps"], announced)
    report.record("runs_survived")


@pytest.mark.timeout(300)
def test_sigterm_to_torchrun_stops_every_rank_at_one_step_and_rank_0_saves_it(
    tmp_path: Path,
) -> None:
    process = _start(tmp_path, torchrun=True)
    announced, stderr = _signal_after_a_step(process, tmp_path, signal.SIGTERM)
    rank0, rank1 = _rank(tmp_path, 0), _rank(tmp_path, 1)
    assert rank0["steps"] == rank1["steps"] and rank0["sha256"] == rank1["sha256"]
    assert rank0["stop_signal"] == rank1["stop_signal"] == "SIGTERM"
    assert rank0["checkpoint"] == str(tmp_path / "run" / "checkpoints" / f"step-{rank0['steps']}")
    assert rank1["checkpoint"] is None  # only rank 0 writes
    _check_saved(tmp_path, rank0["steps"], announced)
    # The workers ended on their own, inside torchrun's grace period: none was killed.
    assert "forcefully exiting via SIGKILL" not in stderr, stderr[-3000:]
    assert stderr.count("Terminated (SIGTERM)") == 1  # rank 0 speaks for the run
    # torchrun itself then re-raises the signal it got (its own traceback, exit 1).
    assert "SignalException" in stderr and process.returncode == 1
    report.record("runs_survived")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ctrl_c_to_torchrun_stops_every_rank_at_one_step_and_rank_0_saves_it(
    tmp_path: Path,
) -> None:
    process = _start(tmp_path, torchrun=True)
    announced, stderr = _signal_after_a_step(process, tmp_path, signal.SIGINT)
    rank0, rank1 = _rank(tmp_path, 0), _rank(tmp_path, 1)
    assert rank0["steps"] == rank1["steps"]
    assert rank0["stop_signal"] == rank1["stop_signal"] == "SIGINT"
    assert "KeyboardInterrupt" not in stderr and "forcefully exiting" not in stderr
    _check_saved(tmp_path, rank0["steps"], announced)
    report.record("runs_survived")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_sigterm_to_one_rank_only_stops_all_of_them_at_one_step(tmp_path: Path) -> None:
    process = _start(tmp_path, torchrun=True)
    rank1_pid = None
    deadline = time.monotonic() + 120
    while rank1_pid is None and time.monotonic() < deadline:
        pid_file = tmp_path / "pid-1"
        rank1_pid = int(pid_file.read_text()) if pid_file.exists() else None
        time.sleep(0.05)
    assert rank1_pid is not None
    announced, _ = _signal_after_a_step(process, tmp_path, signal.SIGTERM, pid=rank1_pid)
    rank1 = _rank(tmp_path, 1)  # rank 0 may be stopped by torchrun once rank 1 has exited 143
    assert rank1["interrupted"] and rank1["stop_signal"] == "SIGTERM"
    # Rank 0 was not signalled, yet stopped after the same step and saved it.
    _check_saved(tmp_path, rank1["steps"], announced)
    report.record("runs_survived")
