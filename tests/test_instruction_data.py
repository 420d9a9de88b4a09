"""Instruction and chat data: the loss mask in the token store, packing, and the command line.

A prompt/completion or chat record becomes ids and a flag byte per id in the
token store (``LOSS``: the token carries the loss; ``START``: an example's
first token). The trainer's loss and evaluation count only ``LOSS`` targets;
packed examples neither attend to nor take positions from one another, for
codex-ml's own model and for Hugging Face ones; bad input is one paragraph and
exit 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from cli_helpers import QUICK, Command, assert_user_error, describe, train

from codex_ml.data.examples import Chat, Message, PromptCompletion
from codex_ml.data.store import TokenSplit
from codex_ml.data.store.examples import example_encoder
from codex_ml.data.store.layout import LOSS, MASK_FILES, START, STORE_FILES, check_store
from codex_ml.run.assemble import build, data_source, plan, resolve
from codex_ml.run.compose import compose_config
from codex_ml.run.prepare import Prepared, prepare
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training.data import IGNORE_INDEX
from codex_ml.training.examples import ExampleBlocks, packed_examples, training_blocks
from codex_ml.training.functional import token_loss
from codex_ml.world import Process

EOS = ByteTokenizer.eos_id
#: A chat template small enough to read: every turn is <|role|>content, then the eos.
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|endoftext|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
#: One that refuses a conversation whose first turn is not the user's.
PICKY_TEMPLATE = (
    "{% if messages[0]['role'] != 'user' %}{{ raise_exception('the user speaks first') }}"
    "{% endif %}" + TEMPLATE
)
PAIRS = [
    {"question": f"Q: {a}+{b}=", "answer": f" {a + b}"} for a in range(7) for b in range(0, 12, 3)
]
CHATS = [
    {
        "messages": [
            {"role": "user", "content": f"What is {a} + {a}?"},
            {"role": "assistant", "content": f"{a + a}"},
            {"role": "user", "content": "And doubled?"},
            {"role": "assistant", "content": f"{4 * a}"},
        ]
    }
    for a in range(24)
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def pairs_args(path: Path, *extra: str) -> tuple[str, ...]:
    return (
        "data=offline/jsonl",
        f"data.path={path}",
        "data.prompt_field=question",
        "data.completion_field=answer",
        *extra,
    )


def run_prepare(*overrides: str) -> Prepared:
    p = plan(resolve(compose_config("train", list(overrides))), groups=("tokenizer", "data"))
    return prepare(data_source(p), build(p, "tokenizer"), process=Process(), progress=False)


def hand_made(pairs: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """The ids and flags a byte-tokenised store holds for ``(prompt, completion)`` pairs."""
    ids: list[int] = []
    flags: list[int] = []
    for prompt, completion in pairs:
        prompt_ids, completion_ids = list(prompt.encode()), list(completion.encode())
        ids += [*prompt_ids, *completion_ids, EOS]
        flags += [START] + [0] * (len(prompt_ids) - 1) + [LOSS] * (len(completion_ids) + 1)
    return ids, flags


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_ML_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tokens"


@pytest.fixture(scope="module")
def chat_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 whose tokenizer has a chat template."""
    from transformers import AutoTokenizer

    from codex_ml.testing.artefacts import make_tiny_gpt2

    folder = make_tiny_gpt2(tmp_path_factory.mktemp("chat") / "gpt2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


# --- the mask in the token store ---------------------------------------------------------------


def test_the_store_keeps_the_mask_of_each_completion_beside_its_ids(
    tmp_path: Path, cache: Path
) -> None:
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    store = run_prepare(*pairs_args(data, "run.eval_fraction=0")).store
    ids, flags = hand_made([(row["question"], row["answer"]) for row in PAIRS])
    assert store.masked and np.asarray(store.ids("train")).tolist() == ids
    assert np.asarray(store.flags("train")).tolist() == flags
    assert store.loss_tokens("train") == sum(len(r["answer"]) + 1 for r in PAIRS)
    assert store.header["files"].keys() >= set(MASK_FILES)


def test_prepare_builds_the_store_once_and_plain_text_of_the_file_is_another(
    tmp_path: Path, cache: Path
) -> None:
    rows = [{**row, "text": row["question"] + row["answer"]} for row in PAIRS]
    data = write_jsonl(tmp_path / "p.jsonl", rows)
    first = run_prepare(*pairs_args(data))
    again = run_prepare(*pairs_args(data))
    assert first.built and not again.built and again.store.path == first.store.path
    text = run_prepare("data=offline/jsonl", f"data.path={data}").store
    assert text.fingerprint != first.store.fingerprint and not text.masked
    assert {p.name for p in text.path.iterdir()} == STORE_FILES - set(MASK_FILES)
    assert "loss_tokens" not in text.header["splits"]["train"]  # a text store as it always was


def test_a_mask_byte_that_is_no_flag_makes_the_store_damaged(tmp_path: Path, cache: Path) -> None:
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    store = run_prepare(*pairs_args(data)).store
    mask = store.path / "train.mask"
    damaged = bytearray(mask.read_bytes())
    damaged[3] = 9
    mask.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"train\.mask: it holds the flag byte 9"):
        check_store(store.path, store.fingerprint)
    assert run_prepare(*pairs_args(data)).built  # rebuilt


