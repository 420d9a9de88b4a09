"""``tokenizer=offline/bpe``: a byte-level BPE trained once on the run's training split.

Trained with ``tokenizers`` as its ``ByteLevelBPETokenizer`` would be, cached by
a fingerprint of the data and the settings, saved in the run directory as
``tokenizer/`` (which ``AutoTokenizer`` loads), and used from there by
``evaluate`` and a resume; ``prepare`` trains it too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_helpers import QUICK, Command, Run, describe

from codex_ml.tokenizers.bpe import TRAINED_FILE, bpe_tokenizer, cache_root, capped_batches

CORPUS = Path(__file__).resolve().parents[1] / "data" / "offline" / "tiny_corpus.txt"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return CORPUS.read_text(encoding="utf-8").splitlines()


# --- the factory -----------------------------------------------------------------------------


def test_bpe_learns_the_vocabulary_tokenizers_own_byte_level_bpe_learns(texts: list[str]) -> None:
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = bpe_tokenizer(corpus=texts, vocab_size=400, min_frequency=2)
    direct = ByteLevelBPETokenizer()
    direct.train_from_iterator(
        texts,
        vocab_size=400,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    assert tokenizer.vocab_size == 400
    assert tokenizer.hf_tokenizer.get_vocab() == direct.get_vocab()
    sample = "Once upon a time, the old machine hummed. Grüße 😀"
    assert tokenizer.encode(sample) == direct.encode(sample).ids
    assert tokenizer.decode(tokenizer.encode(sample)) == sample
    assert tokenizer.eos_id == tokenizer.hf_tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0


def test_special_tokens_come_first_and_eos_is_the_one_named(texts: list[str]) -> None:
    tokenizer = bpe_tokenizer(
        corpus=texts[:50], vocab_size=300, special_tokens=["<pad>", "<eos>"], eos_token="<eos>"
    )
    assert tokenizer.eos_id == 1
    assert tokenizer.hf_tokenizer.convert_ids_to_tokens([0, 1]) == ["<pad>", "<eos>"]


def test_the_same_corpus_and_settings_train_once(
    texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import codex_ml.tokenizers.bpe as bpe

    first = bpe_tokenizer(corpus=texts, vocab_size=320)
    folder = Path(first.hf_tokenizer.name_or_path)
    assert folder.parent == cache_root() and (folder / TRAINED_FILE).is_file()
    recorded = json.loads((folder / TRAINED_FILE).read_text())
    assert recorded["settings"]["vocab_size"] == 320 and recorded["corpus"].startswith("content:")

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained again")

    monkeypatch.setattr(bpe, "train_bpe", no_training)
    again = bpe_tokenizer(corpus=list(texts), vocab_size=320)
    assert again.encode("the old machine") == first.encode("the old machine")
    monkeypatch.undo()
    other = bpe_tokenizer(corpus=texts, vocab_size=321)  # other settings: another tokenizer
    assert Path(other.hf_tokenizer.name_or_path) != folder


def test_a_corpus_that_names_its_fingerprint_is_cached_by_it(texts: list[str]) -> None:
    class Named:
        fingerprint = "the-tiny-corpus-v1"

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter(texts)

    tokenizer = bpe_tokenizer(corpus=Named(), vocab_size=330)
    folder = Path(tokenizer.hf_tokenizer.name_or_path)
    assert json.loads((folder / TRAINED_FILE).read_text())["corpus"] == "the-tiny-corpus-v1"


def test_a_generator_is_trained_on_but_cached_nowhere(texts: list[str]) -> None:
    before = set(cache_root().iterdir()) if cache_root().is_dir() else set()
    tokenizer = bpe_tokenizer(corpus=(t for t in texts), vocab_size=340)
    assert tokenizer.vocab_size == 340
    after = set(cache_root().iterdir()) if cache_root().is_dir() else set()
    assert after == before


def test_max_train_bytes_takes_the_first_bytes_of_the_split() -> None:
    corpus = ["abc", "", "défg", "hij"]  # 3 + 5 + 3 bytes
    assert [t for batch in capped_batches(corpus, None) for t in batch] == ["abc", "défg", "hij"]
    assert [t for batch in capped_batches(corpus, 8) for t in batch] == ["abc", "défg"]
    # Cut inside "é" (two bytes): the partial character is dropped.
    assert [t for batch in capped_batches(corpus, 4) for t in batch] == ["abc", "d"]
    assert [t for batch in capped_batches(corpus, 5) for t in batch] == ["abc", "d"]
    assert [t for batch in capped_batches(corpus, 6) for t in batch] == ["abc", "dé"]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"vocab_size": 100}, "vocab_size=100"),
        ({"min_frequency": 0}, "min_frequency=0"),
        ({"eos_token": "<eos>"}, "eos_token='<eos>'"),
        ({"max_train_bytes": 0}, "max_train_bytes=0"),
        ({"corpus": None}, "corpus"),
    ],
)
def test_bad_settings_are_errors_naming_the_setting(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(")):
        bpe_tokenizer(**{"corpus": ["some text"], **kwargs})


# --- a run ---------------------------------------------------------------------------------


class BpeRuns:
    """prepare, train, evaluate and resume with the bpe tokenizer, in a cache of their own."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.cache = tmp / "cache"
        self.env = {"CODEX_ML_CACHE_DIR": str(self.cache)}
        bpe = ["tokenizer=offline/bpe", "tokenizer.vocab_size=400"]
        self.args = [*QUICK, *bpe]
        self.prepared = self.prepare(*bpe)
        self.run = self.train(tmp / "run", "training.checkpoint_every=0")
        self.other = self.prepare("tokenizer=offline/bpe", "tokenizer.vocab_size=401")
        shutil.rmtree(self.cache / "tokenizers")  # from here on only RUN/tokenizer/ holds it
        self.report = self.command("evaluate", str(self.run.dir), "--output", str(tmp / "e.json"))
        self.resumed = self.train(tmp / "resumed", f"training.resume={self.run.dir}", steps=4)

    def command(self, *args: str) -> str:
        result = Command(list(args), self.tmp, self.env).run()
        assert result.returncode == 0, describe(result)
        return result.stdout

    def prepare(self, *args: str) -> dict:
        return json.loads(self.command("prepare", *QUICK, *args, "--json"))

    def train(self, run_dir: Path, *args: str, steps: int = 2) -> Run:
        self.command(
            "train", f"hydra.run.dir={run_dir}", *self.args, *args, f"training.max_steps={steps}"
        )
        return Run(run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> BpeRuns:
    return BpeRuns(tmp_path_factory.mktemp("bpe-runs"))


def test_the_run_saves_its_tokenizer_for_transformers(runs: BpeRuns, texts: list[str]) -> None:
    from transformers import AutoTokenizer

    from codex_ml.tokenizers.token_bytes import token_byte_lengths

    folder = runs.run.dir / "tokenizer"
    loaded = AutoTokenizer.from_pretrained(folder)
    assert len(loaded) == 400 and loaded.eos_token == "<|endoftext|>"
    # Trained on the run's training split, as the same factory would be on those records.
    from codex_ml.data.split import assign

    train = [t for held_out, t in assign(texts, eval_fraction=0.1, seed=0) if not held_out]
    expected = bpe_tokenizer(corpus=train, vocab_size=400)
    sample = "The old machine, once upon a time."
    assert loaded.encode(sample, add_special_tokens=False) == expected.encode(sample)
    assert token_byte_lengths(expected) is not None
    assert runs.run.summary["components"]["tokenizer"]["key"] == "bpe"


def test_prepare_trains_it_and_train_then_reuses_tokenizer_and_store(runs: BpeRuns) -> None:
    assert runs.prepared["built"] is True
    store = runs.run.summary["data"]["store"]
    assert store["built"] is False and store["fingerprint"] == runs.prepared["fingerprint"]
    header = json.loads((Path(store["path"]) / "header.json").read_text())
    assert header["tokenizer"]["backend"]  # the store names the trained tokenizer's identity
    assert header["vocab_size"] == 400


def test_another_trained_tokenizer_gets_another_store(runs: BpeRuns) -> None:
    assert runs.other["built"] is True
    assert runs.other["fingerprint"] != runs.prepared["fingerprint"]


def test_evaluate_and_resume_use_the_runs_own_tokenizer(runs: BpeRuns) -> None:
    report = json.loads((runs.tmp / "e.json").read_text())
    summary = runs.run.summary
    assert (
        report["eval_tokens"]
        == summary["eval_tokens"]
        == summary["data"]["store"]["tokens"]["eval"]
    )
    assert report["held_out"]["eval_ppl"] == pytest.approx(summary["final_metrics"]["eval_ppl"])
    assert not (runs.cache / "tokenizers").exists()  # nothing was trained again
    resumed = runs.resumed.summary
    assert resumed["steps"] == 4 and resumed["resumed_from"] == str(runs.run.dir)
    saved = runs.resumed.dir / "tokenizer" / "tokenizer.json"
    assert saved.read_text() == (runs.run.dir / "tokenizer" / "tokenizer.json").read_text()
    assert resumed["data"]["store"]["fingerprint"] == summary["data"]["store"]["fingerprint"]
