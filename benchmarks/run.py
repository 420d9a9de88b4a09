"""Run the benchmarks and write their results into ``docs/benchmarks.md``.

    python -m benchmarks.run                 # everything (~15 min on 2 cores); rewrites the page
    python -m benchmarks.run --quick         # seconds; prints the report, writes nothing
    python -m benchmarks.run --only hot      # some sections; prints unless --output is given

The full run rewrites only the generated part of ``docs/benchmarks.md``
(between its markers) and saves every raw number to
``benchmarks/results/latest.json``. ``--quick`` runs every section at a toy
size, to check that the benchmarks still work (CI runs it through
``tests/test_benchmarks_smoke.py``); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import (
    cold_start,
    compile_training,
    discovery_scale,
    generation,
    hot_lookup,
    machine,
    training,
)
from benchmarks.measure import REPO_ROOT, compile_sources
from benchmarks.report import Section, render, splice, table

PAGE = REPO_ROOT / "docs" / "benchmarks.md"
RAW = REPO_ROOT / "benchmarks" / "results" / "latest.json"
SECTIONS = ("cold", "discovery", "hot", "training", "generation", "compile")


def _plan(quick: bool, threads: int) -> dict[str, Callable[[Path], Section]]:
    """section name -> how to run it, at full or toy size."""
    if quick:
        return {
            "cold": lambda w: cold_start.run(w, repeats=2),
            "discovery": lambda w: discovery_scale.run(w, sizes=(20,), repeats={20: 2}, quick=True),
            "hot": lambda w: hot_lookup.run(w, seconds=0.005, repeats=5),
            "training": lambda w: training.run(
                w,
                shape=training.default_shape(quick=True, threads=threads),
                repeats=1,
                scaling=True,
                overhead_shape=training.overhead_shape(quick=True),
            ),
            "generation": lambda w: generation.run(
                w, size=generation.QUICK_SIZE, lengths=generation.QUICK_LENGTHS, repeats=1
            ),
            "compile": lambda w: compile_training.run(
                w, shape=training.default_shape(quick=True, threads=threads), repeats=1
            ),
        }
    return {
        "cold": lambda w: cold_start.run(w, repeats=15),
        "discovery": lambda w: discovery_scale.run(
            w, sizes=(100, 1000, 10000), repeats={100: 9, 1000: 9, 10000: 5}, quick=False
        ),
        "hot": lambda w: hot_lookup.run(w, seconds=0.2, repeats=9),
        "training": lambda w: training.run(
            w,
            shape=training.default_shape(quick=False, threads=threads),
            repeats=7,
            scaling=True,
            overhead_shape=training.overhead_shape(quick=False),
            side_repeats=5,
        ),
        "generation": lambda w: generation.run(w, repeats=5),
        "compile": lambda w: compile_training.run(
            w, shape=training.default_shape(quick=False, threads=threads), repeats=5
        ),
    }


def _header(argv: Sequence[str], started: datetime, seconds: float, quick: bool) -> str:
    info = machine.describe()
    command = " ".join(["python -m benchmarks.run", *argv])
    lines = [
        f"Run on {started:%Y-%m-%d %H:%M} UTC, took {seconds / 60:.1f} min: `{command}`. "
        "codex-ml's sources were byte-compiled first, as an install does.",
        "",
        table(["", ""], [[key, value] for key, value in info.items()]),
        "",
    ]
    if quick:
        lines.insert(0, "**Quick smoke run: toy sizes, the numbers mean nothing.**\n")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="toy sizes, a few seconds")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated, of: {', '.join(SECTIONS)}"
    )
    parser.add_argument("--output", type=Path, help="the page to write the results into")
    parser.add_argument("--raw", type=Path, help="where to save the raw numbers as JSON")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per training process (default 1)"
    )
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    complete = not args.quick and set(chosen) == set(SECTIONS)
    output = args.output or (PAGE if complete else None)
    raw_path = args.raw or (RAW if complete else None)

    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    plan = _plan(args.quick, args.threads)
    compile_sources()
    sections = []
    with tempfile.TemporaryDirectory(prefix="codex-ml-bench-") as tmp:
        for name in chosen:
            section_clock = time.perf_counter()
            print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
            sections.append(plan[name](Path(tmp)))
            print(
                f"[benchmarks] {name} done in {time.perf_counter() - section_clock:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    seconds = time.perf_counter() - clock
    generated = render(_header(argv, started, seconds, args.quick), sections)
    if output is None:
        print(generated)
    else:
        splice(output, generated)
        print(f"[benchmarks] results written to {output}", file=sys.stderr)
    if raw_path is not None:
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw = {
            "started": started.isoformat(),
            "seconds": seconds,
            "quick": args.quick,
            "machine": machine.describe(),
            "goals": [
                {**vars(goal), "met": goal.met} for section in sections for goal in section.goals
            ],
            "sections": {section.title: section.raw for section in sections},
        }
        raw_path.write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    missed = [goal.name for section in sections for goal in section.goals if not goal.met]
    for name in missed:
        print(f"[benchmarks] goal missed: {name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
