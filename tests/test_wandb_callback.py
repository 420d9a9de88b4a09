"""The ``wandb`` callback: one offline W&B run per codex-ml run, under ``<run_dir>/wandb/``.

One tiny ``codex-ml train callbacks=[wandb]`` run, with ``WANDB_MODE`` unset and
every proxy variable pointing at a local socket that counts connections, is
read back from wandb's own run file (``run-<id>.wandb``: W&B's record log of
protobuf ``Record`` messages, read here with wandb's protobuf classes): the
config, every number of ``metrics.jsonl`` at its step, and the summary.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import QUICK, SRC_DIR, TINY, Command, Run, assert_user_error, cli_env

from codex_ml.callbacks.scalars import flatten, scalars

#: W&B's run file: a 7-byte header, then 32 KiB blocks of records, each with a 7-byte header
#: (checksum, length, type); a record too long for its block is split FIRST, MIDDLE..., LAST.
FILE_HEADER, BLOCK, RECORD_HEADER = 7, 32 * 1024, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> Iterator[Any]:
    """Every ``wandb_internal_pb2.Record`` of an offline run file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    position, pending = FILE_HEADER, b""
    while position + RECORD_HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < RECORD_HEADER:  # the block's tail is padding
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + RECORD_HEADER])
        if kind == 0:  # zero padding up to the next block
            position += left_in_block
            continue
        start = position + RECORD_HEADER
        pending += data[start : start + length]
        position = start + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def item_key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


class OfflineRun:
    """What an offline run file holds: run record, history by step, summary, exit."""

    def __init__(self, path: Path) -> None:
        self.history: dict[int, dict[str, Any]] = {}
        self.summary: dict[str, Any] = {}
        self.offline = False
        self.exit_code: int | None = None
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.run = record.run
            elif kind == "history":
                row = {item_key(i): json.loads(i.value_json) for i in record.history.item}
                self.history[row.pop("_step")] = row
            elif kind == "summary":
                for item in record.summary.update:
                    self.summary[item_key(item)] = json.loads(item.value_json)
            elif kind == "telemetry":
                self.offline = self.offline or record.telemetry.feature.offline
            elif kind == "exit":
                self.exit_code = record.exit.exit_code

    @property
    def config(self) -> dict[str, Any]:
        updates = self.run.config.update
        return {item_key(i): json.loads(i.value_json) for i in updates if i.key != "_wandb"}


@pytest.fixture(scope="module")
def proxy_trap() -> Iterator[tuple[socket.socket, dict[str, str | None]]]:
    """A listening socket every proxy variable points at: any HTTP(S) request would connect."""
    trap = socket.create_server(("127.0.0.1", 0))
    trap.setblocking(False)
    url = f"http://127.0.0.1:{trap.getsockname()[1]}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    env: dict[str, str | None] = {n: url for n in (*names, *(n.lower() for n in names))}
    env.update(NO_PROXY=None, no_proxy=None)
    yield trap, env
    trap.close()


def connections(trap: socket.socket) -> int:
    count = 0
    while True:
        try:
            trap.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


def wandb_env(home: Path, **changes: str | None) -> dict[str, str | None]:
    """No W&B setting or key from the caller's environment; wandb's own files under ``home``."""
    env: dict[str, str | None] = {
        name: None
        for name in (
            "WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_DIR",
            "WANDB_SILENT", "WANDB_CONSOLE", "WANDB_ERROR_REPORTING", "WANDB_BASE_URL",
            "WANDB_IDENTITY_TOKEN_FILE", "WANDB_CREDENTIALS_FILE",
        )
    }  # fmt: skip
    env.update(
        WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_DATA_DIR=str(home / "data"),
        NETRC=str(home / "netrc"),  # none there: no key
    )
    return {**env, **changes}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, proxy_trap) -> tuple[Run, OfflineRun]:
    """A 6-step run with an evaluation every 3 steps, tracked by wandb with WANDB_MODE unset."""
    trap, proxies = proxy_trap
    work = tmp_path_factory.mktemp("wandb")
    command = Command(
        [
            "train",
            f"hydra.run.dir={work / 'run'}",
            *TINY,
            "training.max_steps=6",
            "training.log_every=2",
            "training.eval_every=3",
            "training.checkpoint_every=0",
            "run.sample_prompts=[]",
            "callbacks=[wandb]",
            "callbacks.wandb.tags=[tiny,test]",
            "callbacks.wandb.project=codex-ml-tests",
        ],
        work,
        env={**wandb_env(work / "home"), **proxies},
    )
    result = command.run()
    assert result.returncode == 0, result.stderr
    assert connections(trap) == 0, "something reached for the network"
    run = Run(work / "run", result)
    assert run.summary["faults"] == []
    (run_file,) = (run.dir / "wandb").glob("offline-run-*/run-*.wandb")
    return run, OfflineRun(run_file)


