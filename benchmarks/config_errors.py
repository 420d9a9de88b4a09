"""Time from ``codex-ml train <mistake>`` to its error, against interpreter baselines (issue 14).

A config mistake used to take about 6 s to report, 3 s of it importing torch
before the check. The checks now read factories from source and run before
torch: goal, under 1.5 s from start to the error on the 2-core machine. The
baselines, measured in the same run: a bare ``python -c pass`` (the floor) and
``python -c "import torch"`` (what every error used to pay on top).

    python -m benchmarks.config_errors            # 7 runs of each, medians
    python -m benchmarks.config_errors --quick    # 2 runs
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: name -> arguments of a command that must fail with a config error (exit 2).
MISTAKES = {
    "model.n_layr=2 (parameter typo)": ["-m", "codex_ml.cli", "train", "model.n_layr=2"],
    "trainig.max_steps=2 (section typo)": ["-m", "codex_ml.cli", "train", "trainig.max_steps=2"],
    "model.n_layer=abc (wrong type)": ["-m", "codex_ml.cli", "train", "model.n_layer=abc"],
    "model=offline/minilmm (preset typo)": ["-m", "codex_ml.cli", "train", "model=offline/minilmm"],
}
BASELINES = {
    "python -c pass": ["-c", "pass"],
    'python -c "import torch"': ["-c", "import torch"],
}
GOAL_SECONDS = 1.5


def _seconds(args: list[str], cwd: Path, *, expect: int) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - started
    if result.returncode != expect:
        raise SystemExit(f"{args}: exit {result.returncode}, expected {expect}\n{result.stderr!r}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.config_errors")
    parser.add_argument("--quick", action="store_true", help="2 runs instead of 7")
    repeats = 2 if parser.parse_args(argv).quick else 7
    commands = {
        **{k: (v, 0) for k, v in BASELINES.items()},
        **{k: (v, 2) for k, v in MISTAKES.items()},
    }
    samples: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as work:
        for _ in range(repeats):  # interleaved, so drift on a shared machine hits all alike
            for name, (args, expect) in commands.items():
                samples[name].append(_seconds(args, Path(work), expect=expect))
    floor = statistics.median(samples["python -c pass"])
    print(f"| command | median s | over `python -c pass` | goal < {GOAL_SECONDS} s |")
    print("| --- | ---: | ---: | --- |")
    for name, times in samples.items():
        median = statistics.median(times)
        goal = "" if name in BASELINES else ("met" if median < GOAL_SECONDS else "MISSED")
        print(f"| `{name}` | {median:.2f} | +{median - floor:.2f} | {goal} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
