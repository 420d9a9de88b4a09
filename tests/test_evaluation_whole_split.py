"""Evaluation that means something: the whole held-out split, counted, in bits per byte.

``codex-ml evaluate RUN`` scores every held-out token by default (``--max-tokens
N`` caps it) and says how many it scored and which checkpoint; the run's own
end-of-run scoring follows the same rules; the console, ``summary.json`` and
``evaluation.json`` show one perplexity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from cli_helpers import Command, Run, describe

pytest_plugins = ["cli_fixtures"]


# --- the loop: every held-out token a target once --------------------------------------------


def test_stream_batches_make_every_token_a_target_once() -> None:
    from codex_ml.training.eval_batches import stream_batches

    ids = np.arange(100, 128)  # 28 ids: 2 batches of 2 blocks of 5, 1 block of 5, a tail of 3
    batches = list(stream_batches(ids, first_input=7, block_size=5, batch_size=2))
    assert [tuple(t.shape) for t, _ in batches] == [(2, 5), (2, 5), (1, 5), (1, 3)]
    targets = torch.cat([t.flatten() for _, t in batches])
    assert targets.tolist() == ids.tolist()
    inputs = torch.cat([i.flatten() for i, _ in batches])
    assert inputs.tolist() == [7, *ids[:-1].tolist()]  # each target's own previous id
    capped = list(stream_batches(ids, first_input=7, block_size=5, batch_size=2, max_tokens=7))
    assert torch.cat([t.flatten() for _, t in capped]).tolist() == ids[:7].tolist()


class Uniform(torch.nn.Module):
    """A model that gives every token the same logit: each NLL is ln(vocab)."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab))


def test_bits_per_byte_on_a_hand_computable_case() -> None:
    from codex_ml.run.held_out import HeldOut, score_held_out
    from codex_ml.tokenizers import ByteTokenizer

    tokenizer = ByteTokenizer()
    # "ab" eos "cé" eos: 7 tokens for 2 + 3 bytes of text ("é" is two bytes).
    held_out = HeldOut.of_texts(tokenizer, ["ab", "", "cé"])
    assert (held_out.tokens, held_out.records, held_out.text_bytes) == (7, 2, 5)
    model = Uniform(tokenizer.vocab_size)
    whole = score_held_out(model, tokenizer, held_out, block_size=3, batch_size=2)
    log2_vocab = math.log2(tokenizer.vocab_size)
    assert whole.tokens == 7 and whole.text_bytes == 5
    assert whole.bits_per_byte == pytest.approx(7 * log2_vocab / 5)
    assert whole.numbers()["eval_ppl"] == pytest.approx(tokenizer.vocab_size)
    # Capped at 3 tokens ("a", "b", eos): 2 bytes of text.
    capped = score_held_out(model, tokenizer, held_out, block_size=3, batch_size=2, max_tokens=3)
    assert (capped.tokens, capped.text_bytes) == (3, 2)
    assert capped.bits_per_byte == pytest.approx(3 * log2_vocab / 2)
    # Capped inside "é" (a, b, eos, c and its first byte): that byte is counted too.
    inside = score_held_out(model, tokenizer, held_out, block_size=3, batch_size=2, max_tokens=5)
    assert (inside.tokens, inside.text_bytes) == (5, 4)


def test_a_capped_score_of_a_tokenizer_without_byte_tokens_says_why_it_has_no_bits() -> None:
    from codex_ml.run.held_out import HeldOut, score_held_out

    words = SimpleNamespace(eos_id=0, vocab_size=4, encode=lambda text: [1, 2, 3])
    held_out = HeldOut.of_texts(words, ["one two three"])
    found = score_held_out(Uniform(4), words, held_out, block_size=2, batch_size=1, max_tokens=2)
    assert found.bits_per_byte is None and "not bytes" in str(found.bytes_unknown)
    whole = score_held_out(Uniform(4), words, held_out, block_size=2, batch_size=1)
    assert whole.bits_per_byte == pytest.approx(4 * 2 / 13)  # ln 4 / ln 2 = 2 bits a token


@pytest.mark.parametrize("kind", ["bytes", "bpe"])
def test_token_bytes_add_up_to_the_bytes_of_the_records(kind: str) -> None:
    from codex_ml.run.held_out import HeldOut
    from codex_ml.tokenizers import ByteTokenizer
    from codex_ml.tokenizers.bpe import bpe_tokenizer
    from codex_ml.tokenizers.token_bytes import token_byte_lengths

    texts = ["Hello, world!", "Grüße aus Köln 😀", "tabs\tand  spaces ", "naïve café " * 3]
    tokenizer = ByteTokenizer() if kind == "bytes" else bpe_tokenizer(corpus=texts, vocab_size=300)
    held_out = HeldOut.of_texts(tokenizer, texts)
    lengths = np.array(token_byte_lengths(tokenizer))
    assert int(lengths[held_out.ids.numpy()].sum()) == held_out.text_bytes
    assert held_out.text_bytes == sum(len(t.encode()) for t in texts)


