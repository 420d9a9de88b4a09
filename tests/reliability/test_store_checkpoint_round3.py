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
import subprocess
from pathlib import Path

import pytest
from cli_helpers import Command, assert_user_error, describe

from . import report

LINES = "".join(f"line {i} of a small corpus, said plainly\n" for i in range(200))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(LINES)
    return path


def prepare(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``codex-ml prepare --json data=offline/lines ARGS`` with the cache in ``tmp_path``."""
    cache = str(tmp_path / "cache")
    args = ("prepare", "--json", "data=offline/lines", *args)
    return Command(args, tmp_path, {"CODEX_ML_CACHE_DIR": cache}).run(timeout=timeout)


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
