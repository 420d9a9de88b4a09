"""One bad plugin never takes down the rest, and is reported once, where the user looks.

Each fault of :data:`faults.FAULTS` is a real distribution (dist-info folder,
entry points, modules) put on ``sys.path`` next to a healthy one; the facade's
registries discover them through the same scan as any installed plugin. For
each fault: listing works, every healthy entry loads, the fault is reported
once with its distribution, entry point and original error, and
``codex-ml plugins doctor`` names it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from codex_ml.cli import plugins as plugins_cli
from codex_ml.registry import (
    Registry,
    RegistryConflictError,
    RegistryLoadError,
    metric_registry,
    registries,
)

from . import report
from .conftest import ImportLog, InstallFaults
from .faults import (
    AMBIGUOUS,
    FAULTS,
    HEALTHY_KEYS,
    LOAD,
    NONE,
    NOT_UTF8,
    PROBLEM,
    SHADOWED,
    SLOW,
    UNREADABLE,
    VERSION,
    Fault,
    fault_named,
    install,
)

#: Keys of the example plugins and the catalogue that must keep working next to any fault.
BYSTANDERS = {"metric": ("toy_metric", "toy_length_ratio", "ppl"), "tokenizer": ("toy_tokenizer",)}


def registry_of(key: str) -> Registry:
    """The registry that lists ``key``."""
    found = [registry for registry in registries.values() if key in registry.list()]
    assert len(found) == 1, (key, [r.kind for r in found])
    return found[0]


def problem_messages() -> list[str]:
    """Every discovery fault once, across the six registries (as `plugins list` prints them)."""
    return list(dict.fromkeys(p.message for r in registries.values() for p in r.problems()))


#: Every line doctor prints: a verdict, a provider or cause under a FAIL, or the summary.
DOCTOR_LINE = re.compile(
    r"(ok    |FAIL  |slow  |note  |        )\S|\d+ problem\(s\) found\.$|all entries load\.$|$"
)


def doctor(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``codex-ml plugins doctor``: its exit status and lines, each one of the known kinds."""
    capsys.readouterr()
    status = plugins_cli.run(["doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if not DOCTOR_LINE.match(line)] == []  # one line per report
    return status, lines


def naming(lines: list[str], fault: Fault, prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix) and fault.distribution in line]


def assert_healthy_entries_load(fault: Fault | None = None) -> int:
    """Every healthy key of the healthy distribution, the fault's own and the bystanders loads."""
    keys = [*HEALTHY_KEYS["metric"], *HEALTHY_KEYS["tokenizer"]]
    keys += [key for kind in BYSTANDERS.values() for key in kind]
    keys += list(fault.healthy) if fault else []
    for key in keys:
        assert callable(registry_of(key).get(key)), key
    assert metric_registry.get("rf_healthy_ep_metric")(scale=3.0)([], []) == 3.0
    return len(keys)


def assert_reported_once(fault: Fault, status: int, lines: list[str]) -> None:
    """The checks of one fault's report, by how it reaches the user."""
    messages = problem_messages()
    mine = [m for m in messages if fault.distribution in m]
    if fault.reported == UNREADABLE:
        file = os.path.join(f"{fault.distribution.replace('-', '_')}-{VERSION}.dist-info", "")
        file += "entry_points.txt"
        assert len(mine) == 1, messages
        assert fault.error in mine[0] and file in mine[0]
        assert f"distribution {fault.distribution} {VERSION}:" in mine[0]
        failures = naming(lines, fault, "FAIL")
        assert len(failures) == 1 and file in failures[0], lines
        assert status == 1
        return
    if fault.reported == PROBLEM:
        assert len(mine) == 1, messages
        assert f"plugin {fault.entry_point!r} ({fault.distribution} {VERSION})" in mine[0]
        assert fault.error in mine[0]
        failures = naming(lines, fault, "FAIL")
        assert len(failures) == 1, lines
        assert fault.error in failures[0]
        assert status == 1
        return
    assert mine == []  # not a discovery fault
    if fault.reported == LOAD:
        registry = registry_of(fault.key)
        with pytest.raises(RegistryLoadError) as caught:
            registry.get(fault.key)
        message = str(caught.value)
        cause = caught.value.__cause__
        assert cause is not None
        assert fault.error in f"{type(cause).__name__}: {cause}"
        assert f"{fault.entry_point!r}" in message and fault.distribution in message
        failures = naming(lines, fault, "FAIL")
        assert len(failures) == 1, lines
        caused_by = lines[lines.index(failures[0]) + 1]
        assert caused_by.strip().startswith("caused by") and fault.error in caused_by
        assert status == 1
    elif fault.reported == AMBIGUOUS:
        with pytest.raises(RegistryConflictError) as caught:
            metric_registry.get(fault.key)
        assert caught.value.providers and len(caught.value.providers) == 2
        assert fault.distribution in str(caught.value)
        failures = [line for line in lines if line.startswith("FAIL")]
        assert failures == [f"FAIL  metric {fault.key!r} is ambiguous:"]
        providers = lines[lines.index(failures[0]) + 1 : lines.index(failures[0]) + 3]
        assert all(fault.distribution in line for line in providers)
        assert status == 1
    else:
        assert not [line for line in lines if line.startswith("FAIL")], lines
        assert status == 0
        if fault.reported == SLOW:
            slow = naming(lines, fault, "slow")
            assert len(slow) == 1, lines
            assert fault.entry_point in slow[0] and "s to " in slow[0]
        elif fault.reported == SHADOWED:
            noted = naming(lines, fault, "note")
            assert len(noted) == 1, lines
            assert "site-copy" in noted[0] and "ignored" in noted[0]
        else:
            assert fault.reported == NONE


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", FAULTS, ids=str)
def test_a_faulty_distribution_is_isolated_and_reported_once(
    fault: Fault,
    install_faults: InstallFaults,
    import_log: ImportLog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install_faults(fault)
    listed = {kind: set(registry.list()) for kind, registry in registries.items()}
    for kind, keys in (*HEALTHY_KEYS.items(), *BYSTANDERS.items()):
        assert set(keys) <= listed[kind]
    assert len(listed["metric"]) >= fault.keys_added
    # Listing imported hook plugins only: no component entry point, however slow or broken.
    component_modules = {"rf_healthy_ep", "rf_healthy_lazy"}
    if fault.name.startswith("entry-point"):
        component_modules.add(f"rf_{fault.name.replace('-', '_')}")
    imported = import_log.modules()
    assert not [m for m in imported if m in component_modules or m.endswith("_healthy")]
    assert_healthy_entries_load(fault)
    status, lines = doctor(capsys)
    assert_reported_once(fault, status, lines)
    # Nothing was imported twice, not even across doctor's second round of loads.
    imported = import_log.modules()
    assert len(imported) == len(set(imported)), imported
    report.record("runs_survived")


@pytest.mark.timeout(180)
def test_every_fault_at_once_leaves_the_healthy_entries_working(
    install_faults: InstallFaults, capsys: pytest.CaptureFixture[str]
) -> None:
    install_faults(*FAULTS)
    assert_healthy_entries_load()
    for fault in FAULTS:
        for key in fault.healthy:
            assert callable(registry_of(key).get(key)), (fault, key)
    status, lines = doctor(capsys)
    assert status == 1
    for fault in FAULTS:
        prefix = {PROBLEM: "FAIL", LOAD: "FAIL", SLOW: "slow", SHADOWED: "note"}.get(fault.reported)
        if prefix is not None:
            assert len(naming(lines, fault, prefix)) == 1, (fault, lines)
    ambiguous = [line for line in lines if line.endswith("is ambiguous:")]
    assert sorted(ambiguous) == sorted(
        f"FAIL  metric {f.key!r} is ambiguous:" for f in FAULTS if f.reported == AMBIGUOUS
    )
    report.record("runs_survived")


@pytest.mark.timeout(120)
def test_plugins_list_in_a_fresh_process_warns_once_per_fault(
    tmp_path: Path, import_log: ImportLog
) -> None:
    """``python -m codex_ml.cli plugins list --json`` with every fault installed on PYTHONPATH."""
    site = tmp_path / "site"
    folders = [site]
    from .faults import install_healthy

    install_healthy(site, import_log.path)
    for fault in (*FAULTS, NOT_UTF8):
        folders += fault.build(site, import_log.path)
        report.record("faults_injected")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [*map(str, folders), *filter(None, [env.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, "-m", "codex_ml.cli", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    metrics = {entry["key"]: entry for entry in data["metric"]}
    assert set(HEALTHY_KEYS["metric"]) <= metrics.keys()
    assert metrics["rf_entry_point_import_error"]["status"] == "lazy"  # listed, not imported
    for fault in (*FAULTS, NOT_UTF8):
        mine = [p for p in data["problems"] if fault.distribution in p]
        reported = fault.reported in (PROBLEM, UNREADABLE)
        assert len(mine) == (1 if reported else 0), (fault, data["problems"])
    # Listing imported the hook plugins, and not one component entry point.
    imported = set(import_log.modules())
    assert "rf_healthy_hooks" in imported
    assert not {"rf_healthy_ep", "rf_entry_point_slow_import", "rf_healthy_lazy"} & imported
    report.record("runs_survived")


@pytest.mark.timeout(120)
def test_an_entry_points_file_that_is_not_utf8_is_a_fault_naming_the_file(
    tmp_path: Path,
    install_faults: InstallFaults,
    import_log: ImportLog,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its entries are ignored and it is reported once, naming the file; the others all work.

    ``importlib.metadata`` decodes every entry_points.txt strictly, so the same
    file makes any package's entry-point lookup raise ``UnicodeDecodeError``
    (torch's import does one): a component whose import fails that way is told
    which file to blame.
    """
    site = tmp_path / "site"
    install(
        site,
        "rf-looks-up-entry-points",
        VERSION,
        entry_points={"codex_ml.metrics": {"rf_looks_up_entry_points": "rf_lookup:build"}},
        modules={
            "rf_lookup": "from importlib.metadata import entry_points\n"
            "entry_points(group='torch.backends')\n\ndef build():\n    return len\n"
        },
        log=import_log.path,
    )
    install_faults(NOT_UTF8)
    assert NOT_UTF8.key not in metric_registry.list()
    assert_healthy_entries_load()
    with pytest.raises(RegistryLoadError) as caught:
        metric_registry.get("rf_looks_up_entry_points")
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)
    assert "rf_not_utf8-6.0.1.dist-info" in str(caught.value) and "not UTF-8" in str(caught.value)
    status, lines = doctor(capsys)
    assert_reported_once(NOT_UTF8, status, lines)
    assert "rf_not_utf8" not in import_log.modules()
    report.record("runs_survived")


#: Faults that used to end the process: the hook plugin's, at import and in its hook.
ENDS_THE_PROCESS = [
    fault_named(name)
    for name in (
        "hook-exits-at-import",
        "hook-sys-exit",
        "hook-keyboard-interrupt",
        "hook-generator-exit",
        "entry-point-sys-exit",
        "entry-point-keyboard-interrupt",
    )
]


def fresh_site(tmp_path: Path, import_log: ImportLog, *faults: Fault) -> dict[str, str]:
    """The environment of a fresh process with the healthy distribution and ``faults``."""
    from .faults import install_healthy

    site = tmp_path / "site"
    folders = [site]
    install_healthy(site, import_log.path)
    for fault in faults:
        folders += fault.build(site, import_log.path)
        report.record("faults_injected")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [*map(str, folders), *filter(None, [env.get("PYTHONPATH")])]
    )
    return env


@pytest.mark.timeout(120)
def test_a_plugin_ending_the_process_does_not_end_a_fresh_doctor(
    tmp_path: Path, import_log: ImportLog
) -> None:
    """``SystemExit(0)`` at import used to make ``doctor`` exit 0 having checked nothing."""
    env = fresh_site(tmp_path, import_log, *ENDS_THE_PROCESS)
    result = subprocess.run(
        [sys.executable, "-m", "codex_ml.cli", "plugins", "doctor"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=110,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    for fault in ENDS_THE_PROCESS:
        failures = [
            line for line in lines if line.startswith("FAIL") and fault.distribution in line
        ]
        assert len(failures) == 1, (fault, lines)
        assert fault.error in failures[0] or fault.error in lines[lines.index(failures[0]) + 1]
    assert "ok    metric rf_healthy_hook_metric" in lines
    assert lines[-1].endswith("problem(s) found.")
    report.record("runs_survived")


@pytest.mark.timeout(300)
def test_a_plugin_ending_the_process_does_not_end_a_fresh_training_run(
    tmp_path: Path, import_log: ImportLog
) -> None:
    """``codex-ml train`` used to exit 0 without training when a hook plugin raised SystemExit."""
    from cli_helpers import QUICK

    env = fresh_site(tmp_path, import_log, fault_named("hook-exits-at-import"))
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "codex_ml.cli", "train", f"hydra.run.dir={run_dir}", *QUICK],
        capture_output=True,
        text=True,
        env={**env, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
        timeout=280,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "summary.json").is_file(), (result.stdout[-2000:], result.stderr[-2000:])
    assert "rf_hook_exits_at_import" in import_log.modules()  # the plugin did run, and fail
    report.record("runs_survived")
