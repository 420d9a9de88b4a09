"""Fixtures of the reliability suite: the tally of figures, import logs, fault sites, policy.

The suite-wide environment (the broken example plugin blocked, the discovery
index in a throw-away folder) comes from ``tests/conftest.py``; the
``on_sys_path`` fixture there puts a folder of hand-installed distributions on
``sys.path`` and rescans.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from . import report
from .faults import Fault, install_healthy

_session = {"counted": False}


@pytest.fixture(scope="session", autouse=True)
def _fresh_tally() -> None:
    """Each pytest session starts its own tally of the figures."""
    report.reset()
    _session["counted"] = True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _session["counted"] and report.tally_path().is_file():
        terminalreporter.write_sep("-", "reliability figures")
        terminalreporter.write_line(report.format_report())


class ImportLog:
    """The file that fault modules append their name to when they are imported."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def modules(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def __str__(self) -> str:
        return str(self.path)


@pytest.fixture
def import_log(tmp_path: Path) -> ImportLog:
    return ImportLog(tmp_path / "imports.log")


InstallFaults = Callable[..., list[Path]]


@pytest.fixture
def install_faults(
    tmp_path: Path, import_log: ImportLog, on_sys_path: Callable[..., None]
) -> InstallFaults:
    """Install fault distributions (and the healthy one) in a fresh site on ``sys.path``.

    Returns the folders put on ``sys.path``, first one first. Registries are
    rescanned; everything is undone after the test.
    """

    def install(*faults: Fault, healthy: bool = True) -> list[Path]:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        folders = [site]
        if healthy:
            install_healthy(site, import_log.path)
        for fault in faults:
            folders += fault.build(site, import_log.path)
            report.record("faults_injected")
        on_sys_path(*folders)
        return folders

    return install


@pytest.fixture
def plugin_policy() -> Iterator[Callable[..., object]]:
    """``with plugin_policy(block=..., disable=...)``: set the policy variables and rescan.

    The variables are restored, and the registries rescanned, when the block
    (or at the latest the test) ends.
    """
    from codex_ml.registry import reload

    names = ("CODEX_ML_BLOCK_PLUGINS", "CODEX_ML_DISABLE_PLUGIN_AUTOLOAD")
    saved = {name: os.environ.get(name) for name in names}

    def restore() -> None:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reload()

    @contextmanager
    def policy(*, block: str | None = None, disable: bool = False) -> Iterator[None]:
        if block is not None:
            os.environ["CODEX_ML_BLOCK_PLUGINS"] = block
        if disable:
            os.environ["CODEX_ML_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        reload()
        try:
            yield
        finally:
            restore()

    try:
        yield policy
    finally:
        restore()
