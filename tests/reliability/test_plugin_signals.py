"""A plugin's exit is its fault; a real signal during plugin code still stops the program.

``KeyboardInterrupt`` from Ctrl-C and from ``raise KeyboardInterrupt`` have the
same type, so the registry tells them apart by where they were raised: through
a signal handler (the user's, stopped) or not (the plugin's, reported). Each
test installs a real distribution whose module sends the process a real signal
with ``os.kill``, or raises the same exception itself, and checks which one the
program got.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from codex_ml.registry import RegistryLoadError, metric_registry, registries

from . import report
from .conftest import ImportLog, InstallFaults
from .faults import HEALTHY_COMPONENT, METRICS, PLUGINS, fault_named, install, metrics_hook

#: A module that sends its own process ``SIGNAL`` while it is imported, then waits for it.
SIGNALS_ITSELF = """
import os, signal, time
os.kill(os.getpid(), signal.{signal})
time.sleep(5)  # the handler runs at once, in this sleep
"""


@pytest.fixture
def handler() -> Iterator[Callable[[int, Callable[[int, FrameType | None], None]], None]]:
    """``handler(signum, function)`` installs a signal handler until the test ends."""
    saved: dict[int, object] = {}

    def install_handler(signum: int, function: Callable[[int, FrameType | None], None]) -> None:
        saved.setdefault(signum, signal.getsignal(signum))
        signal.signal(signum, function)

    yield install_handler
    for signum, previous in saved.items():
        signal.signal(signum, previous)  # type: ignore[arg-type]


def install_signalling_entry_point(
    site: Path, log: ImportLog, on_sys_path: Callable[..., None], signame: str
) -> str:
    install(
        site,
        "rf-signals-itself",
        "1.0",
        entry_points={METRICS: {"rf_signals_itself": "rf_signals_itself:build"}},
        modules={"rf_signals_itself": SIGNALS_ITSELF.format(signal=signame) + HEALTHY_COMPONENT},
        log=log.path,
    )
    on_sys_path(site)
    report.record("faults_injected")
    return "rf_signals_itself"


@pytest.mark.timeout(60)
def test_ctrl_c_while_an_entry_point_imports_still_interrupts(
    tmp_path: Path, import_log: ImportLog, on_sys_path: Callable[..., None]
) -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    key = install_signalling_entry_point(tmp_path / "site", import_log, on_sys_path, "SIGINT")
    with pytest.raises(KeyboardInterrupt):
        metric_registry.get(key)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert metric_registry.describe(key).status == "lazy"  # not the plugin's fault: not cached
    report.record("runs_survived")


@pytest.mark.timeout(60)
def test_a_sigterm_handler_that_exits_still_ends_the_program_while_a_hook_plugin_imports(
    tmp_path: Path, import_log: ImportLog, on_sys_path: Callable[..., None], handler: Callable
) -> None:
    def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    handler(signal.SIGTERM, exit_on_sigterm)
    install(
        tmp_path / "site",
        "rf-terminated",
        "1.0",
        entry_points={PLUGINS: {"rf_terminated": "rf_terminated"}},
        modules={
            "rf_terminated": SIGNALS_ITSELF.format(signal="SIGTERM")
            + metrics_hook('{"rf_terminated_metric": build}')
        },
        log=import_log.path,
    )
    on_sys_path(tmp_path / "site")
    report.record("faults_injected")
    with pytest.raises(SystemExit) as caught:
        registries["metric"].list()
    assert caught.value.code == 128 + signal.SIGTERM
    report.record("runs_survived")


@pytest.mark.timeout(60)
def test_keyboard_interrupt_raised_by_plugin_code_under_a_graceful_ctrl_c_handler_is_a_fault(
    install_faults: InstallFaults, handler: Callable
) -> None:
    """A run that turns Ctrl-C into a clean stop never gets ``KeyboardInterrupt`` from Ctrl-C."""
    requested: list[int] = []
    handler(signal.SIGINT, lambda signum, frame: requested.append(signum))
    fault = fault_named("entry-point-keyboard-interrupt")
    install_faults(fault)
    with pytest.raises(RegistryLoadError, match="KeyboardInterrupt") as caught:
        metric_registry.get(fault.key)
    assert fault.distribution in str(caught.value) and requested == []
    report.record("runs_survived")


@pytest.mark.timeout(60)
def test_an_exit_raised_by_plugin_code_in_a_worker_thread_is_a_fault(
    install_faults: InstallFaults,
) -> None:
    """Signal handlers run in the main thread only: elsewhere every exit is the plugin's."""
    faults = [fault_named("entry-point-keyboard-interrupt"), fault_named("entry-point-sys-exit")]
    install_faults(*faults)
    outcomes: dict[str, BaseException | None] = {}

    def load(key: str) -> None:
        try:
            metric_registry.get(key)
            outcomes[key] = None
        except BaseException as exc:  # checked below
            outcomes[key] = exc

    threads = [threading.Thread(target=load, args=(fault.key,)) for fault in faults]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for fault in faults:
        assert isinstance(outcomes[fault.key], RegistryLoadError), outcomes
        assert fault.error in str(outcomes[fault.key])
    report.record("runs_survived")


@pytest.mark.timeout(60)
def test_a_plugin_that_installs_its_own_sigint_handler_keeps_it(
    tmp_path: Path, import_log: ImportLog, on_sys_path: Callable[..., None], handler: Callable
) -> None:
    """The SIGINT wrapper is put back only if it is still there: a plugin's choice stands."""
    handler(signal.SIGINT, signal.default_int_handler)  # restored after the test
    install(
        tmp_path / "site",
        "rf-own-handler",
        "1.0",
        entry_points={METRICS: {"rf_own_handler": "rf_own_handler:build"}},
        modules={
            "rf_own_handler": "import signal\n\ndef on_int(signum, frame):\n    pass\n\n"
            "signal.signal(signal.SIGINT, on_int)\n" + HEALTHY_COMPONENT
        },
        log=import_log.path,
    )
    on_sys_path(tmp_path / "site")
    assert callable(metric_registry.get("rf_own_handler"))
    installed = signal.getsignal(signal.SIGINT)
    assert getattr(installed, "__name__", "") == "on_int", installed
