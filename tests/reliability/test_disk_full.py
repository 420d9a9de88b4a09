"""A full disk while checkpointing: a clear error naming the folder, and nothing lost.

The real libraries fail as they would on a full disk: a child process (forked
from this one) trains with a checkpoint every 2 steps, and after the first one
lowers its ``RLIMIT_FSIZE`` below the size of the next checkpoint's weights
(safetensors fails) or of its optimizer state (``torch.save`` fails with
``[enforce fail at inline_container.cc:672]``); the write gets ``EFBIG`` where a
full disk gives ``ENOSPC``, through the same code paths. The small files
(``meta.json``, the ``latest`` pointer) are failed in-process with
``OSError(ENOSPC)``. Each time, the error must name the ``checkpoints/``
folder and say the previous checkpoint is intact, which must then load with
exactly the uninterrupted run's weights; and a ``latest`` pointer that lags a
complete checkpoint must not make a resume pick the older one.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import resource
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from codex_ml import fsio
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import (
    CheckpointWriteError,
    find_latest_checkpoint,
    load_checkpoint,
)
from codex_ml.training.checkpoint import MODEL_FILE

from . import report
from .test_checkpoint_faults import RECORDS, same, tiny_model, trainer, weights

STEPS = 6
SETTINGS = {"max_steps": STEPS, "checkpoint_every": 2, "keep_checkpoints": 3, "log_every": 1}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run, with every checkpoint (steps 2, 4, 6) kept."""
    run_dir = tmp_path_factory.mktemp("reference")
    trainer(run_dir, **SETTINGS)(tiny_model(), ByteTokenizer(), RECORDS)
    return run_dir


def reference_weights(reference: Path, step: int) -> dict[str, torch.Tensor]:
    model = tiny_model(seed=99)
    load_checkpoint(reference / "checkpoints" / f"step-{step}", model)
    return weights(model)


def check_previous_is_intact(run_dir: Path, reference: Path, step: int) -> None:
    """The newest checkpoint is ``step`` and holds the uninterrupted run's weights for it."""
    model = tiny_model(seed=99)
    loaded = load_checkpoint(run_dir, model)
    wrong = loaded.step != step or not same(weights(model), reference_weights(reference, step))
    report.record("data_lost", int(wrong))
    assert not wrong, f"resume found step {loaded.step}, expected step {step} as saved"
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers  # the partial write was removed


def finish(run_dir: Path, reference: Path) -> None:
    """Once there is space again, resuming reaches the uninterrupted run's end exactly."""
    model = tiny_model(seed=5)
    result = trainer(run_dir, **SETTINGS, resume_from=str(run_dir))(model, ByteTokenizer(), RECORDS)
    assert result.steps == STEPS
    wrong = not same(weights(model), reference_weights(reference, STEPS))
    report.record("data_lost", int(wrong))
    assert not wrong
    report.record("runs_survived")


# -- the real libraries on a file-size limit (fork) ------------------------------------------------