# --- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, trained_run: Run) -> dict[str, dict]:
    """``evaluate`` of the shared run, whole and capped; each report as written."""
    tmp = tmp_path_factory.mktemp("whole-split")
    reports = {}
    for name, extra in {"whole": [], "capped": ["--max-tokens", "500"]}.items():
        output = tmp / f"{name}.json"
        command = ["evaluate", str(trained_run.dir), "--output", str(output), *extra]
        result = Command(command, tmp).run()
        assert result.returncode == 0, describe(result)
        reports[name] = {
            "file": json.loads(output.read_text()),
            "stdout": json.loads(result.stdout),
        }
    return reports


def held_out_ids(run: Run) -> np.ndarray:
    store = run.summary["data"]["store"]
    return np.fromfile(Path(store["path"]) / "eval.bin", dtype=store["dtype"])


def test_evaluate_scores_every_held_out_token_by_default(evaluated: dict, trained_run: Run) -> None:
    report = evaluated["whole"]["file"]
    tokens = trained_run.summary["data"]["store"]["tokens"]["eval"]
    assert tokens > 4 * 4 * 64  # more than the trainer's capped estimate reads
    assert report["eval_tokens"] == report["held_out"]["eval_tokens"] == tokens
    assert len(held_out_ids(trained_run)) == tokens
    # Byte tokenizer: the text is every id below 256 (the rest are eos between records).
    assert report["eval_bytes"] == int((held_out_ids(trained_run) < 256).sum())
    assert report["eval_records"] == trained_run.summary["data"]["eval"]


def test_max_tokens_caps_the_tokens_scored_and_their_bytes(
    evaluated: dict, trained_run: Run
) -> None:
    capped = evaluated["capped"]["file"]
    assert capped["eval_tokens"] == 500
    first = held_out_ids(trained_run)[:500]
    assert capped["eval_bytes"] == int((first < 256).sum())
    numbers = capped["held_out"]
    nats = numbers["eval_loss"] * 500
    assert numbers["bits_per_byte"] == pytest.approx(nats / (math.log(2) * capped["eval_bytes"]))
    assert numbers["eval_ppl"] == pytest.approx(math.exp(numbers["eval_loss"]))


def test_the_report_names_the_checkpoint_path_and_step(evaluated: dict, trained_run: Run) -> None:
    checkpoint = evaluated["whole"]["file"]["checkpoint"]
    assert checkpoint == {"path": str(trained_run.dir / "checkpoints" / "step-30"), "step": 30}


def test_console_summary_and_report_agree_on_one_perplexity(
    evaluated: dict, trained_run: Run
) -> None:
    summary = trained_run.summary
    ppl = summary["final_metrics"]["eval_ppl"]
    # summary.json: the held-out numbers are the end-of-run scoring's, over the whole split.
    assert summary["eval_tokens"] == summary["final_metrics"]["eval_tokens"]
    assert summary["eval_tokens"] == summary["data"]["store"]["tokens"]["eval"]
    assert summary["metrics"]["ppl"] == pytest.approx(ppl, rel=1e-9)
    assert ppl == pytest.approx(math.exp(summary["final_metrics"]["eval_loss"]))
    # evaluation.json: the same number, from the same checkpoint and the same tokens.
    for source in ("file", "stdout"):
        report = evaluated["whole"][source]
        assert report["held_out"]["eval_ppl"] == pytest.approx(ppl, rel=1e-6)
        assert report["metrics"]["ppl"] == pytest.approx(ppl, rel=1e-6)
        assert report["held_out"]["bits_per_byte"] == pytest.approx(
            summary["final_metrics"]["bits_per_byte"], rel=1e-6
        )
    # The console: one perplexity, the same number, with how many tokens it is over.
    assert trained_run.result is not None
    stdout = trained_run.result.stdout.splitlines()
    (numbers,) = [line for line in stdout if "train_loss=" in line]
    shown = dict(part.split("=") for part in numbers.split())
    assert shown["eval_ppl"] == f"{ppl:.4g}" and "ppl" not in shown
    said = f"scored on the held-out split: {summary['eval_tokens']:,} tokens"
    assert said in [line.strip() for line in stdout]


def test_the_trainers_periodic_evaluation_is_labelled_an_estimate(trained_run: Run) -> None:
    evals = [row for row in trained_run.metrics if row["event"] == "eval"]
    assert evals and all(row["eval_tokens"] == 4 * 4 * 64 for row in evals)  # batches x blocks
    assert trained_run.result is not None
    assert "step 10: eval_loss" in trained_run.result.stdout
    assert "(estimate over the first 1,024 held-out tokens)" in trained_run.result.stdout