def test_a_fast_tokenizer_marks_the_tokens_that_overlap_an_answer(chat_gpt2: Path) -> None:
    from codex_ml.tokenizers.hf import load_hf_tokenizer

    tokenizer = load_hf_tokenizer(chat_gpt2)
    chat = Chat((Message("user", "2+2?"), Message("assistant", "4"), Message("user", "x")))
    _, encode = example_encoder(tokenizer)
    ids, flags = encode([chat])
    text = tokenizer.hf_tokenizer.decode
    trained = "".join(text([i]) for i, f in zip(ids, flags, strict=True) if f & LOSS)
    assert trained == "4<|endoftext|>"  # the answer and its turn's end, not the headers
    assert flags[0] == START and ids[-1] == tokenizer.eos_id


# --- the loss -----------------------------------------------------------------------------------


def blocks_of(tmp_path: Path, rows: list[dict[str, Any]], **kwargs: Any) -> ExampleBlocks:
    data = write_jsonl(tmp_path / "p.jsonl", rows)
    store = run_prepare(*pairs_args(data, "run.eval_fraction=0")).store
    blocks = training_blocks(ByteTokenizer(), TokenSplit(store, "train"), 32, name="t", **kwargs)
    assert isinstance(blocks, ExampleBlocks)
    return blocks


def test_the_loss_counts_only_completion_tokens(tmp_path: Path, cache: Path) -> None:
    from codex_ml.models.decoder_only import build_decoder_only

    blocks = blocks_of(tmp_path, PAIRS, packing=True)
    batch = blocks.take(torch.arange(len(blocks)))
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=16, block_size=64, seed=0)
    logits = model(**batch.model_inputs()).logits
    kept = batch.targets != IGNORE_INDEX
    assert int(kept.sum()) == sum(len(r["answer"]) + 1 for r in PAIRS)
    by_hand = torch.nn.functional.cross_entropy(logits[kept], batch.targets[kept])
    loss = token_loss(logits, batch.targets, masked=True)
    torch.testing.assert_close(loss, by_hand)
    # What the model predicts for prompt tokens does not move the loss at all.
    noisy = logits + torch.randn_like(logits) * 5 * (~kept).unsqueeze(-1)
    assert torch.equal(token_loss(noisy, batch.targets, masked=True), loss)


