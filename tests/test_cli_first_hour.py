"""The first hour with ``codex-ml``: installs, resume, the console and machine-readable output.

Every check is a real ``codex-ml`` process, as a user would run it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import (
    QUICK,
    TINY,
    TRAINED,
    Command,
    Run,
    assert_user_error,
    cli_env,
    describe,
    train,
)

pytest_plugins = ["cli_fixtures"]


# --- installs: a missing extra is named -------------------------------------------------------

#: command -> (the module made missing, the extra the error must name)
WITHOUT = {
    "train": ("hydra", "train"),
    "evaluate": ("torch", "train"),
    "generate": ("torch", "train"),
}


@pytest.mark.parametrize("command", list(WITHOUT))
def test_a_missing_extra_is_one_paragraph_naming_the_install(command: str, tmp_path: Path) -> None:
    """``sys.modules[name] = None`` makes ``import name`` fail as if it were not installed."""
    module, extra = WITHOUT[command]
    args = {"train": [], "evaluate": [str(tmp_path)], "generate": [str(tmp_path), "--prompt", "x"]}
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        f"from codex_ml.cli import main\nsys.exit(main({[command, *args[command]]!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert_user_error(result, command, module, f'pip install "codex-ml[{extra}]"')


def test_train_help_works_without_hydra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['hydra'] = None\n"
        "from codex_ml.cli import main\nsys.exit(main(['train', '--help']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, describe(result)
    assert "-cn" in result.stdout


@pytest.mark.parametrize("command", ["evaluate", "generate", "plugins", "train", "prepare"])
def test_help_pages_have_no_rest_markup(command: str, tmp_path: Path) -> None:
    result = Command([command, "--help"], tmp_path).run()
    assert result.returncode == 0, describe(result)
    assert "``" not in result.stdout
    if command in ("evaluate", "generate", "train"):
        assert "-cd" in result.stdout


# --- resume: the run's own config ---------------------------------------------------------------


def test_resume_starts_from_the_runs_own_config(tmp_path: Path, trained_run: Run) -> None:
    """The README's line: ``training.resume=RUN`` alone, for a run made with overrides."""
    source = tmp_path / "source"
    shutil.copytree(trained_run.dir, source)
    resumed = train(tmp_path / "resumed", f"training.resume={source}", "training.max_steps=32")
    assert resumed.summary["status"] == "completed" and resumed.summary["steps"] == 32
    assert resumed.summary["components"]["model"]["key"] == "minilm"  # from the recorded run
    assert [r["step"] for r in resumed.logged()] == list(range(1, 33))
    assert resumed.summary["first_loss"] == pytest.approx(trained_run.summary["first_loss"])


def test_a_resume_that_changes_the_models_shape_is_refused_naming_the_key(
    tmp_path: Path, trained_run: Run
) -> None:
    result = Command(
        ["train", f"training.resume={trained_run.dir}", "model.n_layer=3"], tmp_path
    ).run()
    assert_user_error(result, "train", "model.n_layer", str(trained_run.dir), "new run")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_run_resumed_in_place_keeps_one_history_from_step_0(
    tmp_path: Path, trained_run: Run
) -> None:
    run_dir = tmp_path / "in-place"
    shutil.copytree(trained_run.dir, run_dir)
    # From step 20, as after a kill past it: the rows of steps 21-30 are steps trained again.
    step_20 = run_dir / "checkpoints" / "step-20"
    assert step_20.is_dir()
    resumed = train(run_dir, f"training.resume={step_20}", "training.max_steps=34")
    steps = [r["step"] for r in resumed.logged()]
    assert steps == list(range(1, 35))
    assert resumed.summary["first_loss"] == pytest.approx(trained_run.summary["first_loss"])


# --- signals and the console --------------------------------------------------------------------


def test_sigterm_checkpoints_and_exits_143_with_the_resume_command(tmp_path: Path) -> None:
    run_dir = tmp_path / "terminated"
    args = [*TINY, "training.max_steps=100000", "training.checkpoint_every=5"]
    process = Command(["train", f"hydra.run.dir={run_dir}", *args], tmp_path).start()
    deadline = time.monotonic() + 120
    while not (run_dir / "checkpoints" / "latest").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, f"{stdout}\n{stderr}"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    assert f"resume with: codex-ml train training.resume={run_dir}" in stdout
    assert "Traceback" not in stderr


def test_the_summary_line_says_each_number_once_and_what_was_skipped(
    tmp_path: Path,
) -> None:
    run = train(tmp_path / "all-metrics", *QUICK[:-1], "metrics=offline/all")
    lines = run.result.stdout.splitlines()
    (numbers,) = [line for line in lines if "train_loss=" in line]
    names = [part.split("=")[0] for part in numbers.split()]
    assert "eval_ppl" in names and "ppl" not in names  # the same number, said once
    (skipped,) = [line for line in lines if line.strip().startswith("skipped:")]
    for alias in ("exact_match", "f1", "weighted_accuracy"):
        assert alias in skipped
    assert "(no references)" in skipped


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    without_setting = [a for a in QUICK if not a.startswith("run.progress")]
    result = Command(["train", f"hydra.run.dir={tmp_path / 'run'}", *without_setting], tmp_path)
    finished = result.run()
    assert finished.returncode == 0, describe(finished)
    assert "\r" not in finished.stderr and "it/s" not in finished.stderr


def test_evaluate_and_generate_take_config_dirs(tmp_path: Path, trained_run: Run) -> None:
    presets = tmp_path / "presets" / "metrics"
    presets.mkdir(parents=True)
    (presets / "mine.yaml").write_text("ppl_only:\n  name: ppl\n  input: token-nll\n")
    result = Command(
        [
            *("evaluate", str(trained_run.dir), "-cd", str(presets.parent), "metrics=mine"),
            *("--output", str(tmp_path / "report.json")),
        ],
        tmp_path,
    ).run()
    assert result.returncode == 0, describe(result)
    assert set(json.loads(result.stdout)["metrics"]) == {"ppl_only"}


def test_trained_args_are_what_the_shared_run_used() -> None:
    assert "training.max_steps=30" in TRAINED  # the resume tests above rely on it


def test_the_reward_says_which_rules_scored(trained_run: Run) -> None:
    """A reward of 0.0 must read as "no rule fired", not as broken: the terms are shown."""
    from codex_ml.rewards.heuristic import HeuristicRewardModel

    model = HeuristicRewardModel()
    samples = [json.loads(line) for line in (trained_run.dir / "samples.jsonl").open()]
    for sample in samples:
        parts = model.explain(sample["prompt"], sample["completion"])
        fired = {k: v for k, v in parts.items() if k != "total" and v}
        assert sample.get("reward_terms", {}) == pytest.approx(fired)
    terms = trained_run.summary["reward"]["terms"]
    for rule, mean in terms.items():
        assert mean == pytest.approx(
            sum(s.get("reward_terms", {}).get(rule, 0.0) for s in samples) / len(samples)
        )
    (line,) = [x for x in trained_run.result.stdout.splitlines() if "reward (" in x]
    assert "offline:heuristic" in line
    assert ("no rule fired" in line) == (not terms)