def test_the_run_is_offline_and_its_files_are_under_the_run_directory(tracked) -> None:
    run, recorded = tracked
    assert recorded.offline and recorded.exit_code == 0
    assert not (run.dir.parent / "wandb").exists()  # not wandb's default, the working directory
    (folder,) = (run.dir / "wandb").glob("offline-run-*")
    assert (folder / "files").is_dir()
    core_log = (folder / "logs" / "debug-core.log").read_text()
    assert '"disable-analytics":true' in core_log  # no crash reports to W&B either
    assert recorded.run.project == "codex-ml-tests"
    assert recorded.run.display_name == run.dir.name
    assert list(recorded.run.tags) == ["tiny", "test"]


def test_every_number_of_metrics_jsonl_is_logged_at_its_step(tracked) -> None:
    run, recorded = tracked
    expected: dict[tuple[int, str], float] = {}
    for row in run.metrics:  # W&B keeps one value per name and step: the later record's
        expected.update({(row["step"], key): value for key, value in scalars(row).items()})
    seen = {
        (step, key): value
        for step, row in recorded.history.items()
        for key, value in row.items()
        if not key.startswith("_")
    }
    assert seen == expected
    assert {row["step"] for row in run.metrics} == set(recorded.history)
    assert any(row["event"] == "eval" for row in run.metrics)


def test_the_config_is_the_flattened_resolved_config(tracked) -> None:
    from omegaconf import OmegaConf

    run, recorded = tracked
    config = OmegaConf.to_container(OmegaConf.load(run.dir / "config.yaml"))
    assert recorded.config == flatten(config)
    assert recorded.config["training.max_steps"] == 6
    assert recorded.config["callbacks.wandb.tags"] == ["tiny", "test"]


def test_the_summary_holds_every_number_of_summary_json(tracked) -> None:
    run, recorded = tracked
    numbers = scalars(flatten(run.summary))
    assert {"steps", "final_metrics.eval_loss", "train_seconds"} <= numbers.keys()
    for key, value in numbers.items():
        assert recorded.summary[key] == value, key


def test_the_callback_keeps_the_callback_contract(monkeypatch, tmp_path: Path) -> None:
    import wandb

    from codex_ml.callbacks.wandb_runs import ENV_DEFAULTS
    from codex_ml.testing import check_component

    for name, value in {**ENV_DEFAULTS, "WANDB_MODE": "offline"}.items():
        monkeypatch.setenv(name, value)  # restored afterwards: this process is shared
    for name, value in wandb_env(tmp_path).items():
        if value is not None:
            monkeypatch.setenv(name, value)
    try:
        assert check_component("callback", "wandb")
    finally:
        wandb.teardown()


def test_online_without_a_key_is_refused_before_training_and_never_prompts(
    tmp_path: Path, proxy_trap
) -> None:
    trap, proxies = proxy_trap
    result = Command(
        ["train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "callbacks=[wandb]"],
        tmp_path,
        env={**wandb_env(tmp_path / "home", WANDB_MODE="online"), **proxies},
    ).run(timeout=120)
    assert_user_error(result, "train", "WANDB_MODE=online", "WANDB_API_KEY", "callbacks.wandb")
    assert connections(trap) == 0
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_missing_wandb_names_the_wandb_extra(tmp_path: Path) -> None:
    blocker = tmp_path / "block" / "wandb"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError('no', name='wandb')\n")
    result = Command(
        ["train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, "callbacks=[wandb]"],
        tmp_path,
        env={"PYTHONPATH": f"{SRC_DIR}:{tmp_path / 'block'}"},
    ).run()
    assert_user_error(result, "train", 'pip install "codex-ml[wandb]"')


@pytest.mark.parametrize("key", ["tensorboard", "mlflow", "wandb"])
def test_each_tracker_names_its_own_extra_without_importing_it(monkeypatch, key: str) -> None:
    from codex_ml.extras import missing_for
    from codex_ml.registry import callback_registry

    monkeypatch.setitem(sys.modules, key, None)  # as if not installed
    assert missing_for(callback_registry.describe(key).target) == (key, key)


def test_plugins_list_marks_wandb_as_needing_its_extra(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys\nsys.modules['wandb'] = None\nfrom codex_ml.cli import main\n"
        "sys.exit(main(['plugins', 'list', 'callbacks']))\n"
    )
    listing = subprocess.run(
        [sys.executable, "-c", code], env=cli_env(), capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    (row,) = [line for line in listing.stdout.splitlines() if line.startswith("wandb ")]
    assert "builtin (needs the wandb extra)" in row
    tensorboard = next(line for line in listing.stdout.splitlines() if line.startswith("tensor"))
    assert "needs" not in tensorboard


def test_name_is_the_run_name_for_python_callers() -> None:
    from codex_ml.registry import get_callback

    assert get_callback("wandb", name="my-run", project="p", tags=["a"]).run_name == "my-run"
