"""Timing helpers: fresh-process runs, repeated round-robin, medians.

Process timings are the wall time of ``subprocess.run`` from launch to exit,
which is what a user's command start sees. Variants are interleaved (A B C A
B C ...) rather than run in blocks, so that a slow spell of a noisy machine
is spread over all of them instead of landing on one.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The repository root and codex-ml's source folder, for child processes.
REPO_ROOT = Path(__file__).resolve().parents[1]
PROBES = Path(__file__).resolve().parent / "probes"


def codex_ml_path() -> str:
    """The folder that holds the ``codex_ml`` package this benchmark imports."""
    import codex_ml

    return str(Path(codex_ml.__file__).resolve().parents[1])


@dataclass
class Sample:
    """Repeated measurements of one thing (seconds, or any unit the caller names)."""

    name: str
    values: list[float] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)  # per-run payloads

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def median_of(self, key: str) -> float:
        """Median of a number each run's payload reported (``step_s``, say)."""
        return statistics.median(float(d[key]) for d in self.details)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": self.values, "details": self.details}


@dataclass
class ProcessRun:
    wall_s: float  # launch to exit
    cpu_s: float  # user + system time of the process and the children it waited for
    stdout: str
    stderr: str

    def payload(self) -> dict[str, Any]:
        """The object a probe printed as its last line: JSON, or a Python literal.

        (``probes/discover.py`` prints a literal so that it need not import ``json``.)
        """
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if not lines:
            raise RuntimeError(f"the probe printed nothing; stderr:\n{self.stderr[-2000:]}")
        try:
            return json.loads(lines[-1])
        except ValueError:
            return ast.literal_eval(lines[-1])


def compile_sources() -> None:
    """Byte-compile codex-ml and the example plugins, as an installer would.

    A checkout used with ``PYTHONPATH=src`` (or a shell that sets
    ``PYTHONDONTWRITEBYTECODE``) may have no ``.pyc`` files, and every
    process would then compile codex-ml from source: a cost no installed
    package pays, and one the baselines, installed by pip, do not pay.
    """
    import compileall

    for folder in (Path(codex_ml_path()) / "codex_ml", REPO_ROOT / "plugins"):
        if folder.is_dir():
            compileall.compile_dir(str(folder), quiet=2)


def child_env(
    *, pythonpath: Sequence[str] = (), extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a benchmark child: this one, with a given PYTHONPATH and extras.

    codex-ml's own settings (``CODEX_ML_*``: a block list, autoload switched
    off, another cache folder) are dropped, so that every run measures the
    defaults; the caller sets the ones it means to.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_ML_")}
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, codex_ml_path()])
    env["HF_HUB_OFFLINE"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.pop("PYTHONSTARTUP", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # children behave as a user's processes do
    env.update(extra or {})
    return env


def run_process(
    argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 600.0, cwd: Path | None = None
) -> ProcessRun:
    """Run ``argv`` to completion and time it; a failing command is an error, with its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(
            f"benchmark command failed with exit status {done.returncode}: {' '.join(argv)}\n"
            f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-4000:]}"
        )
    return ProcessRun(wall, cpu, done.stdout, done.stderr)


def probe(name: str, *args: str, python: str = sys.executable) -> list[str]:
    """The command line of a probe script (``benchmarks/probes/<name>.py``)."""
    return [python, str(PROBES / f"{name}.py"), *args]


def round_robin(
    variants: Mapping[str, Callable[[], tuple[float, dict[str, Any]]]], repeats: int
) -> dict[str, Sample]:
    """Call each variant ``repeats`` times, interleaved; each returns (value, payload)."""
    samples = {name: Sample(name) for name in variants}
    for _ in range(repeats):
        for name, measure in variants.items():
            value, details = measure()
            samples[name].values.append(value)
            samples[name].details.append(details)
    return samples


def timed_probe(
    argv: Sequence[str],
    env: Mapping[str, str] | Callable[[], Mapping[str, str]],
    *,
    parse: Callable[[ProcessRun], dict[str, Any]] = ProcessRun.payload,
) -> Callable[[], tuple[float, dict[str, Any]]]:
    """A round-robin variant: run a process, report its wall time and what ``parse`` reads.

    ``env`` may be a function, called before each run (for a fresh cache folder, say).
    """

    def measure() -> tuple[float, dict[str, Any]]:
        run = run_process(argv, env() if callable(env) else env)
        return run.wall_s, {**parse(run), "cpu_s": run.cpu_s}

    return measure
