"""Progress off a terminal: a plain line on stdout every ``training.log_every`` steps.

The CLI tests capture stdout, so every run they start is "not a terminal".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import QUICK, Command, Run, describe

pytest_plugins = ["cli_fixtures"]

#: ``step N/MAX  loss X  lr X  tok/s X  elapsed H:MM:SS  eta H:MM:SS``
LINE = re.compile(
    r"^step (\d+)/(\d+)  loss (\d+\.\d{4})  lr (\S+)  tok/s ([\d,]+)  "
    r"elapsed (\d+:\d\d:\d\d)  eta (\d+:\d\d:\d\d)$"
)


def progress_lines(stdout: str) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, stdout.splitlines()) if m]


def test_a_piped_run_prints_a_line_every_log_every_steps(tmp_path: Path) -> None:
    args = [a for a in QUICK if not a.startswith(("run.progress", "training.max_steps"))]
    command = ["train", f"hydra.run.dir={tmp_path / 'run'}", *args]
    result = Command([*command, "training.max_steps=6", "training.log_every=2"], tmp_path).run()
    assert result.returncode == 0, describe(result)
    lines = progress_lines(result.stdout)
    # The first step, then every log_every steps (the last one among them).
    assert [int(m.group(1)) for m in lines] == [1, 2, 4, 6], result.stdout
    assert {int(m.group(2)) for m in lines} == {6}
    run = Run(tmp_path / "run")
    for match, row in zip(lines, run.logged(), strict=True):
        assert float(match.group(3)) == pytest.approx(row["loss"], abs=5e-5)
        assert float(match.group(4)) == pytest.approx(row["lr"], rel=1e-2)
    assert lines[-1].group(7) == "0:00:00"  # nothing left at the last step
    # The bar stays on terminals: stderr (not one here) has none.
    assert "\r" not in result.stderr and "it/s" not in result.stderr


def test_run_progress_false_prints_no_progress_lines(tmp_path: Path) -> None:
    result = Command(["train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK], tmp_path).run()
    assert result.returncode == 0, describe(result)
    assert "run.progress=false" in QUICK
    assert progress_lines(result.stdout) == []


def test_the_shared_runs_lines_match_its_metrics(trained_run: Run) -> None:
    """30 steps logged every step: 30 lines, with the numbers metrics.jsonl holds."""
    assert trained_run.result is not None
    lines = progress_lines(trained_run.result.stdout)
    logged = trained_run.logged()
    assert [int(m.group(1)) for m in lines] == [row["step"] for row in logged] == list(range(1, 31))
    for match, row in zip(lines, logged, strict=True):
        assert float(match.group(5).replace(",", "")) == pytest.approx(row["tokens_per_s"], abs=1)
        hours, minutes, seconds = map(int, match.group(6).split(":"))
        assert hours * 3600 + minutes * 60 + seconds == pytest.approx(row["elapsed"], abs=0.51)


def test_the_eta_is_the_time_per_step_so_far_times_the_steps_left() -> None:
    from codex_ml.run.progress import ProgressLines, clock

    lines = ProgressLines(100)
    first = {"event": "log", "step": 10, "max_steps": 100, "loss": 2.0, "lr": 1e-3}
    first |= {"tokens_per_s": 1000.0, "tokens_seen": 10 * 500, "elapsed": 7.0}
    # Before a second line: 90 steps of 500 tokens at 1,000 tokens/s.
    assert lines.line(first).endswith(f"eta {clock(45)}")
    later = {**first, "step": 30, "elapsed": 27.0}  # one second a step since the first line
    assert lines.line(later).endswith(f"eta {clock(70)}")
    assert clock(3725.4) == "1:02:05"


def test_only_log_records_make_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from codex_ml.run.progress import ProgressLines

    lines = ProgressLines(10)
    lines({"event": "eval", "step": 5, "eval_loss": 1.0})
    lines({"event": "checkpoint", "step": 5, "path": "x"})
    assert capsys.readouterr().out == ""
    lines({"event": "log", "step": 5, "max_steps": 10, "loss": 1.0, "elapsed": 1.0})
    assert capsys.readouterr().out.startswith("step 5/10  loss 1.0000")
    ProgressLines(10, enabled=False)({"event": "log", "step": 6, "elapsed": 1.0})
    assert capsys.readouterr().out == ""


def test_lines_are_wanted_off_a_terminal_unless_progress_is_false(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from codex_ml.run.progress import lines_wanted

    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert lines_wanted("auto") and lines_wanted(True) and lines_wanted("true")
    assert not lines_wanted(False) and not lines_wanted("false")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert not lines_wanted("auto") and not lines_wanted(True)
