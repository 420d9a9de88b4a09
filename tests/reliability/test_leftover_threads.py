"""A plugin that leaves a non-daemon thread running never keeps ``codex-ml`` from exiting.

The thread is started by a hook plugin module when discovery imports it, so it
runs in every command. Once the command is done, the thread gets a few seconds;
if it is still running it is named in one warning on stderr and the process
ends with the command's own exit status. A thread that finishes within that
time is waited for, as Python always did.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cli_helpers import QUICK, SRC_DIR, Command, describe

from codex_ml.cli.leftover_threads import GRACE_S

from . import report
from .faults import PLUGINS, VERSION, install

#: A hook plugin module that starts a thread which never ends.
FOREVER = """
import threading, time

def spin():
    while True:
        time.sleep(0.05)

threading.Thread(target=spin, name="rf-leaky-worker").start()
"""

#: A hook plugin module whose thread finishes its last piece of work a second after import.
BRIEF = """
import threading, time
from pathlib import Path

def finish():
    time.sleep(1.0)
    Path({done!r}).write_text("done")

threading.Thread(target=finish, name="rf-brief-worker").start()
"""


def _leaky_site(tmp_path: Path, source: str) -> Path:
    site = tmp_path / "site"
    install(
        site,
        "rf-leaky-threads",
        VERSION,
        entry_points={PLUGINS: {"rf_leaky_threads": "rf_leaky_threads"}},
        modules={"rf_leaky_threads": source},
        log=tmp_path / "imports.log",
    )
    return site


def _run(tmp_path: Path, site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": os.pathsep.join([str(SRC_DIR), str(site)])}
    result = Command(args, tmp_path / "cwd", env).run(timeout=90)
    report.record("faults_injected")
    return result


def _warnings(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if "rf-leaky-worker" in line]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("plugins", "list"), 0),
        (("train", *QUICK), 0),
        (("train", *QUICK, "training.max_steps=-1"), 2),  # a user error: its exit 2 is kept
    ],
    ids=["plugins-list", "train", "train-error"],
)
def test_a_thread_left_running_is_named_and_the_command_exits_with_its_own_status(
    tmp_path: Path, args: tuple[str, ...], status: int
) -> None:
    site = _leaky_site(tmp_path, FOREVER)
    if args[0] == "train":
        args = (args[0], f"hydra.run.dir={tmp_path / 'run'}", *args[1:])
    result = _run(tmp_path, site, *args)
    assert result.returncode == status, describe(result)
    warnings = _warnings(result)
    assert len(warnings) == 1, describe(result)
    assert f"codex-ml {args[0]}: warning:" in warnings[0]
    assert "rf_leaky_threads.spin" in warnings[0] and "rf_leaky_threads.py" in warnings[0]
    assert f"Exiting with status {status}" in warnings[0]
    report.record("runs_survived")


@pytest.mark.timeout(120)
def test_a_thread_that_finishes_soon_is_waited_for_without_a_warning(tmp_path: Path) -> None:
    done = tmp_path / "done"
    site = _leaky_site(tmp_path, BRIEF.format(done=str(done)))
    result = _run(tmp_path, site, "plugins", "list")
    assert result.returncode == 0, describe(result)
    assert "thread(s)" not in result.stderr, describe(result)
    assert done.read_text() == "done"
    assert GRACE_S > 1.0  # the thread's second fits in the grace given to it
    report.record("runs_survived")
