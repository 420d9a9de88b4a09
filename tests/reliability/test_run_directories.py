"""A run owns its directory: unique default names, one live run per directory, no debris.

Each test starts real ``codex-ml train`` processes side by side, as two users (or
a scheduler that starts two jobs at once) would.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from cli_helpers import QUICK, Command, assert_user_error, describe, run_concurrently

from . import report

#: A run long enough to be caught alive (checkpoints are not the point here).
LONG = (*QUICK[:-2], "training.max_steps=100000", "training.eval_every=0")


def _fixed_default(tmp_path: Path) -> Path:
    """A ``-cd`` run preset whose *default* run directory has no timestamp: a certain clash."""
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "fixed.yaml").write_text(
        "defaults:\n  - train\n  - _self_\nhydra:\n  run:\n    dir: runs/fixed\n"
    )
    return presets


def test_two_runs_with_the_same_default_name_get_two_directories(tmp_path: Path) -> None:
    presets = _fixed_default(tmp_path)
    command = Command(["train", "-cd", str(presets), "-cn", "fixed", *QUICK], tmp_path)
    results = run_concurrently({"first": command, "second": command})
    report.record("faults_injected")
    for result in results.values():
        assert result.returncode == 0, describe(result)
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["fixed", "fixed-2"]
    printed = sorted(r.stdout.rsplit("run directory: ", 1)[1].strip() for r in results.values())
    assert printed == [str(tmp_path / "runs" / name) for name in folders]
    for name in folders:
        summary = json.loads((tmp_path / "runs" / name / "summary.json").read_text())
        assert summary["status"] == "completed"
        assert summary["run_dir"] == str(tmp_path / "runs" / name)
    report.record("runs_survived", 2)


def _no_runs(cwd: Path) -> bool:
    """No run directory under ``cwd/runs`` (the empty ``runs/`` itself may stay)."""
    runs = cwd / "runs"
    return not runs.exists() or list(runs.iterdir()) == []


def _start_and_wait_for_lock(command: Command, run_dir: Path):  # type: ignore[no-untyped-def]
    process = command.start()
    lock = run_dir / ".lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if lock.is_file() and lock.read_text().strip() == str(process.pid):
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the run never locked {run_dir}:\n{process.communicate()}")


@pytest.mark.timeout(240)
def test_a_second_run_in_a_live_runs_directory_is_refused_naming_its_pid(tmp_path: Path) -> None:
    run_dir = tmp_path / "shared"
    first = _start_and_wait_for_lock(
        Command(["train", f"hydra.run.dir={run_dir}", *LONG], tmp_path), run_dir
    )
    try:
        second = Command(["train", f"hydra.run.dir={run_dir}", *QUICK], tmp_path).run()
        resume = Command(["train", *QUICK, f"training.resume={run_dir}"], tmp_path).run()
    finally:
        first.kill()
        first.communicate()
    report.record("faults_injected", 2)
    report.record("bad_inputs_tried", 2)
    assert_user_error(second, "train", str(run_dir), f"pid {first.pid}", "hydra.run.dir")
    assert_user_error(resume, "train", str(run_dir), f"pid {first.pid}", "live")
    assert not (run_dir / "summary.json").exists()  # the refused run wrote nothing there
    assert _no_runs(tmp_path)  # nor left a directory of its own
    report.record("runs_survived")


def test_a_failed_start_leaves_no_run_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    bad = {
        "missing data file": ["data=offline/lines", f"data.path={missing}"],
        "bad value": ["training.batch_size=0"],
    }
    results = run_concurrently(
        {name: Command(["train", *QUICK, *args], tmp_path) for name, args in bad.items()}
    )
    for name, result in results.items():
        report.record("bad_inputs_tried")
        assert result.returncode == 2, (name, describe(result))
    assert _no_runs(tmp_path)


def test_a_planted_link_in_place_of_the_lock_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.symlink(victim, run_dir / ".lock")
    result = Command(["train", f"hydra.run.dir={run_dir}", *QUICK], tmp_path).run()
    report.record("bad_inputs_tried")
    assert_user_error(result, "train", str(run_dir / ".lock"), "symbolic link")
    assert victim.read_text() == "precious\n"


@pytest.mark.timeout(120)
def test_sigterm_while_the_run_starts_leaves_no_run_directory(tmp_path: Path) -> None:
    """SIGTERM before the first step: exit 143 and nothing left (a FIFO holds the start)."""
    fifo = tmp_path / "corpus.fifo"
    os.mkfifo(fifo)
    run_dir = tmp_path / "starting"
    command = Command(
        ["train", f"hydra.run.dir={run_dir}", *QUICK, "data=offline/lines", f"data.path={fifo}"],
        tmp_path,
    )
    process = _start_and_wait_for_lock(command, run_dir)
    time.sleep(1.0)  # past the lock, the run is waiting for the FIFO's writer
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    report.record("faults_injected")
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    assert not run_dir.exists()
    report.record("runs_survived")