def _train_until_the_disk_fills(run_dir: str, limit: int, conn: Any) -> None:
    """The child: after the first checkpoint, files may grow to ``limit`` bytes only."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed

    def fill_the_disk(record: dict[str, Any]) -> None:
        if record["event"] == "checkpoint" and record["step"] == 2:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    try:
        trainer(Path(run_dir), **SETTINGS)(
            tiny_model(), ByteTokenizer(), RECORDS, callbacks=[fill_the_disk]
        )
        conn.send(("finished", "", None))
    except Exception as exc:
        previous = getattr(exc, "previous", None)
        conn.send((type(exc).__name__, str(exc), None if previous is None else str(previous)))
    conn.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("fails", "library_error"),
    [(MODEL_FILE, "SafetensorError"), ("state.pt", "inline_container.cc")],
    ids=["safetensors", "torch.save"],
)
def test_a_full_disk_while_checkpointing_names_the_folder_and_keeps_the_previous_one(
    fails: str, library_error: str, tmp_path: Path, reference: Path
) -> None:
    weights_size = (reference / "checkpoints" / "step-2" / MODEL_FILE).stat().st_size
    limit = 1000 if fails == MODEL_FILE else weights_size + 1000
    run_dir = tmp_path / "run"
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_train_until_the_disk_fills, args=(str(run_dir), limit, send)
    )
    child.start()
    send.close()
    kind, message, previous = receive.recv()
    child.join(timeout=60)
    report.record("faults_injected")

    root = run_dir / "checkpoints"
    assert kind == "CheckpointWriteError", message
    assert f"Could not write checkpoint step-4 in {root}: writing {fails} failed" in message
    assert library_error in message  # what the library said, in one line
    assert f"The previous checkpoint, {root / 'step-2'}, is intact" in message
    assert "disk is full" in message and "\n" not in message
    assert previous == str(root / "step-2")
    check_previous_is_intact(run_dir, reference, step=2)
    finish(run_dir, reference)


# -- the small files, in-process -------------------------------------------------------------------


def _enospc_for(monkeypatch: pytest.MonkeyPatch, name: str, *, after_step: int) -> None:
    """Make writing ``name`` fail with ENOSPC once a checkpoint of ``after_step`` exists."""
    real = fsio.write_atomic

    def write_atomic(path: str | Path, data: str | bytes, *, durable: bool = False) -> None:
        root = Path(path).parent if name == "latest" else Path(path).parent.parent
        if Path(path).name == name and (root / f"step-{after_step}").is_dir():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data, durable=durable)

    monkeypatch.setattr(fsio, "write_atomic", write_atomic)


def test_no_space_for_meta_json_keeps_the_previous_checkpoint(
    tmp_path: Path, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    _enospc_for(monkeypatch, "meta.json", after_step=2)
    with pytest.raises(CheckpointWriteError) as caught:
        trainer(run_dir, **SETTINGS)(tiny_model(), ByteTokenizer(), RECORDS)
    report.record("faults_injected")
    root = run_dir / "checkpoints"
    assert str(caught.value).startswith(
        f"Could not write checkpoint step-4 in {root}: writing meta.json failed with "
        "No space left on device"
    )
    assert caught.value.path == root and caught.value.previous == root / "step-2"
    monkeypatch.undo()
    check_previous_is_intact(run_dir, reference, step=2)
    finish(run_dir, reference)


def test_no_space_for_the_pointer_still_resumes_from_the_complete_checkpoint(
    tmp_path: Path, reference: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    _enospc_for(monkeypatch, "latest", after_step=4)
    with pytest.raises(CheckpointWriteError) as caught:
        trainer(run_dir, **SETTINGS)(tiny_model(), ByteTokenizer(), RECORDS)
    report.record("faults_injected")
    root = run_dir / "checkpoints"
    assert f"Checkpoint {root / 'step-4'} is complete, but {root / 'latest'}" in str(caught.value)
    assert "a resume picks the newest complete checkpoint, step-4" in str(caught.value)
    monkeypatch.undo()
    assert (root / "latest").read_text().strip() == "step-2"  # the pointer lags ...
    check_previous_is_intact(run_dir, reference, step=4)  # ... and is not followed
    finish(run_dir, reference)


def test_a_lagging_latest_pointer_is_overtaken_by_a_newer_complete_checkpoint(
    tmp_path: Path, reference: Path
) -> None:
    run_dir = tmp_path / "run"
    trainer(run_dir, **(SETTINGS | {"max_steps": 4}))(tiny_model(), ByteTokenizer(), RECORDS)
    (run_dir / "checkpoints" / "latest").write_text("step-2\n")  # as a full disk leaves it
    report.record("faults_injected")
    assert find_latest_checkpoint(run_dir) == run_dir / "checkpoints" / "step-4"
    check_previous_is_intact(run_dir, reference, step=4)
    finish(run_dir, reference)


def test_an_older_higher_checkpoint_left_by_an_earlier_run_does_not_overtake_latest(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    trainer(run_dir, max_steps=4, checkpoint_every=4)(tiny_model(), ByteTokenizer(), RECORDS)
    old = run_dir / "checkpoints" / "step-4"
    old.rename(run_dir / "checkpoints" / "step-40")  # an earlier, longer run's checkpoint ...
    meta = run_dir / "checkpoints" / "step-40" / "meta.json"
    os.utime(meta, ns=(meta.stat().st_atime_ns, meta.stat().st_mtime_ns - 10**10))  # ... older
    trainer(run_dir, max_steps=2, keep_checkpoints=5)(tiny_model(), ByteTokenizer(), RECORDS)
    assert find_latest_checkpoint(run_dir) == run_dir / "checkpoints" / "step-2"


def test_the_command_line_reports_a_full_disk_as_one_paragraph_not_an_unexpected_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from codex_ml.cli.errors import EXIT_USAGE
    from codex_ml.cli.errors import report as report_error

    _enospc_for(monkeypatch, "meta.json", after_step=2)
    with pytest.raises(CheckpointWriteError) as caught:
        trainer(tmp_path / "run", **SETTINGS)(tiny_model(), ByteTokenizer(), RECORDS)
    assert report_error("train", caught.value) == EXIT_USAGE
    printed = capsys.readouterr().err
    assert printed.startswith("codex-ml train: error: Could not write checkpoint step-4")
    assert "unexpected" not in printed and json.dumps(printed).count("\\n") == 1
    report.record("bad_inputs_tried")