def test_the_whole_held_out_split_of_examples_scores_only_the_completion_tokens(
    tmp_path: Path, cache: Path
) -> None:
    from types import SimpleNamespace

    from codex_ml.run.held_out import HeldOut, score_held_out

    class Uniform(torch.nn.Module):  # every NLL is ln(vocab); takes position_ids when packed
        def __init__(self, vocab: int) -> None:
            super().__init__()
            self.vocab = vocab
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids: torch.Tensor, position_ids: Any = None) -> SimpleNamespace:
            return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab))

    data = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    store = run_prepare(*pairs_args(data, "run.eval_fraction=0.25")).store
    held_out = HeldOut.of_store(store)
    loss = (np.asarray(store.flags("eval")) & LOSS) != 0
    assert held_out.target_tokens == store.loss_tokens("eval") == int(loss.sum()) > 0
    assert store.text_bytes("eval") is None  # the records' bytes are not what is scored
    tokenizer = ByteTokenizer()
    model = Uniform(tokenizer.vocab_size)
    found = score_held_out(model, tokenizer, held_out, block_size=16, batch_size=2)
    assert found.tokens == store.loss_tokens("eval")
    # Byte tokens: the completions' bytes (each eos stands for none).
    ids = np.asarray(store.ids("eval"))[loss]
    assert found.text_bytes == int((ids != EOS).sum())
    log2_vocab = math.log2(tokenizer.vocab_size)
    assert found.bits_per_byte == pytest.approx(found.tokens * log2_vocab / found.text_bytes)
    capped = score_held_out(model, tokenizer, held_out, block_size=16, batch_size=2, max_tokens=5)
    assert capped.tokens == 5
    words = SimpleNamespace(eos_id=EOS, vocab_size=tokenizer.vocab_size, encode=lambda t: [1])
    unknown = score_held_out(model, words, held_out, block_size=16, batch_size=2)
    assert unknown.bits_per_byte is None and "instruction data" in str(unknown.bytes_unknown)


def test_a_batch_with_no_completion_token_has_loss_zero_not_nan() -> None:
    targets = torch.full((2, 3), IGNORE_INDEX)
    loss = token_loss(torch.randn(2, 3, 5, requires_grad=True), targets, masked=True)
    assert loss.item() == 0.0
    loss.backward()


# --- packing ------------------------------------------------------------------------------------


def test_packed_blocks_hold_whole_examples_with_positions_from_each_start(
    tmp_path: Path, cache: Path
) -> None:
    blocks = blocks_of(tmp_path, PAIRS, packing=True)
    lengths = [len(r["question"]) + len(r["answer"]) + 1 for r in PAIRS]
    assert len(blocks) < len(PAIRS) and int(blocks.lengths.sum()) == sum(lengths)
    batch = blocks.take(torch.arange(len(blocks)))
    assert batch.positions is not None
    first = batch.positions[0].tolist()
    assert first[: lengths[0] + 2] == [*range(lengths[0]), 0, 1]  # the second example restarts


def test_without_packing_each_row_is_one_padded_example(tmp_path: Path, cache: Path) -> None:
    blocks = blocks_of(tmp_path, PAIRS, packing=False)
    lengths = [len(r["question"]) + len(r["answer"]) + 1 for r in PAIRS]
    assert len(blocks) == len(PAIRS) and blocks.lengths.tolist() == lengths
    batch = blocks.take(torch.arange(len(blocks)))
    assert batch.positions is None and batch.inputs.shape[1] == max(lengths) - 1
    short = lengths.index(min(lengths))
    assert (batch.targets[short, min(lengths) - 1 :] == IGNORE_INDEX).all()  # the padding


def two_examples(tmp_path: Path, tokenizer: Any, overrides: tuple[str, ...]) -> Any:
    """A batch of one block packing two examples, and each example's ids alone."""
    rows = [{"question": "The cat sat", "answer": " on the mat."}, {"question": "A", "answer": "b"}]
    data = write_jsonl(tmp_path / "two.jsonl", rows)
    store = run_prepare(*pairs_args(data, "run.eval_fraction=0", *overrides)).store
    blocks = training_blocks(tokenizer, TokenSplit(store, "train"), 60, name="t", packing=True)
    batch = blocks.take(torch.tensor([0]))
    starts = np.flatnonzero(np.asarray(store.flags("train")) & START).tolist()
    ids = np.asarray(store.ids("train")).tolist()
    assert len(starts) == 2 and batch.positions is not None
    return blocks, batch, ids[: starts[1]], ids[starts[1] : -1]


