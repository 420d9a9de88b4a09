"""Run directories: nothing is written through a link planted in one.

Every file a run writes (``config.yaml``, ``metrics.jsonl``, ``summary.json``,
``samples.jsonl``, ``loss_curve.png``, ``train.log``, ``checkpoints/`` and its
``latest`` pointer, temporary files and folders) is tried with a symbolic link
in its place pointing at a "victim" file outside the run directory, the way a
shared or copied run directory could carry one. The victim must never change
(nor be created, for a dangling link), and the refusal must name the link.

Loading refuses a ``meta.json`` that lists a file outside its own folder
(``../../../../etc/shadow``) and a checkpoint file that is a link, before
anything is read through it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from codex_ml import atomicfile, fsio
from codex_ml.run.outputs import RUN_FILES, RunWriter
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import CheckpointError, find_latest_checkpoint, load_checkpoint
from codex_ml.training.checkpoint import META_FILE, MODEL_FILE, STATE_FILE

from . import report
from .test_checkpoint_faults import RECORDS, tiny_model, trainer, weights

VICTIM_TEXT = "export PATH=$HOME/bin:$PATH  # the user's own file\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside every run directory that a planted link points at."""
    home = tmp_path / "home"
    home.mkdir()
    path = home / ".bashrc"
    path.write_text(VICTIM_TEXT)
    return path


