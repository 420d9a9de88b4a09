"""Token stores and checkpoints, third round: whose folder it is, nothing hangs, nothing is trusted.

- ``data.store=`` only ever replaces a folder codex-ml marked as its own store;
  a user's folder is one paragraph (exit 2) and stays as it was;
- a named pipe, a device or a link where a store or checkpoint file should be
  is damage, refused by name, never something to block on or read without end;
- every file of a store is checked, so a damaged one heals by a rebuild;
- token ids are checked as they are written, and a header's dtype when it is read;
- a source whose fingerprint cannot be trusted (a pipe) is always read again;
- checkpoints with NaN weights are passed over, a forged ``state.pt`` refused;
- a read-only cache and a stopped or killed build leave a message, not debris.

Every test has a hard timeout: a hang fails it instead of the suite.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import (
    QUICK,
    SRC_DIR,
    Command,
    assert_user_error,
    cli_env,
    describe,
    train,
)

from . import report
from .faults import install

LINES = "".join(f"line {i} of a small corpus, said plainly\n" for i in range(200))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(LINES)
    return path


def prepare(
    tmp_path: Path, *args: str, timeout: float = 120, site: Path | None = None
) -> subprocess.CompletedProcess:
    """``codex-ml prepare --json data=offline/lines ARGS`` with the cache in ``tmp_path``.

    ``site``: a folder of installed distributions to put on ``PYTHONPATH``.
    """
    env = {"CODEX_ML_CACHE_DIR": str(tmp_path / "cache")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR), str(site)])
    args = ("prepare", "--json", "data=offline/lines", *args)
    return Command(args, tmp_path, env).run(timeout=timeout)


def prepared(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, describe(result)
    return json.loads(result.stdout)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --- 1. data.store= replaces only a folder codex-ml marked as a store ---------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "content",
    [{"train.bin": b"\1\0" * 8}, {"header.json": b'{"format": 2}'}, {"notes.txt": b"precious\n"}],
    ids=["only train.bin", "only header.json", "another file"],
)
def test_a_folder_codex_ml_did_not_make_is_never_replaced(
    content: dict[str, bytes], tmp_path: Path, corpus: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    for name, data in content.items():
        (mine / name).write_bytes(data)
    result = prepare(tmp_path, f"data.path={corpus}", f"data.store={mine}")
    assert_user_error(result, "prepare", f"data.store={mine}", ".codex-ml-token-store")
    assert snapshot(mine) == content  # nothing deleted, nothing added
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    report.record("bad_inputs_tried")


@pytest.mark.timeout(180)
def test_an_empty_or_missing_folder_is_built_into_and_its_own_store_rebuilt(
    tmp_path: Path, corpus: Path
) -> None:
    empty, missing = tmp_path / "empty", tmp_path / "missing"
    empty.mkdir()
    for folder in (empty, missing):
        facts = prepared(prepare(tmp_path, f"data.path={corpus}", f"data.store={folder}"))
        assert facts["built"] and (folder / ".codex-ml-token-store").is_file()
    with corpus.open("a") as handle:  # other data: the store codex-ml made there is replaced
        handle.write("one more line\n")
    result = prepare(tmp_path, f"data.path={corpus}", f"data.store={empty}")
    assert prepared(result)["built"]
    assert f"token store {empty} cannot be used" in result.stderr


# --- 3. a pipe, a device or a link is damage, refused by name: nothing hangs --------------------


def store_of(facts: dict) -> Path:
    return Path(facts["path"])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("swap", ["a named pipe", "a link to /dev/zero"])
def test_a_store_file_that_is_not_a_regular_file_is_damage_and_rebuilt(
    swap: str, tmp_path: Path, corpus: Path
) -> None:
    store = store_of(prepared(prepare(tmp_path, f"data.path={corpus}")))
    for name in ("header.json", "eval_texts.jsonl", ".codex-ml-token-store"):
        file = store / name
        file.unlink()
        if swap == "a named pipe":
            os.mkfifo(file)
        else:
            file.symlink_to("/dev/zero")
        result = prepare(tmp_path, f"data.path={corpus}", timeout=60)
        assert prepared(result)["built"], name
        assert f"token store {store} cannot be used" in result.stderr
        assert file.is_file() and not file.is_symlink()
        report.record("faults_injected")
        report.record("runs_survived")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-step run through the CLI with checkpoints step-1 and step-2."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    train(run_dir, *QUICK, "training.checkpoint_every=1", "training.keep_checkpoints=3")
    return run_dir


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run to damage."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


def resume(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ("train", f"hydra.run.dir={run_dir}", f"training.resume={run_dir}", *QUICK)
    return Command((*args, "training.max_steps=3", *extra), run_dir.parent).run(timeout=120)


def generate(target: Path) -> subprocess.CompletedProcess:
    args = ("generate", str(target), "--prompt", "Once", "--max-new-tokens", "4")
    return Command(args, target.parent).run(timeout=120)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["meta.json", "state.pt", "model.safetensors"])
def test_a_checkpoint_file_that_is_a_named_pipe_is_refused_by_name(
    name: str, run_copy: Path
) -> None:
    file = run_copy / "checkpoints" / "step-2" / name
    file.unlink()
    os.mkfifo(file)
    report.record("faults_injected")
    assert_user_error(resume(run_copy), "train", str(file), "named pipe")
    assert_user_error(generate(run_copy), "generate", str(file), "named pipe")
    report.record("bad_inputs_tried", 2)


# --- 4. every file of a store is checked, so every damage heals ---------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", ["eval_texts.jsonl", "eval.bin", "train.bin"])
def test_a_truncated_store_file_is_found_and_the_store_rebuilt(
    name: str, tmp_path: Path, corpus: Path
) -> None:
    first = prepared(prepare(tmp_path, f"data.path={corpus}"))
    file = store_of(first) / name
    intact = file.read_bytes()
    file.write_bytes(intact[: len(intact) // 2 + 1])  # cut mid-record, mid-id
    report.record("faults_injected")
    result = prepare(tmp_path, f"data.path={corpus}")
    again = prepared(result)
    assert again["built"] and again["tokens"] == first["tokens"]
    assert f"{name} has" in result.stderr  # the note names the file at fault
    assert file.read_bytes() == intact
    report.record("runs_survived")


# --- 5. token ids are checked as they are written, and a header's dtype as it is read -----------

ODD_IDS = """
class OddIds:
    vocab_size = 100
    eos_id = 0

    def __init__(self, gives="float"):
        self.gives = gives

    def encode(self, text):
        return {"float": [5, 3.7], "too big": [7, 100], "negative": [-1], "str": ["a"]}[self.gives]

    def decode(self, ids):
        return ""


