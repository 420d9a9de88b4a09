"""``codex-ml plugins list | show | doctor``, run as a user runs them: ``python -m codex_ml.cli``.

Every command of this file is started at once, in parallel, the first time a
test asks for a result: ``doctor`` loads every entry (torch, transformers) and
takes seconds, and the cores would otherwise sit idle.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from codex_ml.plugins.kinds import KINDS

#: The import a bare ``codex-ml plugins list`` must not pay for.
HEAVY = ("torch", "transformers", "hydra", "omegaconf", "codex_ml_toy")

LIST_IMPORTS = f"""
import json, sys
from codex_ml.cli import main
status = main(["plugins", "list"])
heavy = [m for m in sys.modules if m.split(".")[0] in {HEAVY!r}
         or m.startswith(("codex_ml.metrics", "codex_ml.models", "codex_ml.tokenizers"))]
print(json.dumps({{"status": status, "heavy": heavy}}))
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def _ambiguous_site(root: Path) -> Path:
    """Two distributions that both claim the metric key ``shared_metric``."""
    site = root / "site"
    for dist, module in (("demo-one", "one"), ("demo-two", "two")):
        meta = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        meta.mkdir(parents=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n\n")
        (meta / "entry_points.txt").write_text(
            f"[codex_ml.metrics]\nshared_metric = {module}_mod:build\n"
        )
        (site / f"{module}_mod.py").write_text("def build():\n    return len\n")
    return site


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Mapping[str, Run]:
    root = tmp_path_factory.mktemp("cli")
    with_broken = {k: v for k, v in os.environ.items() if k != "CODEX_ML_BLOCK_PLUGINS"}
    with_broken["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(_ambiguous_site(root)), os.environ.get("PYTHONPATH")])
    )
    cli = [sys.executable, "-m", "codex_ml.cli", "plugins"]
    commands: dict[str, tuple[list[str], Mapping[str, str]]] = {
        "list": ([*cli, "list"], os.environ),
        "list --json": ([*cli, "list", "--json"], os.environ),
        "list metric --json": ([*cli, "list", "metric", "--json"], os.environ),
        "list widget": ([*cli, "list", "widget"], os.environ),
        "show metric ppl": ([*cli, "show", "metric", "ppl"], os.environ),
        "show metrics toy_metric --json": (
            [*cli, "show", "metrics", "toy_metric", "--json"],
            os.environ,
        ),
        "show metric toy_metrc": ([*cli, "show", "metric", "toy_metrc"], os.environ),
        "doctor": ([*cli, "doctor"], os.environ),
        "doctor (broken, ambiguous)": ([*cli, "doctor"], with_broken),
        "list metric (broken, ambiguous)": ([*cli, "list", "metric"], with_broken),
        "list imports": ([sys.executable, "-c", LIST_IMPORTS], os.environ),
    }
    started = {
        name: subprocess.Popen(
            argv,
            env=dict(env),
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (argv, env) in commands.items()
    }
    results = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = Run(process.returncode, stdout, stderr)
    return results


# -- list ------------------------------------------------------------------------------------------


def test_list_prints_a_table_per_kind(runs: Mapping[str, Run]) -> None:
    run = runs["list"]
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""  # no plugin faults while the broken plugin is blocked
    counts = {kind: len(entries) for kind, entries in runs["list --json"].json().items()}
    lines = run.stdout.splitlines()
    for kind in KINDS:
        assert f"{kind.plural} ({counts[kind.name]})" in lines
    assert lines[lines.index(f"metrics ({counts['metric']})") + 1].split() == [
        "KEY",
        "SOURCE",
        "PLUGIN",
        "/",
        "DISTRIBUTION",
        "VERSION",
        "TARGET",
    ]
    rows = {line.split()[0]: line.split() for line in lines if line and not line[0].isupper()}
    assert rows["toy_metric"] == [
        "toy_metric",
        "entry-point",
        "toy_metric",
        "/",
        "codex-ml-toy-components",
        "0.1.0",
        "codex_ml_toy.metric:build",
    ]
    assert rows["toy_length_ratio"][1:5] == ["plugin", "toy_hooks", "/", "codex-ml-toy-hooks"]
    assert rows["ppl"][1:5] == ["builtin", "codex_ml.catalogue", "/", "codex-ml"]
    assert "broken_metric" not in rows


def test_list_one_kind_as_json(runs: Mapping[str, Run]) -> None:
    run = runs["list metric --json"]
    assert run.returncode == 0, run.stderr
    data = run.json()
    assert set(data) == {"metric", "problems"}
    assert data["problems"] == []
    entries = {entry["key"]: entry for entry in data["metric"]}
    assert list(entries) == sorted(entries)
    assert entries["toy_metric"] == {
        "key": "toy_metric",
        "kind": "metric",
        "source": "entry-point",
        "plugin": "toy_metric",
        "distribution": "codex-ml-toy-components",
        "version": "0.1.0",
        "target": "codex_ml_toy.metric:build",
        "status": "lazy",
    }
    assert entries["ppl"]["source"] == "builtin"
    assert entries["toy_length_ratio"]["distribution"] == "codex-ml-toy-hooks"


def test_list_imports_no_lazy_entry(runs: Mapping[str, Run]) -> None:
    run = runs["list imports"]
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout.strip().splitlines()[-1])
    assert data == {"status": 0, "heavy": []}


def test_list_marks_ambiguous_keys_and_warns_of_broken_plugins(runs: Mapping[str, Run]) -> None:
    run = runs["list metric (broken, ambiguous)"]
    assert run.returncode == 0, run.stderr  # listing works whatever is broken
    rows = {line.split()[0]: line for line in run.stdout.splitlines()[2:] if line.strip()}
    assert "entry-point (ambiguous)" in rows["shared_metric"]
    assert "codex_ml_broken.metric:build" in rows["broken_metric"]
    assert "toy_metric" in rows
    assert run.stderr.startswith("warning: plugin 'broken_hooks' (codex-ml-broken-plugin")
    assert "RuntimeError: codex_ml_broken.hooks is broken on purpose" in run.stderr


def test_list_of_an_unknown_kind_is_a_usage_error(runs: Mapping[str, Run]) -> None:
    run = runs["list widget"]
    assert run.returncode == 2
    assert "unknown component kind 'widget'" in run.stderr
    assert "metric" in run.stderr


# -- show ------------------------------------------------------------------------------------------


def _fields(stdout: str) -> dict[str, str]:
    return {
        line.partition(":")[0]: line.partition(": ")[2]
        for line in stdout.splitlines()
        if line and not line.startswith(" ")
    }


def test_show_prints_provenance_signature_and_doc(runs: Mapping[str, Run]) -> None:
    run = runs["show metric ppl"]
    assert run.returncode == 0, run.stderr
    fields = _fields(run.stdout)
    assert fields["key"] == "ppl"
    assert fields["kind"] == "metric"
    assert fields["source"] == "builtin"
    assert fields["distribution"] == "codex-ml"
    assert fields["target"] == "codex_ml.metrics.perplexity:build_perplexity"
    source = Path(fields["file"]).read_text().splitlines()
    assert source[int(fields["line"]) - 1].startswith("def build_perplexity(")
    assert fields["signature"].startswith("ppl(")
    doc = run.stdout.split("\ndoc:", 1)[1].split("\nsignature:")[0].strip()
    assert doc  # the factory's docstring, indented under "doc:"


def test_show_as_json_matches_the_factory(runs: Mapping[str, Run]) -> None:
    from codex_ml_toy.metric import build

    run = runs["show metrics toy_metric --json"]
    assert run.returncode == 0, run.stderr
    data = run.json()
    assert data["signature"] == f"toy_metric{inspect.signature(build)}"
    assert data["doc"] == inspect.getdoc(build)
    assert data["file"] == inspect.getsourcefile(build)
    assert data["line"] == inspect.getsourcelines(build)[1]
    assert (data["distribution"], data["version"]) == ("codex-ml-toy-components", "0.1.0")
    assert data["status"] == "loaded"


def test_show_of_an_unknown_key_names_close_matches(runs: Mapping[str, Run]) -> None:
    run = runs["show metric toy_metrc"]
    assert run.returncode == 2
    assert run.stdout == ""
    assert "no metric is registered under 'toy_metrc'" in run.stderr
    assert "Did you mean 'toy_metric'?" in run.stderr
    assert "Available metric keys: " in run.stderr


# -- doctor ----------------------------------------------------------------------------------------


def test_doctor_passes_when_everything_loads(runs: Mapping[str, Run]) -> None:
    run = runs["doctor"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FAIL" not in run.stdout
    assert run.stdout.rstrip().endswith("all entries load.")
    checked = {
        tuple(line.split()[1:3]) for line in run.stdout.splitlines() if line.startswith("ok")
    }
    listed = {
        (kind, entry["key"])
        for kind, entries in runs["list --json"].json().items()
        if kind != "problems"
        for entry in entries
    }
    assert checked == listed  # every key of every kind was loaded


def test_doctor_reports_every_failure_and_ambiguity(runs: Mapping[str, Run]) -> None:
    run = runs["doctor (broken, ambiguous)"]
    assert run.returncode == 1
    out = run.stdout
    failures = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 3, out
    assert (
        "FAIL  plugin 'broken_hooks' (codex-ml-broken-plugin 0.0.1) failed to import: "
        "RuntimeError: codex_ml_broken.hooks is broken on purpose"
    ) in failures
    assert any("'broken_metric'" in f and "codex-ml-broken-plugin" in f for f in failures)
    assert (
        "caused by ModuleNotFoundError: No module named 'codex_ml_broken_missing_dependency'"
    ) in out
    assert "FAIL  metric 'shared_metric' is ambiguous:" in failures
    block = out.split("'shared_metric' is ambiguous:\n", 1)[1].splitlines()[:2]
    assert "demo-one" in block[0] and "one_mod:build" in block[0]
    assert "demo-two" in block[1] and "two_mod:build" in block[1]
    # One broken plugin stops nothing else.
    for ok in ("ok    metric healthy_metric", "ok    metric toy_metric", "ok    metric ppl"):
        assert ok in out
    assert out.rstrip().endswith("3 problem(s) found.")
