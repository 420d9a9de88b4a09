"""Bad dataset files: each a clear error naming the file (or handled), never a hang.

The files go through the ``lines`` data loader as a config names it
(``get_data_loader("lines", path=...)``) and, where they load, on into the
trainer. Every test has a hard timeout: a hang fails it instead of the suite.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import QUICK, Command, assert_user_error, cli_env, describe

from codex_ml.data import LineDecodeError
from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.registry import get_data_loader
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer

from . import report

TEN_MB = 10 * 1024 * 1024
BLOCK = 32


def train_briefly(records: list[str], block_size: int = BLOCK) -> int:
    """Two steps of a tiny model on ``records``; the steps it made."""
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=16, block_size=block_size, seed=0)
    trainer = FunctionalTrainer(
        max_steps=2, batch_size=2, block_size=block_size, device="cpu", num_threads=1
    )
    return trainer(model, ByteTokenizer(), records).steps


def load(path: Path, **kwargs: object) -> list[str]:
    """All records of ``path`` (the loader streams; reading them all finds every error)."""
    return list(get_data_loader("lines", path=str(path), **kwargs))


@pytest.fixture(autouse=True)
def _count_bad_input() -> None:
    report.record("bad_inputs_tried")


@pytest.mark.timeout(60)
def test_a_non_utf8_file_names_the_file_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\nsecond line\ncaf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(LineDecodeError) as caught:
        load(path)
    message = str(caught.value)
    assert str(path) in message and "line 3" in message and "encoding=" in message
    assert caught.value.line_number == 3
    assert load(path, encoding="latin-1")[2] == "café au lait"  # the fix it names works


@pytest.mark.timeout(60)
def test_a_binary_file_is_a_decode_error_not_garbage(tmp_path: Path) -> None:
    path = tmp_path / "corpus.bin"
    path.write_bytes(gzip.compress(b"a compressed corpus\n" * 1000))  # gzip under another name
    with pytest.raises(LineDecodeError, match=f"{path}, line 1: not valid utf-8"):
        load(path)


@pytest.mark.timeout(60)
def test_a_gzipped_text_file_is_read_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt.gz"
    path.write_bytes(gzip.compress(b"a compressed corpus\n" * 1000))
    assert load(path) == ["a compressed corpus"] * 1000


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("content", "says"), [(b"", "empty"), (b"\n \n\t\n\r\n" * 100_000, "only blank lines")]
)
def test_an_empty_or_blank_file_is_a_clear_error(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=says) as caught:
        load(path)
    assert str(path) in str(caught.value)


@pytest.mark.timeout(60)
def test_a_directory_without_data_files_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is a directory with no data files"):
        load(tmp_path)


@pytest.mark.timeout(120)
def test_a_dataset_shorter_than_one_block_says_how_many_tokens_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("too short\n")
    records = load(path)  # it loads ...
    with pytest.raises(ValueError) as caught:  # ... and the trainer says why it cannot train
        train_briefly(records)
    message = str(caught.value)
    assert "train_data has 10 tokens" in message and f"block_size + 1 = {BLOCK + 1}" in message
    assert "lower block_size" in message
    assert train_briefly(records, block_size=8) == 2  # and its advice works


@pytest.mark.timeout(120)
def test_a_10_mb_single_line_loads_and_trains_without_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "one-line.txt"
    line = ("the quick brown fox jumps over the lazy dog " * (TEN_MB // 44 + 1))[:TEN_MB]
    path.write_text(line)  # no newline at all
    started = time.perf_counter()
    records = load(path, max_record_bytes=2 * TEN_MB)  # over the default cap
    assert len(records) == 1 and len(records[0]) == TEN_MB
    assert train_briefly(records) == 2
    # Generous for a loaded machine; a quadratic pass over 10 MB would take hours.
    assert time.perf_counter() - started < 90


@pytest.mark.timeout(60)
def test_a_bad_byte_at_the_end_of_a_10_mb_line_is_found_and_named(tmp_path: Path) -> None:
    path = tmp_path / "one-bad-line.txt"
    path.write_bytes(b"x" * TEN_MB + b"\xff\n")
    with pytest.raises(LineDecodeError, match=f"line 1: not valid utf-8 .* at byte {TEN_MB} "):
        load(path, max_record_bytes=2 * TEN_MB)


@pytest.mark.timeout(60)
def test_nul_bytes_and_crlf_line_ends_are_text_like_any_other(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_bytes(b"\xef\xbb\xbfa\x00b\r\nsecond\r\n")
    assert load(path) == ["a\x00b", "second"]  # BOM and CRLF gone, NUL kept as written


# --- hostile input through the command line, and the token store under torchrun ----------------


def _prepare(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cache = str(tmp_path / "cache")
    return Command(["prepare", *args], tmp_path, {"CODEX_ML_CACHE_DIR": cache}).run(timeout=120)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("source", ["/dev/zero", "a 2 GB file without a line break"])
def test_a_source_without_line_breaks_is_a_record_size_error_not_a_memory_error(
    source: str, tmp_path: Path
) -> None:
    path = Path(source) if source.startswith("/") else tmp_path / "two-gb.txt"
    if not source.startswith("/"):
        with path.open("wb") as handle:  # sparse: 2 GB of zeros that take no disk
            handle.truncate(2 << 30)
    result = _prepare(tmp_path, "data=offline/lines", f"data.path={path}")
    message = assert_user_error(result, "prepare", str(path), "byte 0", "max_record_bytes")
    assert "MemoryError" not in message
    assert not list((tmp_path / "cache").rglob("*.bin"))  # nothing half-written kept


@pytest.mark.timeout(120)
def test_a_bad_json_line_is_one_paragraph_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "good"}\n{"text": "good"}\n{"text": oops}\n')
    result = _prepare(tmp_path, "data=offline/jsonl", f"data.path={path}")
    assert_user_error(result, "prepare", f"{path}, line 3: not JSON")
    missing = tmp_path / "fields.jsonl"
    missing.write_text('{"body": "x", "id": 1}\n')
    result = _prepare(tmp_path, "data=offline/jsonl", f"data.path={missing}")
    assert_user_error(result, "prepare", f"{missing}, line 1", "'body', 'id'")


def _torchrun(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = cli_env(OMP_NUM_THREADS="1", CODEX_ML_CACHE_DIR=str(tmp_path / "cache"))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "codex_ml.cli", "train", f"hydra.run.dir={tmp_path / 'run'}", *QUICK, *overrides,
    ]  # fmt: skip
    return subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240
    )


@pytest.mark.timeout(300)
def test_under_torchrun_rank_0_builds_the_store_and_rank_1_waits_for_it(tmp_path: Path) -> None:
    report.record("runs_survived")
    done = _torchrun(tmp_path, "training.max_steps=2")
    assert done.returncode == 0, describe(done)
    stores = list((tmp_path / "cache" / "tokens").iterdir())
    assert len(stores) == 1 and not stores[0].name.startswith(".")  # one store, no debris
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["data"]["store"]["path"] == str(stores[0])
    assert summary["data"]["store"]["built"] is True  # rank 0 built it, in this run


@pytest.mark.timeout(300)
def test_under_torchrun_a_failed_build_stops_every_rank_without_a_hang(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\nnot json\n')
    done = _torchrun(tmp_path, "data=offline/jsonl", f"data.path={bad}")
    assert done.returncode != 0
    assert f"{bad}, line 2: not JSON" in done.stderr
    assert not (tmp_path / "cache" / "tokens").exists() or not any(
        p.suffix == ".bin" for p in (tmp_path / "cache" / "tokens").rglob("*")
    )
