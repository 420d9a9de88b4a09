"""The token store: built once, reused, rebuilt when stale or damaged, and trained from.

The store's ids must be exactly what the in-memory path gives
(``encode_records`` of the same split), whichever batch path the tokenizer
takes; a store is only ever used when it is complete and made for the same
tokenizer, data and split.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codex_ml.data.split import assign
from codex_ml.data.store import StoreWriteError, TokenSplit, open_or_build
from codex_ml.data.store import build as store_build
from codex_ml.run.assemble import build, data_source, plan, resolve, split_records
from codex_ml.run.compose import compose_config
from codex_ml.run.prepare import Prepared, prepare
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training.data import encode_records
from codex_ml.world import Process

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "ravens",
    "sing",
    "softly",
]


def corpus(path: Path, n: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 30)))) for _ in range(n)]
    path.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_ML_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tokens"


def run_prepare(*overrides: str) -> Prepared:
    p = plan(resolve(compose_config("train", list(overrides))), groups=("tokenizer", "data"))
    return prepare(data_source(p), build(p, "tokenizer"), process=Process(), progress=False)


def jsonl(path: Path, *extra: str) -> tuple[str, ...]:
    return ("data=offline/jsonl", f"data.path={path}", *extra)


def expected_split(path: Path, fraction: float = 0.1, seed: int = 0) -> tuple[list, list]:
    from codex_ml.registry import get_data_loader

    return split_records(
        get_data_loader("jsonl", path=str(path)), eval_fraction=fraction, seed=seed
    )


# --- what a store holds -------------------------------------------------------------------


def test_the_store_holds_exactly_the_ids_of_the_in_memory_path(tmp_path: Path, cache: Path) -> None:
    data = corpus(tmp_path / "c.jsonl")
    prepared = run_prepare(*jsonl(data, "run.eval_fraction=0.25", "run.seed=3"))
    store = prepared.store
    train, held_out = expected_split(data, 0.25, 3)
    tokenizer = ByteTokenizer()
    assert store.ids("train").tolist() == encode_records(tokenizer, train, name="t")
    assert store.ids("eval").tolist() == encode_records(tokenizer, held_out, name="e")
    assert store.eval_texts() == held_out
    assert store.path == cache / store.fingerprint and prepared.built
    header = store.header
    assert header["dtype"] == "uint16" and isinstance(store.ids("train"), np.memmap)
    assert header["codex_ml"] and header["tokenizer"]["class"].endswith(":ByteTokenizer")
    (path, size, mtime) = header["data"]["train"]["files"][0]
    assert (path, size, mtime) == (
        str(data.resolve()),
        data.stat().st_size,
        data.stat().st_mtime_ns,
    )
    assert header["data"]["train"]["loader"] == "jsonl"
    assert header["split"] == {"eval_fraction": 0.25, "seed": 3}


def test_a_hugging_face_fast_tokenizer_goes_through_encode_batch(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from codex_ml.tokenizers.hf import HFTokenizer

    texts = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"]))
    tokenizer = HFTokenizer(PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>"))
    store = build_directly(tmp_path, tokenizer, texts)
    assert "encode_batch" in store.header["encoder"]
    assert store.ids("train").tolist() == encode_records(tokenizer, texts, name="t")


class EncodeOnly:
    """A plugin tokenizer with nothing but ``encode``, and a vocabulary past uint16."""

    vocab_size = 70_000
    eos_id = 69_999

    def encode(self, text: str) -> list[int]:
        return [60_000 + ord(c) % 1000 for c in text]


def test_an_encode_only_tokenizer_works_and_a_large_vocabulary_takes_uint32(tmp_path: Path) -> None:
    texts = ["abc", "", "hello world"]
    store = build_directly(tmp_path, EncodeOnly(), texts)
    assert store.header["dtype"] == "uint32" and store.header["encoder"].startswith("encode ")
    assert store.ids("train").tolist() == encode_records(EncodeOnly(), texts, name="t")


def build_directly(tmp_path: Path, tokenizer: Any, texts: list[str]) -> Any:
    store, built = open_or_build(
        tmp_path / "store", "fp", lambda: [(False, t) for t in texts], tokenizer, {}, progress=False
    )
    assert built
    return store


# --- reuse and invalidation ------------------------------------------------------------------


def test_a_second_prepare_reuses_the_store_without_tokenising(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = corpus(tmp_path / "c.jsonl")
    first = run_prepare(*jsonl(data))

    def no_tokenising(*args: object) -> None:
        raise AssertionError("the store was rebuilt")

    monkeypatch.setattr(store_build, "batch_encoder", no_tokenising)
    again = run_prepare(*jsonl(data))
    assert not again.built and again.store.path == first.store.path
    assert again.as_dict()["tokens"] == first.as_dict()["tokens"]


def test_a_changed_tokenizer_data_file_or_split_gets_its_own_store(
    tmp_path: Path, cache: Path
) -> None:
    data = corpus(tmp_path / "c.jsonl")
    paths = {run_prepare(*jsonl(data)).store.path}
    paths.add(run_prepare(*jsonl(data, "+tokenizer.add_bos=true")).store.path)  # tokenizer
    paths.add(run_prepare(*jsonl(data, "run.seed=1")).store.path)  # split
    with data.open("a") as handle:  # the data file changes
        handle.write(json.dumps({"text": "one more record"}) + "\n")
    changed = run_prepare(*jsonl(data))
    assert changed.built and changed.store.path not in paths
    assert len(paths) == 3
    assert changed.store.records("train") + changed.store.records("eval") == 61


@pytest.mark.parametrize("damage", ["truncated", "overwritten", "no header", "bad header"])
def test_a_damaged_store_is_never_used_and_is_rebuilt(
    damage: str, tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    data = corpus(tmp_path / "c.jsonl", n=400)
    store = run_prepare(*jsonl(data)).store
    ids = store.ids("train").tolist()
    train = store.path / "train.bin"
    if damage == "truncated":
        os.truncate(train, train.stat().st_size // 2)
    elif damage == "overwritten":
        with train.open("r+b") as handle:
            handle.seek(train.stat().st_size // 3)
            handle.write(b"\0" * 64)
    elif damage == "no header":
        (store.path / "header.json").unlink()
    else:
        (store.path / "header.json").write_text('{"format": 1, "fingerp')
    again = run_prepare(*jsonl(data))
    assert again.built and again.store.path == store.path
    assert again.store.ids("train").tolist() == ids
    assert f"token store {store.path} cannot be used" in capsys.readouterr().err


def test_a_half_written_store_is_never_used(tmp_path: Path, cache: Path) -> None:
    data = corpus(tmp_path / "c.jsonl")
    fingerprint = run_prepare(*jsonl(data)).store.fingerprint
    store = cache / fingerprint
    for name in os.listdir(store):
        os.unlink(store / name)
    (store / "train.bin").write_bytes(b"\1\0" * 10)  # as if a build died after one write
    again = run_prepare(*jsonl(data))
    assert again.built and again.store.records("train") > 0
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_data_store_names_the_folder_and_a_foreign_folder_is_refused(
    tmp_path: Path, cache: Path
) -> None:
    data = corpus(tmp_path / "c.jsonl")
    named = tmp_path / "my-store"
    prepared = run_prepare(*jsonl(data, f"data.store={named}"))
    assert prepared.store.path == named and (named / "header.json").is_file()
    assert not cache.exists()
    mine = tmp_path / "my-things"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious\n")
    with pytest.raises(FileExistsError, match=r"not a token store's .*notes\.txt.*changed nothing"):
        run_prepare(*jsonl(data, f"data.store={mine}"))
    assert (mine / "notes.txt").read_text() == "precious\n" and len(os.listdir(mine)) == 1


def test_a_full_disk_names_the_store_folder_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_build._SplitWriter, "flush", full)
    folder = tmp_path / "tokens" / "abc"
    with pytest.raises(StoreWriteError, match=f"could not write the token store {folder}"):
        open_or_build(folder, "abc", lambda: [(False, "text")], ByteTokenizer(), {}, progress=False)
    assert not folder.exists() and os.listdir(folder.parent) == []


# --- the split ----------------------------------------------------------------------------------


def test_the_streaming_split_is_seeded_spread_and_sized() -> None:
    def held(n: int, fraction: float, seed: int) -> list[int]:
        return [i for held, i in assign(range(n), eval_fraction=fraction, seed=seed) if held]

    assert held(1000, 0.1, 0) == held(1000, 0.1, 0)
    assert held(1000, 0.1, 0) != held(1000, 0.1, 1)
    assert len(held(1000, 0.1, 0)) == 100 and len(held(1000, 0.25, 5)) == 250
    gaps = np.diff(held(1000, 0.1, 0))
    assert set(gaps) == {10}  # evenly spread
    # A tiny corpus still holds one record out, whatever the seed (the last, if need be).
    assert all(len(held(5, 0.1, seed)) == 1 for seed in range(20))
    assert any(held(5, 0.1, seed) == [4] for seed in range(20))
    assert held(1, 0.5, 0) == []  # a single record is trained on
    assert held(50, 0.0, 0) == []


def test_an_explicit_eval_path_is_the_eval_split(tmp_path: Path, cache: Path) -> None:
    data = corpus(tmp_path / "train.jsonl", n=30)
    held_out = corpus(tmp_path / "eval.jsonl", n=7, seed=9)
    store = run_prepare(*jsonl(data, f"data.eval_path={held_out}")).store
    assert (store.records("train"), store.records("eval")) == (30, 7)
    assert store.header["split"] == {"eval_path": str(held_out)}


# --- training from the store -------------------------------------------------------------------


def test_training_from_the_store_is_bit_exact_with_the_in_memory_path(
    tmp_path: Path, cache: Path
) -> None:
    from codex_ml.models.decoder_only import build_decoder_only
    from codex_ml.training import FunctionalTrainer

    data = corpus(tmp_path / "c.jsonl", n=200)
    store = run_prepare(*jsonl(data)).store
    train, held_out = expected_split(data)

    def fit(train_data: Any, eval_data: Any) -> Any:
        model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=32, seed=0)
        trainer = FunctionalTrainer(
            max_steps=4, batch_size=4, block_size=32, log_every=1, device="cpu", num_threads=1
        )
        return trainer(model, ByteTokenizer(), train_data, eval_data)

    from_store = fit(TokenSplit(store, "train"), TokenSplit(store, "eval"))
    in_memory = fit(train, held_out)
    assert [r["loss"] for r in from_store.history if "loss" in r] == [
        r["loss"] for r in in_memory.history if "loss" in r
    ]
    assert from_store.final_metrics == in_memory.final_metrics


def test_the_store_build_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from codex_ml.data.store import open_or_build; "
        "from codex_ml.tokenizers.byte_level import ByteTokenizer; "
        f"open_or_build(Path({str(tmp_path / 's')!r}), 'x', lambda: [(False, 'a b c')], "
        "ByteTokenizer(), {}, progress=False); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_benchmark_quick_mode_still_runs(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.data_store", "--quick", "--workdir", str(tmp_path)],
        cwd=repo, capture_output=True, text=True, timeout=880,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| token store memory map |" in done.stdout and "goal >= 0.8x" in done.stdout


# --- codex-ml prepare ---------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_prepare_builds_the_store_that_train_then_opens_without_tokenising(tmp_path: Path) -> None:
    from cli_helpers import QUICK, Command, describe

    data = corpus(tmp_path / "c.jsonl", n=120)
    env = {"CODEX_ML_CACHE_DIR": str(tmp_path / "cache")}
    args = ("data=offline/jsonl", f"data.path={data}")
    first = Command(["prepare", "--json", *args], tmp_path, env).run()
    assert first.returncode == 0, describe(first)
    facts = json.loads(first.stdout)
    assert facts["built"] and Path(facts["path"]).parent == tmp_path / "cache" / "tokens"
    assert facts["tokens"]["train"] > 0 and facts["size_bytes"] > 0
    again = Command(["prepare", *args], tmp_path, env).run()
    assert again.returncode == 0 and "already there (nothing tokenised)" in again.stdout
    assert facts["path"] in again.stdout
    run_dir = tmp_path / "run"
    trained = Command(["train", f"hydra.run.dir={run_dir}", *QUICK, *args], tmp_path, env).run()
    assert trained.returncode == 0, describe(trained)
    store = json.loads((run_dir / "summary.json").read_text())["data"]["store"]
    assert (store["path"], store["fingerprint"], store["built"]) == (
        facts["path"],
        facts["fingerprint"],
        False,
    )
