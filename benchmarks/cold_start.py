"""Section 1, cold start: a fresh process that lists every registry.

Measured, each in a new interpreter, interleaved:

- the baseline ``python -c "import importlib.metadata, pluggy"`` (what any
  pluggy-based tool pays before it has found a single plugin);
- ``import codex_ml.registry`` and listing all six registries;
- ``codex-ml plugins list --json`` (the installed console script);
- for context, ``python -c pass`` and the listing with the discovery index
  turned off (``CODEX_ML_DISCOVERY_CACHE=0``).

The environment is this interpreter's own (its site-packages, with whatever
plugins are installed there), with the discovery index in a private folder
that one untimed run warms first. Every listing process asserts that torch,
transformers and hydra were not imported.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks.measure import ProcessRun, child_env, round_robin, run_process, timed_probe
from benchmarks.report import Goal, Section, ms, ratio, raw_runs, table

HEAVY = ("torch", "transformers", "hydra")

LIST_ALL = (
    "import sys, json\n"
    "import codex_ml.registry as registry\n"
    "keys = sum(len(r.list()) for r in registry.registries.values())\n"
    f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
    "print(json.dumps({'keys': keys, 'heavy_modules': heavy}))\n"
)


def cli_command() -> list[str]:
    """The ``codex-ml`` script next to this interpreter, else ``python -m codex_ml.cli``."""
    script = Path(sys.executable).with_name("codex-ml")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "codex_ml.cli"]


def _nothing(run: ProcessRun) -> dict[str, Any]:
    return {}


def _cli_listing(run: ProcessRun) -> dict[str, Any]:
    data = json.loads(run.stdout)
    return {"keys": sum(len(v) for k, v in data.items() if k != "problems")}


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    """Top-level heavy packages a command imports, read from ``PYTHONPROFILEIMPORTTIME``."""
    run = run_process(argv, {**env, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = set()
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            imported.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return sorted(imported & set(HEAVY))


def run(workdir: Path, *, repeats: int) -> Section:
    cache = workdir / "cold-start-index"
    shutil.rmtree(cache, ignore_errors=True)
    env = child_env(extra={"CODEX_ML_CACHE_DIR": str(cache)})
    no_index = {**env, "CODEX_ML_DISCOVERY_CACHE": "0"}
    python = sys.executable
    listing = [python, "-c", LIST_ALL]
    cli = [*cli_command(), "plugins", "list", "--json"]

    run_process(listing, env)  # builds the index that the timed runs read
    heavy = {"listing": heavy_imports(listing, env), "cli": heavy_imports(cli, env)}

    names = {
        "baseline": 'python -c "import importlib.metadata, pluggy"',
        "listing": "import codex_ml.registry + list all six",
        "cli": "codex-ml plugins list --json",
        "no-index": "list all six, index off (CODEX_ML_DISCOVERY_CACHE=0)",
        "floor": 'python -c "pass"',
    }
    samples = round_robin(
        {
            names["baseline"]: timed_probe(
                [python, "-c", "import importlib.metadata, pluggy"], env, parse=_nothing
            ),
            names["listing"]: timed_probe(listing, env),
            names["cli"]: timed_probe(cli, env, parse=_cli_listing),
            names["no-index"]: timed_probe(listing, no_index),
            names["floor"]: timed_probe([python, "-c", "pass"], env, parse=_nothing),
        },
        repeats,
    )
    for name in (names["listing"], names["no-index"]):
        for details in samples[name].details:
            heavy_seen = details["heavy_modules"]
            if heavy_seen:
                raise AssertionError(f"{name} imported {heavy_seen}; listing must not")
    if heavy["listing"] or heavy["cli"]:
        raise AssertionError(f"a listing process imported heavy packages: {heavy}")

    base = samples[names["baseline"]]
    section = Section("1. Cold start")
    rows = []
    for sample in samples.values():
        keys = sample.details[0].get("keys", "")
        rows.append(
            [
                sample.name,
                ms(sample.median),
                f"{ms(sample.low)} - {ms(sample.high)}",
                ms(sample.median_of("cpu_s")),
                ratio(sample.median, base.median),
                keys,
            ]
        )
    section.add(
        table(
            ["process", "median wall ms", "range", "median CPU ms", "vs baseline", "keys"],
            rows,
        )
    )
    section.add(
        f"torch / transformers / hydra imported: by the listing {heavy['listing'] or 'none'}, "
        f"by `codex-ml plugins list --json` {heavy['cli'] or 'none'} (checked with "
        f"`PYTHONPROFILEIMPORTTIME=1`; every timed listing run also asserts it). "
        f"Command: `{' '.join(cli_command())}`; {repeats} runs each, interleaved."
    )
    section.add(raw_runs(list(samples.values())))
    for key in ("listing", "cli"):
        section.goals.append(
            Goal(
                f"cold start: {names[key]} vs `import importlib.metadata, pluggy`",
                samples[names[key]].median / base.median,
                1.5,
                "<=",
            )
        )
    section.raw = {
        "samples": [s.to_json() for s in samples.values()],
        "heavy_imports": heavy,
    }
    return section