@pytest.mark.parametrize("positions", ["rope", "learned"])
def test_an_example_packed_after_another_has_the_logits_it_has_alone(
    tmp_path: Path, cache: Path, positions: str
) -> None:
    from codex_ml.models.decoder_only import build_decoder_only

    _, batch, first, second = two_examples(tmp_path, ByteTokenizer(), ())
    model = build_decoder_only(n_layer=2, n_head=2, n_embd=32, positions=positions, seed=0)
    with torch.no_grad():
        packed = model(**batch.model_inputs()).logits[0]
        alone = model(input_ids=torch.tensor([second])).logits[0]
        plain = model(input_ids=batch.inputs).logits[0]
    torch.testing.assert_close(packed[len(first) :], alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(plain[len(first) :], alone, atol=1e-3)  # without it, they differ


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_hugging_face_models_keep_packed_examples_apart(
    tmp_path: Path, cache: Path, architecture: str
) -> None:
    from transformers import AutoModelForCausalLM

    from codex_ml.testing.artefacts import make_tiny_gpt2, make_tiny_llama
    from codex_ml.tokenizers.hf import load_hf_tokenizer

    make = make_tiny_gpt2 if architecture == "gpt2" else make_tiny_llama
    folder = make(tmp_path / architecture)
    overrides = ("tokenizer=offline/hf", f"tokenizer.name_or_path={folder}")
    blocks, batch, first, second = two_examples(tmp_path, load_hf_tokenizer(folder), overrides)
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="sdpa").eval()
    with torch.no_grad(), packed_examples(model, blocks):
        packed = model(**batch.model_inputs()).logits[0]
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([second])).logits[0]
    assert model.config.use_cache  # put back after the block
    torch.testing.assert_close(packed[len(first) :], alone, atol=1e-5, rtol=1e-5)


def test_packing_false_on_plain_text_is_refused(tmp_path: Path, cache: Path) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [{"text": "some text " * 20}])
    store = run_prepare("data=offline/jsonl", f"data.path={data}", "run.eval_fraction=0").store
    with pytest.raises(ValueError, match=r"training\.packing=false gives one instruction example"):
        training_blocks(ByteTokenizer(), TokenSplit(store, "train"), 16, name="t", packing=False)


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("packing", ["true", "false"])
def test_a_run_on_prompt_completion_data_counts_the_tokens_that_carried_the_loss(
    tmp_path: Path, packing: str
) -> None:
    data = write_jsonl(tmp_path / "p.jsonl", PAIRS)
    env = {"CODEX_ML_CACHE_DIR": str(tmp_path / "cache")}
    run = train(tmp_path / "run", *QUICK, *pairs_args(data), f"training.packing={packing}", env=env)
    summary = run.summary
    assert 0 < summary["loss_tokens"] < summary["tokens_seen"]
    assert f"({summary['loss_tokens']:,} carried the loss)" in run.result.stdout
    logged = run.logged()[-1]
    assert logged["loss_tokens_seen"] == summary["loss_tokens"] and logged["loss_tokens_per_s"] > 0
    assert math.isfinite(summary["final_metrics"]["eval_loss"])
    # The end-of-run token metrics score the held-out completions, as the trainer's evaluation.
    assert summary["metrics"]["ppl"] == pytest.approx(summary["final_metrics"]["eval_ppl"], 1e-4)
    store = summary["data"]["store"]
    assert store["loss_tokens"]["train"] < store["tokens"]["train"]


