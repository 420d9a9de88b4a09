"""What the CLI tests share: ``codex-ml`` in a subprocess, tiny run settings, and checks.

The session fixtures built from these (one tiny trained run, one tree of tiny
Hugging Face artefacts) live in ``cli_fixtures.py``, a pytest plugin that the
CLI test files load with ``pytest_plugins = ["cli_fixtures"]``.

Every command runs in a fresh interpreter (``python -m codex_ml.cli``), as a user
would run it, with this checkout's ``codex_ml`` first on ``PYTHONPATH`` and no
artefact environment variable leaking in from the caller's shell.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import codex_ml

#: The directory holding the ``codex_ml`` under test; subprocesses import it from there.
SRC_DIR = Path(codex_ml.__file__).resolve().parent.parent

#: Environment variables that move artefacts or the project root (tests set them explicitly).
LOCATION_VARS = (
    "CODEX_ML_GPT2_DIR",
    "CODEX_ML_TINYLLAMA_DIR",
    "CODEX_ML_ARTIFACTS_DIR",
    "CODEX_ML_PROJECT_ROOT",
)

#: Prompts the tiny runs sample from.
PROMPTS = ("Once upon a time", "The old machine")

#: A tiny run: the 0.1M-parameter model, short blocks, small eval, no progress bar.
TINY = (
    "model=offline/minilm",
    "training.batch_size=4",
    "training.block_size=64",
    "training.eval_max_batches=4",
    "run.sample_prompts=[" + ",".join(json.dumps(p) for p in PROMPTS) + "]",
    "run.max_new_tokens=16",
    "run.progress=false",
)

#: The shared trained run: enough steps to learn, with checkpoints to resume from. Every
#: step is logged, so the final train loss is that of step 30 however a run was cut.
TRAINED = (
    *TINY,
    "training.max_steps=30",
    "training.log_every=1",
    "training.eval_every=10",
    "training.checkpoint_every=10",
)

#: A run that only has to finish: two steps, one evaluation, no samples.
QUICK = (*TINY, "training.max_steps=2", "training.eval_every=0", "run.sample_prompts=[]")


def cli_env(**changes: str | None) -> dict[str, str]:
    """The subprocess environment: ours, minus artefact locations, plus ``changes``."""
    env = {k: v for k, v in os.environ.items() if k not in LOCATION_VARS}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SRC_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env["HF_HUB_OFFLINE"] = "1"
    env.pop("CODEX_ML_DEBUG", None)  # its tracebacks are what the error tests rule out
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@dataclass(frozen=True)
class Command:
    """One ``codex-ml`` invocation: arguments, working directory and environment changes."""

    args: Sequence[str]
    cwd: Path
    env: Mapping[str, str | None] = field(default_factory=dict)

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "codex_ml.cli", *self.args]

    def run(self, timeout: float = 600) -> subprocess.CompletedProcess:
        self.cwd.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            self.argv(),
            cwd=self.cwd,
            env=cli_env(**self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self) -> subprocess.Popen:
        """Start without waiting (for tests that signal the process)."""
        self.cwd.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            self.argv(),
            cwd=self.cwd,
            env=cli_env(**self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def codex_ml_cli(
    *args: str, cwd: Path, env: Mapping[str, str | None] | None = None
) -> subprocess.CompletedProcess:
    """Run ``codex-ml ARGS`` in ``cwd`` and return the finished process."""
    return Command(args, cwd, env or {}).run()


def run_concurrently(commands: Mapping[str, Command]) -> dict[str, subprocess.CompletedProcess]:
    """Run independent commands side by side (each is mostly interpreter start-up)."""
    workers = max(1, min(len(commands), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {name: pool.submit(command.run) for name, command in commands.items()}
        return {name: future.result() for name, future in futures.items()}


def describe(result: subprocess.CompletedProcess) -> str:
    """A finished process, for assertion messages."""
    return (
        f"exit {result.returncode}: {' '.join(map(str, result.args))}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, describe(result)


def assert_user_error(result: subprocess.CompletedProcess, command: str, *needles: str) -> str:
    """A user error: exit 2, one ``codex-ml COMMAND: error:`` paragraph naming every needle.

    Returns the message. Nothing else may be on stderr: no traceback, no Hydra
    "Error executing job", no second paragraph.
    """
    assert result.returncode == 2, describe(result)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, describe(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    prefix = f"codex-ml {command}: error: "
    assert len(lines) == 1 and lines[0].startswith(prefix), describe(result)
    message = lines[0].removeprefix(prefix)
    for needle in needles:
        assert needle in message, f"{needle!r} not in the error:\n{message}"
    return message


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@dataclass
class Run:
    """A finished ``codex-ml train`` run and its run directory."""

    dir: Path
    result: subprocess.CompletedProcess | None = None

    @cached_property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.dir / "summary.json").read_text(encoding="utf-8"))

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.dir / "metrics.jsonl")

    def logged(self) -> list[dict[str, Any]]:
        """The ``metrics.jsonl`` lines of logged training steps."""
        return [row for row in self.metrics if row["event"] == "log"]


def train(
    run_dir: Path,
    *overrides: str,
    config_name: str | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Run:
    """``codex-ml train [-cn NAME] hydra.run.dir=RUN_DIR OVERRIDES``; must succeed.

    Hydra's parser wants its options before the overrides, so ``-cn`` goes first.
    """
    options = ["-cn", config_name] if config_name else []
    result = codex_ml_cli(
        "train", *options, f"hydra.run.dir={run_dir}", *overrides, cwd=run_dir.parent, env=env
    )
    assert_succeeded(result)
    return Run(run_dir, result)