def build(gives="float"):
    return OddIds(gives)
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("gives", "says"),
    [
        ("float", "the id 3.7 (float), not an int"),
        ("too big", "the id 100, outside its vocabulary (0..99"),
        ("negative", "the id -1, outside its vocabulary"),
        ("str", "the id 'a' (str), not an int"),
    ],
)
def test_a_tokenizer_giving_ids_that_are_not_its_own_is_named(
    gives: str, says: str, tmp_path: Path, corpus: Path
) -> None:
    site = tmp_path / "site"
    install(
        site,
        "rf-odd-ids",
        "1.0",
        entry_points={"codex_ml.tokenizers": {"rf_odd_ids": "rf_odd_ids:build"}},
        modules={"rf_odd_ids": ODD_IDS},
        log=tmp_path / "imports.log",
    )
    report.record("faults_injected")
    args = (f"data.path={corpus}", "tokenizer.name=rf_odd_ids", f"+tokenizer.gives={gives}")
    result = prepare(tmp_path, *args, site=site)
    assert_user_error(result, "prepare", "the tokenizer (rf_odd_ids.OddIds)", says)
    assert not list((tmp_path / "cache").rglob("*.bin"))  # nothing half-written kept
    report.record("bad_inputs_tried")


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("lie", "says"),
    [
        ({"dtype": "float32"}, "dtype 'float32'"),
        ({"dtype": "int8"}, "dtype 'int8'"),
        ({"dtype": "uint32"}, "a size its counts do not"),
        ({"vocab_size": 50}, "outside the vocabulary of 50"),
    ],
    ids=str,
)
def test_a_header_that_lies_about_its_ids_is_damage_and_rebuilt(
    lie: dict, says: str, tmp_path: Path, corpus: Path
) -> None:
    first = prepared(prepare(tmp_path, f"data.path={corpus}"))
    header_file = store_of(first) / "header.json"
    header_file.write_text(json.dumps({**json.loads(header_file.read_text()), **lie}))
    report.record("faults_injected")
    result = prepare(tmp_path, f"data.path={corpus}")
    again = prepared(result)
    assert again["built"] and again["dtype"] == "uint16" and again["tokens"] == first["tokens"]
    assert "cannot be used" in result.stderr and says in result.stderr
    report.record("runs_survived")


