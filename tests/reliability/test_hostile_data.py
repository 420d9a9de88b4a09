"""Hostile inputs to the data loaders and presets: one paragraph naming file and line, or fast.

JSON nested 100,000 deep, a lone ``\\ud800`` escape, and a preset carrying a
``!!python/object/apply`` tag are user errors (exit 2) naming the file and
line, never an "unexpected" error. A few megabytes of gzip that inflate to a
billion empty lines are read in seconds, not minutes.
"""

from __future__ import annotations

import gzip
import random
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import Command, assert_user_error

from codex_ml.data import reader
from codex_ml.registry import get_data_loader

from . import report


@pytest.fixture(autouse=True)
def _count_bad_input() -> None:
    report.record("bad_inputs_tried")


def _prepare(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cache = str(tmp_path / "cache")
    return Command(["prepare", *args], tmp_path, {"CODEX_ML_CACHE_DIR": cache}).run(timeout=120)


DEEP = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("line", "says"),
    [
        (DEEP, "nested more deeply"),
        ('{"text": "half a pair: \\ud800 here"}', "the escape \\ud800 on its own"),
        ('{"text": "a low half first: \\udc00\\ud800"}', "the escape \\udc00 on its own"),
    ],
    ids=["nested-100000-deep", "lone-high-surrogate", "reversed-pair"],
)
def test_a_hostile_json_line_is_one_paragraph_naming_file_and_line(
    tmp_path: Path, line: str, says: str
) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "a fine first record"}\n\n' + line + "\n")
    result = _prepare(tmp_path, "data=offline/jsonl", f"data.path={path}")
    assert_user_error(result, "prepare", f"{path}, line 3:", says)


@pytest.mark.timeout(120)
def test_a_preset_with_a_python_yaml_tag_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    presets = tmp_path / "presets" / "data"
    presets.mkdir(parents=True)
    preset = presets / "evil.yaml"
    preset.write_text(
        f"name: lines\npath: !!python/object/apply:os.system [touch {marker}]\n", "utf-8"
    )
    result = Command(
        ["train", "-cd", str(tmp_path / "presets"), "data=evil", f"hydra.run.dir={tmp_path}/r"],
        tmp_path,
    ).run(timeout=120)
    assert_user_error(result, "train", str(preset), "line 2", "python/object/apply")
    assert not marker.exists()


def _newline_bomb(path: Path, megabytes: int) -> Path:
    """``megabytes`` MiB of newlines in about as many KiB of gzip (one member per MiB)."""
    member = gzip.compress(b"\n" * (1 << 20))
    path.write_bytes(member * megabytes)
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("loader", ["lines", "jsonl"])
def test_a_gzip_of_a_billion_empty_lines_is_read_in_seconds(tmp_path: Path, loader: str) -> None:
    suffix = ".txt.gz" if loader == "lines" else ".jsonl.gz"
    path = _newline_bomb(tmp_path / f"empty{suffix}", 1024)  # 1 MB on disk, 1 GiB of lines
    started = time.perf_counter()
    with pytest.raises(ValueError, match="yields no records") as caught:
        list(get_data_loader(loader, path=str(path)))
    elapsed = time.perf_counter() - started
    assert str(path) in str(caught.value)
    # About 3 s here; a Python step per empty line took over 200 s.
    assert elapsed < 40, elapsed


def _reference(data: bytes) -> list[tuple[int, int, bytes]]:
    """Every line of ``data`` with its number and offset, the obvious way."""
    lines, offset = [], 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        lines.append((number, offset, line))
        offset += len(line) + 1
    if lines and lines[-1][2] == b"":
        lines.pop()  # the file ends with a line break
    return lines


@pytest.mark.parametrize("seed", range(40))
def test_skipping_blank_lines_keeps_every_line_number_and_offset(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    pieces = [b"\n", b"\r\n", b"\n\n\n", b"\r", b"x", b"text", b" ", b"\r\r", b"a longer line "]
    data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 400)))
    path = tmp_path / "lines.txt"
    path.write_bytes(data)
    monkeypatch.setattr(reader, "_CHUNK", rng.choice([1, 2, 3, 7, 64]))
    every = list(reader.read_lines(path, max_record_bytes=1 << 20))
    assert every == _reference(data)
    kept = list(reader.read_lines(path, max_record_bytes=1 << 20, skip_blank=True))
    # Every line with anything but CRs in it is given, as read without skipping ...
    assert [r for r in every if r[2].strip(b"\r")] == [r for r in kept if r[2].strip(b"\r")]
    # ... exactly as read without skipping, and none is empty (a CR-only one may be given).
    assert set(kept) <= set(every) and all(r[2] for r in kept)
