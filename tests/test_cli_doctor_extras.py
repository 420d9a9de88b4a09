"""A built-in entry whose extra is missing is an install step, not a broken entry.

Each command runs as a user runs it, in a subprocess where ``transformers`` (the
``hf`` extra) cannot be imported: ``sys.modules["transformers"] = None`` makes
every import of it fail as if it were not installed. The commands start in
parallel, as ``doctor`` imports torch and takes seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

WITHOUT_HF = "import sys\nsys.modules['transformers'] = None\n"
CLI = WITHOUT_HF + "from codex_ml.cli import main\nsys.exit(main({argv!r}))\n"
GET_MODEL = WITHOUT_HF + (
    "from codex_ml.registry import RegistryLoadError, RegistryMissingExtraError, get_model\n"
    "try:\n"
    "    get_model('gpt2-offline')\n"
    "except RegistryMissingExtraError as exc:\n"
    "    assert isinstance(exc, RegistryLoadError)\n"
    "    print(exc.kind, exc.key, exc.module, exc.extra)\n"
    "    print(exc)\n"
)
INSTALL_HF = 'pip install "codex-ml[hf]"'


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def runs() -> Mapping[str, Run]:
    with_broken = {k: v for k, v in os.environ.items() if k != "CODEX_ML_BLOCK_PLUGINS"}
    commands = {
        "doctor": (CLI.format(argv=["plugins", "doctor"]), os.environ),
        "doctor --json": (CLI.format(argv=["plugins", "doctor", "--json"]), os.environ),
        "list --json": (CLI.format(argv=["plugins", "list", "--json"]), os.environ),
        "list models": (CLI.format(argv=["plugins", "list", "models"]), os.environ),
        "get_model": (GET_MODEL, os.environ),
        "doctor --json (broken)": (
            CLI.format(argv=["plugins", "doctor", "--json"]),
            with_broken,
        ),
    }
    started = {
        name: subprocess.Popen(
            [sys.executable, "-c", code],
            env={**env, "HF_HUB_OFFLINE": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (code, env) in commands.items()
    }
    results = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = Run(process.returncode, stdout, stderr)
    return results


def test_doctor_says_which_extra_a_builtin_entry_needs_and_passes(runs: Mapping[str, Run]) -> None:
    run = runs["doctor"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FAIL" not in run.stdout
    assert (
        f"need  model gpt2-offline needs the hf extra: {INSTALL_HF} (transformers is not installed)"
    ) in run.stdout.splitlines()
    needs = [line for line in run.stdout.splitlines() if line.startswith("need")]
    assert {line.split()[1:3][1] for line in needs} == {
        "gpt2-offline",
        "hf",
        "tinyllama-offline",
        "bpe",  # trains with tokenizers, saves and loads with transformers
    }
    assert "ok    model decoder_only" in run.stdout  # torch is there: the rest still loads
    assert run.stdout.rstrip().endswith("all installed entries load.")


def test_doctor_json_reports_the_same_checks(runs: Mapping[str, Run]) -> None:
    run = runs["doctor --json"]
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)  # stdout is JSON only
    assert report["ok"] is True and report["faults"] == 0 and report["problems"] == []
    by_key = {(e["kind"], e["key"]): e for e in report["entries"]}
    gpt2 = by_key[("model", "gpt2-offline")]
    assert gpt2["status"] == "needs-extra"
    assert (gpt2["extra"], gpt2["module"], gpt2["install"]) == ("hf", "transformers", INSTALL_HF)
    assert by_key[("metric", "ppl")]["status"] == "ok"
    assert report["needs_extra"] == sum(e["status"] == "needs-extra" for e in report["entries"])


def test_doctor_json_fails_on_a_broken_plugin(runs: Mapping[str, Run]) -> None:
    run = runs["doctor --json (broken)"]
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["ok"] is False and report["faults"] >= 2
    assert any("broken_hooks" in problem for problem in report["problems"])
    broken = next(e for e in report["entries"] if e["key"] == "broken_metric")
    assert broken["status"] == "failed"
    assert "codex_ml_broken_missing_dependency" in broken["cause"]


def test_list_marks_an_entry_whose_extra_is_missing(runs: Mapping[str, Run]) -> None:
    listing = json.loads(runs["list --json"].stdout)
    models = {entry["key"]: entry for entry in listing["model"]}
    assert models["gpt2-offline"]["needs_extra"] == "hf"
    assert "needs_extra" not in models["decoder_only"]
    row = next(line for line in runs["list models"].stdout.splitlines() if "gpt2-offline" in line)
    assert "builtin (needs the hf extra)" in row
    assert runs["list models"].returncode == 0


def test_the_load_error_names_the_install_command(runs: Mapping[str, Run]) -> None:
    run = runs["get_model"]
    assert run.returncode == 0, run.stderr
    first, message = run.stdout.splitlines()[:2]
    assert first == "model gpt2-offline transformers hf"
    assert INSTALL_HF in message and "built-in catalogue" in message
    assert "reload()" not in message and "uninstall" not in message


def test_the_needs_table_names_catalogue_modules_and_known_extras() -> None:
    from codex_ml.catalogue.table import CATALOGUE
    from codex_ml.extras import BUILTIN_NEEDS, EXTRA_OF

    modules = {t.partition(":")[0] for table in CATALOGUE.values() for t in table.values()}
    assert set(BUILTIN_NEEDS) <= modules
    assert {m for needs in BUILTIN_NEEDS.values() for m in needs} <= set(EXTRA_OF)
