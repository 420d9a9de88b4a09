"""SIGHUP (the terminal or SSH session went away) stops a run as SIGTERM does.

The step in progress is finished and saved, the summary says ``interrupted``
with the signal's name, and the process exits 129 (128 + SIGHUP). A second
SIGHUP, like a second SIGTERM, changes nothing.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from cli_helpers import TINY, Command

from codex_ml.training.interrupt import GracefulInterrupt, exit_status

from . import report


def test_sighup_is_a_request_to_stop_and_a_second_one_is_ignored() -> None:
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGHUP)
        assert interrupt.requested and interrupt.signal == "SIGHUP"
        os.kill(os.getpid(), signal.SIGHUP)  # the session's other processes, or a repeat
        assert interrupt.signal == "SIGHUP"
    assert exit_status("SIGHUP") == 129
    report.record("faults_injected", 2)


def _logged_steps(run_dir: Path) -> int:
    metrics = run_dir / "metrics.jsonl"
    if not metrics.exists():
        return 0
    steps = [json.loads(line).get("step", 0) for line in metrics.read_text().splitlines()[:-1]]
    return max(steps, default=0)


@pytest.mark.timeout(300)
def test_sighup_mid_training_checkpoints_and_exits_129(tmp_path: Path) -> None:
    run_dir = tmp_path / "hung-up"
    args = [*TINY, "training.max_steps=100000", "training.log_every=1", "training.eval_every=0"]
    process = Command(["train", f"hydra.run.dir={run_dir}", *args], tmp_path).start()
    deadline = time.monotonic() + 180
    while _logged_steps(run_dir) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    announced = _logged_steps(run_dir)
    assert announced >= 2
    process.send_signal(signal.SIGHUP)
    report.record("faults_injected")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 129, f"{stdout}\n{stderr}"
    assert "Hung up (SIGHUP): finishing this step, then I will save a checkpoint" in stderr
    assert "Traceback" not in stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGHUP"
    checkpoint = run_dir / "checkpoints" / f"step-{summary['steps']}"
    assert checkpoint.is_dir() and summary["steps"] >= announced
    assert f"resume with: codex-ml train training.resume={run_dir}" in stdout
    report.record("runs_survived")