@pytest.mark.timeout(300)
def test_a_chat_run_with_a_tokenizer_that_has_a_chat_template(
    tmp_path: Path, chat_gpt2: Path
) -> None:
    data = write_jsonl(tmp_path / "c.jsonl", CHATS)
    run = train(
        tmp_path / "run",
        *QUICK,
        "data=offline/chat",
        f"data.path={data}",
        "model=offline/hf",
        f"model.path={chat_gpt2}",
        "tokenizer=offline/hf",
        f"tokenizer.name_or_path={chat_gpt2}",
        env={"CODEX_ML_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert 0 < run.summary["loss_tokens"] < run.summary["tokens_seen"]


def prepare_cli(tmp_path: Path, *args: str) -> Any:
    env = {"CODEX_ML_CACHE_DIR": str(tmp_path / "cache")}
    return Command(["prepare", "--json", *args], tmp_path, env).run()


@pytest.mark.timeout(300)
def test_chats_without_a_template_need_the_plain_one_chosen(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "c.jsonl", CHATS)
    args = ("data=offline/chat", f"data.path={data}")
    refused = prepare_cli(tmp_path, *args)
    assert_user_error(refused, "prepare", "has no chat template", "data.chat_template=plain")
    plain = prepare_cli(tmp_path, *args, "data.chat_template=plain")
    assert plain.returncode == 0, describe(plain)
    facts = json.loads(plain.stdout)
    assert 0 < facts["loss_tokens"]["train"] < facts["tokens"]["train"]


def test_the_plain_template_writes_what_the_guide_shows() -> None:
    chat = Chat((Message("user", "What is 2 + 2?"), Message("assistant", "4")), "plain")
    _, encode = example_encoder(ByteTokenizer())
    ids, flags = encode([chat])
    text = bytes(i for i in ids.tolist() if i < 256).decode()
    assert text == "### User\nWhat is 2 + 2?\n\n### Assistant\n4\n\n"
    trained = bytes(i for i, f in zip(ids.tolist(), flags, strict=True) if f & LOSS and i < 256)
    assert trained == b"4\n\n" and flags[-1] & LOSS  # and the eos after the answer


@pytest.mark.timeout(300)
def test_bad_instruction_input_is_one_paragraph_and_exit_2(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from codex_ml.testing.artefacts import make_tiny_gpt2

    missing = write_jsonl(tmp_path / "m.jsonl", [PAIRS[0], {"question": "Q: 1+1="}])
    result = prepare_cli(tmp_path, *pairs_args(missing))
    assert_user_error(result, "prepare", "m.jsonl, line 2", "'answer'", "completion_field")

    folder = make_tiny_gpt2(tmp_path / "picky")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = PICKY_TEMPLATE
    tokenizer.save_pretrained(folder)
    system_first = [{"messages": [{"role": "system", "content": "hi"}, *CHATS[0]["messages"]]}]
    chats = write_jsonl(tmp_path / "s.jsonl", system_first * 4)
    result = prepare_cli(
        tmp_path,
        "data=offline/chat",
        f"data.path={chats}",
        "tokenizer=offline/hf",
        f"tokenizer.name_or_path={folder}",
    )
    assert_user_error(result, "prepare", "chat template", "failed", "the user speaks first")

    result = prepare_cli(tmp_path, *pairs_args(missing), "data.messages_field=messages")
    assert_user_error(result, "prepare", "messages_field and prompt_field")


def test_a_prompt_without_completion_field_is_refused_when_the_loader_is_built() -> None:
    from codex_ml.data.jsonl import load_jsonl

    with pytest.raises(ValueError, match="prompt_field is set but completion_field is not"):
        load_jsonl("x.jsonl", prompt_field="q")


def test_every_structured_loader_reads_prompt_and_completion(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from codex_ml.registry import get_data_loader

    rows = PAIRS[:3]
    files = {
        "jsonl": write_jsonl(tmp_path / "p.jsonl", rows),
        "hf-datasets": tmp_path / "p.jsonl",
        "csv": tmp_path / "p.csv",
        "parquet": tmp_path / "p.parquet",
    }
    files["csv"].write_text(
        "question,answer\n" + "".join(f'"{r["question"]}","{r["answer"]}"\n' for r in rows)
    )
    pq.write_table(pa.Table.from_pylist(rows), files["parquet"])
    expected = [PromptCompletion(r["question"], r["answer"]) for r in rows]
    for key, path in files.items():
        loader = get_data_loader(
            key, path=str(path), prompt_field="question", completion_field="answer"
        )
        assert list(loader) == expected, key


def test_a_chat_store_changes_with_the_tokenizers_chat_template(
    tmp_path: Path, cache: Path, chat_gpt2: Path
) -> None:
    import shutil

    from transformers import AutoTokenizer

    data = write_jsonl(tmp_path / "c.jsonl", CHATS)
    other = shutil.copytree(chat_gpt2, tmp_path / "other")
    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.chat_template = TEMPLATE.replace("<|endoftext|>", "\n")
    tokenizer.save_pretrained(other)
    prints = {
        run_prepare(
            "data=offline/chat",
            f"data.path={data}",
            "tokenizer=offline/hf",
            f"tokenizer.name_or_path={folder}",
        ).store.fingerprint
        for folder in (chat_gpt2, other)
    }
    assert len(prints) == 2
