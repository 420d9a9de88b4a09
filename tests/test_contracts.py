"""codex_ml.testing.check_component: every kind's contract, kept and broken on purpose."""

from __future__ import annotations

import math

import pytest

from codex_ml.testing import NeedsArguments, check_component


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("tokenizer", "bytes"),
        ("model", "decoder_only"),
        ("metric", "ppl"),
        ("metric", "exact_match"),
        ("metric", "dist-1"),
        ("reward_model", "offline:heuristic"),
        ("optimizer", "adamw"),
        ("optimizer", "sgd"),
        ("scheduler", "cosine"),
        ("scheduler", "wsd"),
        ("callback", "csv"),
    ],
)
def test_builtin_components_keep_their_contracts(kind: str, key: str) -> None:
    kwargs = {"n_layer": 1, "n_head": 2, "n_embd": 16, "vocab_size": 64} if kind == "model" else {}
    assert check_component(kind, key, **kwargs)


def test_the_example_plugins_keep_their_contracts() -> None:
    for kind, key in [
        ("tokenizer", "toy_tokenizer"),
        ("model", "toy_model"),
        ("metric", "toy_metric"),
        ("data_loader", "toy_data_loader"),
        ("callback", "toy_loss_printer"),
    ]:
        assert check_component(kind, key)


class FloatIds:
    vocab_size, pad_id, eos_id, bos_id = 10, 0, 1, 2

    def encode(self, text: str) -> list[float]:
        return [3.7 for _ in text]

    def decode(self, ids: list[int]) -> str:
        return ""


class OutOfRange(FloatIds):
    pad_id = 99

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(map(chr, ids))

    def batch_encode(self, texts: list[str], **kw: object) -> dict[str, list[list[int]]]:
        rows = [self.encode(t) for t in texts]
        width = max(map(len, rows))
        return {
            "input_ids": [r + [7] * (width - len(r)) for r in rows],
            "attention_mask": [[1] * len(r) + [0] * (width - len(r)) for r in rows],
        }


def test_a_tokenizer_with_float_ids_is_caught(codex_registry) -> None:
    codex_registry("tokenizer").register("float-ids", FloatIds)
    with pytest.raises(AssertionError) as caught:
        check_component("tokenizer", "float-ids")
    message = str(caught.value)
    assert "tokenizer 'float-ids' breaks" in message
    assert "gives ints in [0, vocab_size=10)" in message and "3.7" in message


def test_every_broken_promise_is_listed_not_just_the_first(codex_registry) -> None:
    codex_registry("tokenizer").register("out-of-range", OutOfRange)
    with pytest.raises(AssertionError) as caught:
        check_component("tokenizer", "out-of-range")
    message = str(caught.value)
    assert "pad_id is an int in [0, vocab_size=10)" in message  # pad 99
    assert "encode('hello world.') gives ints" in message  # ord() ids past 10
    assert message.count("\n  - ") >= 4


def test_a_metric_returning_nan_is_caught(codex_registry) -> None:
    codex_registry("metric").register("nan-metric", lambda: lambda preds, targets: math.nan)
    with pytest.raises(AssertionError, match="gives a finite float: got nan"):
        check_component("metric", "nan-metric")


def test_a_metric_that_changes_its_mind_is_caught(codex_registry) -> None:
    calls = iter(range(100))
    codex_registry("metric").register("drifting", lambda: lambda preds, targets: float(next(calls)))
    with pytest.raises(AssertionError, match="the same inputs give the same score"):
        check_component("metric", "drifting")


def test_a_model_whose_loss_does_not_reach_the_weights_is_caught(codex_registry) -> None:
    def build(vocab_size: int = 16):  # type: ignore[no-untyped-def]
        import torch
        from torch import nn

        class Detached(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(vocab_size, vocab_size)

            def forward(self, input_ids, labels=None):  # type: ignore[no-untyped-def]
                logits = self.emb(input_ids)
                loss = None if labels is None else logits.detach().mean().requires_grad_()
                return type("Out", (), {"logits": logits, "loss": loss})()

        torch.manual_seed(0)
        return Detached()

    codex_registry("model").register("detached", build)
    with pytest.raises(AssertionError, match="gradients reach the trainable parameters"):
        check_component("model", "detached")


def test_a_data_loader_yielding_bytes_is_caught(codex_registry) -> None:
    codex_registry("data_loader").register("bytes-loader", lambda: iter([b"a", b"b"]))
    with pytest.raises(AssertionError, match="every record is a str: got bytes"):
        check_component("data_loader", "bytes-loader")


def test_an_optimizer_that_never_moves_is_caught(codex_registry) -> None:
    import torch

    class Still(torch.optim.Optimizer):
        def __init__(self, params, lr):  # type: ignore[no-untyped-def]
            super().__init__(params, {"lr": lr})

        def step(self, closure=None):  # type: ignore[no-untyped-def]
            return None

    codex_registry("optimizer").register("still", lambda params, *, lr: Still(params, lr))
    with pytest.raises(AssertionError, match="a step changes the parameters"):
        check_component("optimizer", "still")


def test_a_schedule_going_negative_is_caught(codex_registry) -> None:
    def build(*, lr: float, max_steps: int, warmup_steps: int):  # type: ignore[no-untyped-def]
        return lambda step: lr * (1 - 2 * step / max_steps)

    codex_registry("scheduler").register("negative", build)
    with pytest.raises(AssertionError, match="every rate is a finite number >= 0: step 51"):
        check_component("scheduler", "negative")


def test_a_callback_that_raises_is_caught(codex_registry) -> None:
    class Boom:
        def on_log(self, run, record):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    codex_registry("callback").register("boom", Boom)
    with pytest.raises(AssertionError, match="on_log survives a run's log: raised RuntimeError"):
        check_component("callback", "boom")


def test_reward_models_must_agree_with_themselves(codex_registry) -> None:
    class Inconsistent:
        def evaluate(self, prompt: str, completion: str) -> float:
            return 1.0

        def batch_evaluate(self, pairs):  # type: ignore[no-untyped-def]
            return [0.0 for _ in pairs]

    codex_registry("reward_model").register("inconsistent", Inconsistent)
    with pytest.raises(AssertionError, match="batch_evaluate agrees with evaluate"):
        check_component("reward_model", "inconsistent")


def test_a_factory_that_needs_arguments_says_how_to_pass_them(codex_registry, tmp_path) -> None:
    with pytest.raises(NeedsArguments) as caught:
        check_component("data_loader", "lines")
    assert caught.value.names == ["path"]
    assert "--kwargs '{\"path\": ...}'" in str(caught.value)
    corpus = tmp_path / "c.txt"
    corpus.write_text("one\ntwo\n")
    assert check_component("data_loader", "lines", path=str(corpus))