def plant(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    report.record("faults_injected")
    return link


def untouched(victim: Path) -> bool:
    return victim.read_text() == VICTIM_TEXT


# -- the two reported attacks ---------------------------------------------------------------------


def test_a_resume_never_writes_the_latest_pointer_through_a_planted_link(
    tmp_path: Path, victim: Path
) -> None:
    run_dir = tmp_path / "run"
    trainer(run_dir, max_steps=3, checkpoint_every=0)(tiny_model(), ByteTokenizer(), RECORDS)
    # The temporary name the pointer used to be written through, and a few like it.
    for name in (".latest.tmp", ".tmp-step-6"):
        plant(run_dir / "checkpoints" / name, victim)
    result = trainer(run_dir, max_steps=6, checkpoint_every=0, resume_from=str(run_dir))(
        tiny_model(seed=3), ByteTokenizer(), RECORDS
    )
    assert result.steps == 6
    assert untouched(victim), victim.read_text()
    assert find_latest_checkpoint(run_dir) == run_dir / "checkpoints" / "step-6"
    report.record("runs_survived")


def test_metrics_are_never_appended_through_a_planted_link(tmp_path: Path, victim: Path) -> None:
    run_dir = tmp_path / "run"
    link = plant(run_dir / "metrics.jsonl", victim)
    with pytest.raises(fsio.UnsafePathError) as caught:
        writer = RunWriter(run_dir)
        writer({"event": "log", "step": 1, "loss": 2.0})  # what the trainer's callback does
        writer.close()
    assert str(link) in str(caught.value) and "symbolic link" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert untouched(victim)
    report.record("bad_inputs_tried")


# -- every file of a run directory ----------------------------------------------------------------


@pytest.mark.parametrize("name", RUN_FILES)
@pytest.mark.parametrize("dangling", [False, True], ids=["to a file", "dangling"])
def test_a_run_directory_holding_a_link_is_refused_before_the_run_starts(
    name: str, dangling: bool, tmp_path: Path, victim: Path
) -> None:
    run_dir = tmp_path / "run"
    target = victim.with_name("not-there-yet") if dangling else victim
    link = plant(run_dir / name, target)
    with pytest.raises(fsio.UnsafePathError, match="symbolic link") as caught:
        RunWriter(run_dir)
    assert caught.value.path == link and str(link) in str(caught.value)
    assert isinstance(caught.value, PermissionError)  # the CLI prints it as a user error
    assert untouched(victim) and not target.with_name("not-there-yet").exists()
    report.record("bad_inputs_tried")


def _write(writer: RunWriter, name: str) -> None:
    """What the run does to write ``name`` once its writer is open."""
    if name == "config.yaml":
        writer.write_config({"training": {"max_steps": 1}})
    elif name == "summary.json":
        writer.write_summary({"status": "completed"})
    elif name == "samples.jsonl":
        writer.write_samples([{"prompt": "a", "completion": "b"}])
    elif name == "loss_curve.png":
        writer.plot(
            [{"event": "log", "step": 1, "loss": 2.0}, {"event": "log", "step": 2, "loss": 1.0}]
        )
    else:
        raise AssertionError(name)


@pytest.mark.parametrize("name", ["config.yaml", "summary.json", "samples.jsonl", "loss_curve.png"])
def test_a_link_planted_while_the_run_is_going_is_refused_too(
    name: str, tmp_path: Path, victim: Path
) -> None:
    writer = RunWriter(tmp_path / "run")
    link = plant(writer.run_dir / name, victim)
    # The temporary name each of these used to be written through, too.
    plant(writer.run_dir / f".{name}.tmp", victim)
    with pytest.raises(fsio.UnsafePathError) as caught:
        _write(writer, name)
    writer.close()
    assert caught.value.path == link
    assert untouched(victim)
    assert [p.name for p in writer.run_dir.iterdir() if p.name.endswith(".tmp")] == [
        f".{name}.tmp"  # no temporary file of ours left behind
    ]
    report.record("bad_inputs_tried")


def test_the_old_temporary_names_are_harmless_now(tmp_path: Path, victim: Path) -> None:
    writer = RunWriter(tmp_path / "run")
    for name in ("config.yaml", "summary.json"):
        plant(writer.run_dir / f".{name}.tmp", victim)
    writer.write_config({"a": 1})
    writer.write_summary({"status": "completed"})
    writer.close()
    assert untouched(victim)
    assert json.loads((writer.run_dir / "summary.json").read_text()) == {"status": "completed"}
    report.record("runs_survived")


def test_a_hard_link_to_another_file_is_refused_for_appending(tmp_path: Path, victim: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.link(victim, run_dir / "metrics.jsonl")
    report.record("faults_injected")
    with pytest.raises(fsio.UnsafePathError, match="other hard link"):
        RunWriter(run_dir)
    assert untouched(victim)
    report.record("bad_inputs_tried")


def test_a_fifo_in_place_of_the_metrics_is_refused_without_blocking(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.mkfifo(run_dir / "metrics.jsonl")
    report.record("faults_injected")
    with pytest.raises(fsio.UnsafePathError, match="not a regular file"):
        RunWriter(run_dir)
    report.record("bad_inputs_tried")


def test_temporary_files_are_created_exclusively(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Someone guessed the next random name and planted a link there: it is skipped.
    names = iter(["guessed", "fresh"])
    monkeypatch.setattr(atomicfile, "random_token", lambda: next(names))
    plant(tmp_path / ".summary.json.guessed.tmp", victim)
    fsio.write_atomic(tmp_path / "summary.json", "{}\n")
    assert untouched(victim)
    assert (tmp_path / "summary.json").read_text() == "{}\n"
    report.record("bad_inputs_tried")


def test_the_log_handler_refuses_a_linked_train_log(tmp_path: Path, victim: Path) -> None:
    link = plant(tmp_path / "train.log", victim)
    with pytest.raises(fsio.UnsafePathError):
        fsio.SafeFileHandler(str(link))
    assert untouched(victim)
    handler = fsio.SafeFileHandler(str(tmp_path / "other.log"))  # a plain file works
    handler.close()
    report.record("bad_inputs_tried")


# -- checkpoints ----------------------------------------------------------------------------------


@pytest.fixture
def short_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    trainer(run_dir, max_steps=3, checkpoint_every=0)(tiny_model(), ByteTokenizer(), RECORDS)
    return run_dir


def test_a_linked_checkpoints_folder_or_pointer_is_refused_before_anything_is_written(
    short_run: Path, tmp_path: Path, victim: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (short_run / "checkpoints").rename(elsewhere / "checkpoints")
    link = plant(short_run / "checkpoints", elsewhere / "checkpoints")
    before = sorted(p.name for p in (elsewhere / "checkpoints").iterdir())
    run = trainer(short_run, max_steps=4, checkpoint_every=0)
    with pytest.raises(fsio.UnsafePathError) as caught:
        run(tiny_model(), ByteTokenizer(), RECORDS)
    assert caught.value.path == link
    assert sorted(p.name for p in (elsewhere / "checkpoints").iterdir()) == before

    link.unlink()
    (elsewhere / "checkpoints").rename(short_run / "checkpoints")
    pointer = short_run / "checkpoints" / "latest"
    pointer.unlink()
    plant(pointer, victim)
    with pytest.raises(fsio.UnsafePathError) as caught:
        run(tiny_model(), ByteTokenizer(), RECORDS)
    assert caught.value.path == pointer
    assert untouched(victim)
    assert not (short_run / "checkpoints" / "step-4").exists()  # refused before writing
    report.record("bad_inputs_tried", 2)


def _forge(step_dir: Path, name: str, target: Path) -> None:
    """Make meta.json list ``name`` with ``target``'s true size and hash (a careful forger)."""
    meta = json.loads((step_dir / META_FILE).read_text())
    data = target.read_bytes()
    meta["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (step_dir / META_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "name", ["../../../../etc/shadow", "../../../home/.bashrc", "/etc/passwd", "sub/model"]
)
def test_a_meta_json_naming_a_file_outside_its_folder_is_refused(
    name: str, short_run: Path, victim: Path
) -> None:
    step_dir = short_run / "checkpoints" / "step-3"
    _forge(step_dir, name, victim)  # "../../../home/.bashrc" is the victim: it would verify
    report.record("faults_injected")
    model = tiny_model(seed=1)
    before = weights(model)
    with pytest.raises(CheckpointError, match="not a file in the checkpoint's own folder") as err:
        load_checkpoint(short_run, model)
    assert err.value.path == step_dir / META_FILE
    assert repr(name) in str(err.value) and "\n" not in str(err.value)
    assert all(weights(model)[k].equal(v) for k, v in before.items())
    report.record("bad_inputs_tried")


@pytest.mark.parametrize("name", [MODEL_FILE, STATE_FILE, META_FILE])
def test_a_checkpoint_file_that_is_a_link_is_not_read(
    name: str, short_run: Path, tmp_path: Path
) -> None:
    step_dir = short_run / "checkpoints" / "step-3"
    other = tmp_path / "other"
    shutil.copytree(step_dir, other)  # the same bytes: only the link itself is at fault
    (step_dir / name).unlink()
    link = plant(step_dir / name, other / name)
    with pytest.raises(CheckpointError, match="symbolic link") as caught:
        load_checkpoint(short_run, tiny_model(seed=1))
    assert caught.value.path == link
    report.record("bad_inputs_tried")
