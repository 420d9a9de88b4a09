"""The ``mlflow`` callback: no network unless pointed at a server, and a bad server is cheap.

MLflow's telemetry is off before ``import mlflow`` (unless the user chose
otherwise). A tracking server that answers 500, refuses connections or accepts
and never answers costs a bounded wait (a few tries of a few seconds), after
which the run switches the callback off with one warning and trains on.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_helpers import QUICK, Command, cli_env, describe

from . import report

#: What a tracking server may cost a run in all, per the promise in mlflow_runs.py.
BUDGET_S = 30


class _Failing(BaseHTTPRequestHandler):
    """Every request: 500, empty body."""

    requests = 0

    def _fail(self) -> None:
        type(self).requests += 1
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _fail

    def log_message(self, *args: object) -> None:
        pass


class _Server:
    """A local tracking "server" of one kind; ``attempts`` counts what it was asked."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        if kind == "answers 500":
            _Failing.requests = 0
            self.http = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
            self.port = self.http.server_address[1]
            threading.Thread(target=self.http.serve_forever, daemon=True).start()
        elif kind == "never answers":
            self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
            self.sock.settimeout(0.2)
            self.port = self.sock.getsockname()[1]
            threading.Thread(target=self._hold, daemon=True).start()
        else:  # refuses: a port that was free a moment ago, with nobody listening
            with socket.create_server(("127.0.0.1", 0)) as probe:
                self.port = probe.getsockname()[1]

    def _hold(self) -> None:
        while not self._stop.is_set():
            try:
                self.accepted.append(self.sock.accept()[0])
            except TimeoutError:
                continue

    @property
    def attempts(self) -> int:
        return _Failing.requests if self.kind == "answers 500" else len(self.accepted)

    def close(self) -> None:
        self._stop.set()
        if self.kind == "answers 500":
            self.http.shutdown()
            self.http.server_close()
        elif self.kind == "never answers":
            for connection in self.accepted:
                connection.close()
            self.sock.close()


@pytest.fixture(params=["answers 500", "refuses", "never answers"])
def server(request: pytest.FixtureRequest) -> Iterator[_Server]:
    serving = _Server(request.param)
    try:
        yield serving
    finally:
        serving.close()


@pytest.mark.timeout(60)
def test_a_failing_tracking_server_costs_a_bounded_wait_then_one_warning(
    server: _Server, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    command = Command(
        [
            "train",
            f"hydra.run.dir={run_dir}",
            *QUICK,
            "callbacks=[mlflow]",
            f"callbacks.mlflow.tracking_uri=http://127.0.0.1:{server.port}",
        ],
        tmp_path,
        {name: None for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES")},
    )
    started = time.monotonic()
    result = command.run(timeout=55)
    elapsed = time.monotonic() - started
    report.record("faults_injected")
    assert result.returncode == 0, describe(result)
    warnings = [line for line in result.stderr.splitlines() if "mlflow" in line.lower()]
    assert len(warnings) == 1, describe(result)
    assert "callback 'mlflow'" in warnings[0] and "switched off" in warnings[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and len(summary["faults"]) == 1
    assert elapsed < BUDGET_S + 15, elapsed  # interpreter start and two steps included
    if server.kind != "refuses":
        assert 1 <= server.attempts <= 3, server.attempts
    report.record("runs_survived")


#: Run in a fresh interpreter: what the telemetry variables were when ``mlflow`` was imported.
_PROBE = """
import importlib.abc, json, os, sys

seen = {}

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" and not seen:
            names = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
            seen.update({k: os.environ.get(k) for k in names})
        return None

sys.meta_path.insert(0, Watch())
from codex_ml.callbacks.mlflow_runs import MLflowCallback
MLflowCallback()
print(json.dumps(seen))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({}, {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": None}),
        ({"MLFLOW_DISABLE_TELEMETRY": "false"}, {"MLFLOW_DISABLE_TELEMETRY": "false"}),
        ({"DO_NOT_TRACK": "false"}, {"MLFLOW_DISABLE_TELEMETRY": None, "DO_NOT_TRACK": "false"}),
    ],
)
def test_telemetry_is_off_before_mlflow_is_imported_unless_the_user_chose(
    user: dict[str, str], expected: dict[str, str | None]
) -> None:
    env = cli_env(**{"MLFLOW_DISABLE_TELEMETRY": None, "DO_NOT_TRACK": None, **user})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert {name: seen[name] for name in expected} == expected