# --- 6. a source without a fingerprint (a pipe) is read afresh every time -----------------------


def prepare_in_bash(tmp_path: Path, text: str) -> dict:
    """``codex-ml prepare`` with ``data.path=<(printf TEXT)``, as a user types it."""
    env = cli_env(CODEX_ML_CACHE_DIR=str(tmp_path / "cache"))
    cli = f"{shlex.quote(sys.executable)} -m codex_ml.cli prepare --json data=offline/lines"
    command = f"{cli} data.path=<(printf %s {shlex.quote(text)})"
    result = subprocess.run(
        ["bash", "-c", command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    facts = prepared(result)
    assert "built afresh and is removed when this process ends" in result.stderr
    return facts


@pytest.mark.timeout(180)
def test_process_substitution_works_and_is_read_afresh_every_time(tmp_path: Path) -> None:
    first = prepare_in_bash(tmp_path, LINES)
    again = prepare_in_bash(tmp_path, LINES + "a new line at the end\n")
    assert first["built"] and again["built"]  # never the first one's store
    assert sum(again["tokens"].values()) > sum(first["tokens"].values())
    assert os.listdir(tmp_path / "cache" / "tokens") == []  # nothing left in the cache
    report.record("runs_survived", 2)


@pytest.mark.timeout(300)
def test_a_named_pipe_refilled_between_runs_is_trained_on_afresh(tmp_path: Path) -> None:
    pipe = tmp_path / "corpus.fifo"
    os.mkfifo(pipe)
    fingerprints: list[str] = []
    for text in (LINES, LINES.upper()):
        writer = subprocess.Popen(["sh", "-c", f"cat > {shlex.quote(str(pipe))}"], stdin=-1)
        writer.stdin.write(text.encode())  # type: ignore[union-attr]
        writer.stdin.close()  # type: ignore[union-attr]
        run = train(
            tmp_path / f"run-{len(fingerprints)}",
            *QUICK,
            "data=offline/lines",
            f"data.path={pipe}",
            env={"CODEX_ML_CACHE_DIR": str(tmp_path / "cache")},
        )
        writer.wait(timeout=30)
        assert run.summary["data"]["store"]["built"]
        fingerprints.append(run.summary["data"]["store"]["fingerprint"])
    assert fingerprints[0] != fingerprints[1]
    assert os.listdir(tmp_path / "cache" / "tokens") == []
    report.record("runs_survived", 2)


# --- 7. a checkpoint with NaN weights is passed over; a forged state.pt is refused --------------


def rewrite(step_dir: Path, *, poison: bool = False, state: dict | None = None, **meta: object):
    """Rewrite a checkpoint's files as codex-ml would have (hashes in meta.json updated)."""
    import hashlib

    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights_file, state_file = step_dir / "model.safetensors", step_dir / "state.pt"
    if poison:
        with safe_open(str(weights_file), framework="pt") as handle:
            tied = handle.metadata()
        weights = load_file(str(weights_file))
        first = next(name for name, t in weights.items() if t.is_floating_point())
        weights[first] = torch.full_like(weights[first], float("nan"))
        save_file(weights, str(weights_file), metadata=tied)
    if state is not None:
        torch.save(state, state_file)
    recorded = json.loads((step_dir / "meta.json").read_text())
    for file in (weights_file, state_file):
        data = file.read_bytes()
        recorded["files"][file.name] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    (step_dir / "meta.json").write_text(json.dumps({**recorded, **meta}))
    report.record("faults_injected")


@pytest.mark.timeout(300)
def test_a_checkpoint_recorded_as_nan_is_passed_over_by_resume_and_generate(
    run_copy: Path,
) -> None:
    step_2 = run_copy / "checkpoints" / "step-2"
    assert json.loads((step_2 / "meta.json").read_text())["finite_weights"] is True
    rewrite(step_2, poison=True, finite_weights=False)  # as a save after a NaN step records it
    sampled = generate(run_copy)
    assert sampled.returncode == 0, describe(sampled)
    resumed = resume(run_copy)
    assert resumed.returncode == 0, describe(resumed)
    summary = json.loads((run_copy / "summary.json").read_text())
    assert summary["resumed_from"] == str(run_copy) and summary["steps"] == 3
    report.record("runs_survived", 2)


@pytest.mark.timeout(300)
def test_nan_weights_named_or_unrecorded_are_one_paragraph(run_copy: Path) -> None:
    step_2 = run_copy / "checkpoints" / "step-2"
    rewrite(step_2, poison=True)  # meta.json says nothing of it: the load finds it
    weights = str(step_2 / "model.safetensors")
    assert_user_error(generate(run_copy), "generate", weights, "NaN or infinite", "step-1")
    assert_user_error(generate(step_2), "generate", weights, "NaN or infinite")
    assert_user_error(resume(run_copy), "train", weights, "NaN or infinite")
    report.record("bad_inputs_tried", 3)


def _state(step_dir: Path) -> dict:
    import torch

    return torch.load(step_dir / "state.pt", weights_only=True)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("forge", "key", "says"),
    [
        (lambda s: s.pop("rng"), "rng", "lacks a value a resume needs"),
        (lambda s: s.update(step=-100), "step", "gives step -100"),
        (lambda s: s.update(tokens_seen=-5), "tokens_seen", "gives -5 tokens seen"),
        (lambda s: s.update(optimizer=[1, 2]), "optimizer", "holds a list"),
        (lambda s: s["rng"].update(python=(3, (1, 2), None)), "rng", "generators refuse"),
    ],
    ids=["no rng", "negative step", "negative tokens", "optimizer a list", "bad rng"],
)
def test_a_forged_state_file_names_the_file_and_the_key(
    forge: object, key: str, says: str, run_copy: Path
) -> None:
    step_2 = run_copy / "checkpoints" / "step-2"
    state = _state(step_2)
    forge(state)  # type: ignore[operator]
    rewrite(step_2, state=state)
    result = resume(run_copy)
    assert_user_error(result, "train", str(step_2 / "state.pt"), f"(key '{key}')", says)
    report.record("bad_inputs_tried")


@pytest.mark.timeout(120)
def test_a_save_records_nan_weights_and_the_newest_finite_checkpoint_is_offered(
    tmp_path: Path,
) -> None:
    import torch

    from codex_ml.models.decoder_only import build_decoder_only
    from codex_ml.training import CheckpointError
    from codex_ml.training.checkpoint import (
        find_latest_checkpoint,
        resolve_checkpoint,
        save_checkpoint,
    )

    model = build_decoder_only(n_layer=1, n_head=2, n_embd=16, block_size=8, seed=0)
    state = {"step": 0}
    for step in (1, 2):
        save_checkpoint(tmp_path, step=step, model=model, state=state, config={}, keep=5)
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    nan = save_checkpoint(tmp_path, step=3, model=model, state=state, config={}, keep=5)
    assert json.loads((nan / "meta.json").read_text())["finite_weights"] is False
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step-3"
    assert find_latest_checkpoint(tmp_path) == tmp_path / "checkpoints" / "step-2"
    only_nan = tmp_path / "only-nan"
    save_checkpoint(only_nan, step=1, model=model, state=state, config={}, keep=5)
    with pytest.raises(CheckpointError, match="step-1 hold NaN or infinite weights"):
        resolve_checkpoint(only_nan)
    report.record("faults_injected", 2)


# --- 8. a cache that cannot be written, and a build stopped or killed ---------------------------


@pytest.mark.timeout(120)
def test_a_cache_that_cannot_be_written_names_the_folder_and_the_variable(
    tmp_path: Path, corpus: Path
) -> None:
    cache = Path("/sys/codex-ml-test-cache")  # mkdir there fails for root too
    result = Command(
        ("prepare", "data=offline/lines", f"data.path={corpus}"),
        tmp_path,
        {"CODEX_ML_CACHE_DIR": str(cache)},
    ).run(timeout=120)
    message = assert_user_error(result, "prepare", f"{cache} is not writable", "CODEX_ML_CACHE_DIR")
    assert "Errno" not in message
    report.record("bad_inputs_tried")


def start_building(tmp_path: Path, size: int = 60_000_000) -> tuple[subprocess.Popen, Path]:
    """``codex-ml prepare`` on a corpus big enough to take seconds; returns once it is writing."""
    big = tmp_path / "big.txt"
    with big.open("w") as handle:
        handle.write("the quick brown fox jumps over the lazy dog, and again\n" * (size // 55))
    tokens = tmp_path / "cache" / "tokens"
    args = ("prepare", "data=offline/lines", f"data.path={big}")
    process = Command(args, tmp_path, {"CODEX_ML_CACHE_DIR": str(tokens.parent)}).start()
    while not (tokens.is_dir() and any(".building-" in p.name for p in tokens.iterdir())):
        assert process.poll() is None, process.communicate()
        time.sleep(0.005)
    return process, tokens


@pytest.mark.timeout(180)
def test_sigterm_during_a_build_removes_its_temporary_folder_and_says_so(tmp_path: Path) -> None:
    process, tokens = start_building(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    report.record("faults_injected")
    assert process.returncode == 143, stderr
    assert "terminated (SIGTERM) while building the token store" in stderr
    assert "Traceback" not in stderr
    assert os.listdir(tokens) == []  # no temporary folder, no store
    report.record("runs_survived")


@pytest.mark.timeout(180)
def test_what_a_killed_build_left_is_removed_by_the_next_one(tmp_path: Path, corpus: Path) -> None:
    process, tokens = start_building(tmp_path)
    process.kill()
    process.communicate(timeout=60)
    report.record("faults_injected")
    left = [p.name for p in tokens.iterdir()]
    assert left and all(".building-" in name for name in left)
    # A volatile store (built from a pipe) whose process was killed before it could remove it.
    dead = subprocess.Popen(["true"])
    dead.wait()
    volatile = tokens / "0123456789abcdef01234567"
    volatile.mkdir()
    mark = {"what": "codex-ml token store", "format": 2, "volatile": f"{dead.pid}@{os.uname()[1]}"}
    (volatile / ".codex-ml-token-store").write_text(json.dumps(mark))
    result = prepare(tmp_path, f"data.path={corpus}")
    stores = [store_of(prepared(result))]
    assert sorted(tokens.iterdir()) == stores  # no temporary folder, no volatile store
    report.record("runs_survived")


# --- 2. a callback's file may not be one of the run's own -----------------------------------------


def test_every_name_a_run_writes_is_in_the_one_list(trained: Path) -> None:
    from codex_ml.runfiles import RUN_DIR_NAMES

    assert {p.name for p in trained.iterdir()} <= set(RUN_DIR_NAMES)


@pytest.mark.parametrize(
    "name",
    [
        *(".lock", "metrics.jsonl", "checkpoints", "summary.json", "Train.log", ".hydra"),
        *("wandb", "../escape.csv", "sub/rows.csv", "..", ".hidden.csv", ""),
    ],
)
def test_the_csv_callback_refuses_the_run_s_own_names_and_paths(name: str) -> None:
    from codex_ml.callbacks.csv_file import CSVCallback
    from codex_ml.config import ConfigError

    with pytest.raises(ConfigError, match=r"callbacks\.csv\.filename") as caught:
        CSVCallback(filename=name)
    assert caught.value.where == "callbacks.csv.filename" and "\n" not in str(caught.value)
    report.record("bad_inputs_tried")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", [".lock", "metrics.jsonl", "checkpoints", "../escape.csv"])
def test_a_csv_filename_naming_a_run_file_is_refused_before_the_run_starts(
    name: str, run_copy: Path
) -> None:
    def kept() -> tuple:
        files = ("metrics.jsonl", "summary.json", "config.yaml")
        steps = sorted(p.name for p in (run_copy / "checkpoints").iterdir())
        return steps, [(run_copy / f).read_bytes() for f in files], sorted(os.listdir(run_copy))

    before = kept()
    args = ("train", f"hydra.run.dir={run_copy}", *QUICK, "callbacks=[csv]")
    result = Command((*args, f"callbacks.csv.filename={name}"), run_copy.parent).run(timeout=120)
    assert_user_error(result, "train", f"callbacks.csv.filename={name!r}")
    assert kept() == before  # no file of the run replaced, none added
    assert not (run_copy.parent / "escape.csv").exists()
    report.record("bad_inputs_tried")
