"""Blocked or disabled plugin code is never imported: proved by the fault modules' import log.

Every module of every fault distribution (and of the healthy one) appends its
name to the import log the moment it runs. With the distributions blocked
(``CODEX_ML_BLOCK_PLUGINS``, by distribution or by entry-point name, in any
spelling) or autoload disabled (``CODEX_ML_DISABLE_PLUGIN_AUTOLOAD=1``), the
user lists, describes, loads every key that is left and runs ``plugins doctor``,
and the log stays empty. Unblocking them is the control: the log fills.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from codex_ml.cli import plugins as plugins_cli
from codex_ml.plugins.discovery import parse_entry_points
from codex_ml.registry import RegistryError, registries

from . import report
from .conftest import ImportLog, InstallFaults
from .faults import FAULTS, HEALTHY_DISTRIBUTION, SLOW

#: The slow faults are left to the fresh-process test below: 2 s each adds nothing here.
QUICK_FAULTS = [fault for fault in FAULTS if fault.reported != SLOW]


def installed_names(folders: list[Path]) -> tuple[list[str], list[str]]:
    """(distribution names, entry-point names) of everything installed in ``folders``."""
    distributions, entry_points = [], []
    for folder in folders:
        for meta in folder.glob("*.dist-info"):
            header = (meta / "METADATA").read_text().splitlines()
            distributions.append(next(h[5:].strip() for h in header if h.startswith("Name:")))
            declared = parse_entry_points((meta / "entry_points.txt").read_text())
            entry_points += [name for _, name, _ in declared]
    return sorted(set(distributions)), sorted(set(entry_points))


def use_everything(capsys: pytest.CaptureFixture[str]) -> int:
    """What a user does: list, describe and load every key of every kind, run doctor."""
    keys = 0
    for registry in registries.values():
        for key in registry.list():
            registry.describe(key).as_dict(location=True)
            with contextlib.suppress(RegistryError):  # the example plugins' own faults
                registry.get(key)
            keys += 1
    plugins_cli.run(["doctor"])
    capsys.readouterr()
    return keys


def shout(name: str) -> str:
    """Another spelling of a name that normalises to the same one (PEP 503)."""
    return name.upper().replace("-", "_")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["distribution names", "entry-point names", "autoload off"])
def test_blocked_plugin_code_is_never_imported(
    how: str,
    install_faults: InstallFaults,
    import_log: ImportLog,
    plugin_policy: Callable[..., object],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folders = install_faults(*QUICK_FAULTS)
    distributions, entry_points = installed_names(folders)
    if how == "distribution names":
        policy = {"block": " , ".join(shout(name) for name in distributions)}
    elif how == "entry-point names":
        # Every entry point by its own name, but the 10,000-key ones by distribution.
        many = [f.distribution for f in QUICK_FAULTS if f.keys_added]
        few = [name for name in entry_points if not name.startswith("rf_ep_many_")]
        policy = {"block": ",".join([*few, *many])}
    else:
        policy = {"disable": True}

    with plugin_policy(**policy):  # type: ignore[operator]
        used = use_everything(capsys)
        listed = {key for registry in registries.values() for key in registry.list()}
        problems = [p.message for r in registries.values() for p in r.problems()]
        show = plugins_cli.run(["show", "metric", "rf_healthy_ep_metric"])
        leaked = import_log.modules()
        report.record("blocked_imports", len(leaked))
    assert leaked == []
    assert used > 0 and "ppl" in listed  # the built-in catalogue still works
    assert not [key for key in listed if key.startswith("rf_")]
    assert not [m for m in problems if "rf-" in m]  # nothing was even tried
    assert show != 0 and "no metric is registered under 'rf_healthy_ep_metric'" in (
        capsys.readouterr().err
    )
    if how == "autoload off":
        assert not [key for key in listed if key.startswith("toy_")]
    else:
        assert "toy_metric" in listed  # blocking is selective

    # The control: unblocked, listing imports the hook plugins, so the log is real.
    assert "rf_healthy_hook_metric" in registries["metric"].list()
    assert "rf_healthy_hooks" in import_log.modules()
    assert HEALTHY_DISTRIBUTION in distributions
    report.record("runs_survived")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "env",
    [
        {"CODEX_ML_DISABLE_PLUGIN_AUTOLOAD": "1"},
        {
            # By distribution (two spellings) and by entry-point name.
            "CODEX_ML_BLOCK_PLUGINS": "RF_HEALTHY, rf-hook-slow-import, "
            "rf_hook_import_error,rf_hook_import_error_healthy"
        },
    ],
    ids=["autoload off", "blocked"],
)
def test_a_fresh_cli_process_imports_no_blocked_code(
    env: dict[str, str], tmp_path: Path, import_log: ImportLog
) -> None:
    """``python -m codex_ml.cli plugins list --json``: nothing blocked in sys.modules or the log."""
    from .faults import fault_named, install_healthy

    site = tmp_path / "site"
    install_healthy(site, import_log.path)
    for name in ("hook-slow-import", "hook-import-error"):
        fault_named(name).build(site, import_log.path)
        report.record("faults_injected")
    script = (
        "import json, sys\n"
        "from codex_ml.cli import main\n"
        "status = main(['plugins', 'list', '--json'])\n"
        "print(json.dumps({'status': status, 'rf': [m for m in sys.modules "
        "if m.startswith('rf_')]}))\n"
    )
    environ = {**os.environ, **env}
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr
    *listing, last = result.stdout.splitlines()
    outcome = json.loads(last)
    leaked = import_log.modules()
    report.record("blocked_imports", len(leaked) + len(outcome["rf"]))
    assert leaked == [] and outcome == {"status": 0, "rf": []}
    assert "rf_" not in "\n".join(listing)
    assert result.stderr == ""  # no fault to warn about: the faulty plugin was never tried
    report.record("runs_survived")
