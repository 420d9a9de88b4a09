"""The ``offline:functional`` trainer: learning, determinism, schedule, and stopping cleanly."""

from __future__ import annotations

import itertools
import math
import os
import signal

import pytest
import torch
from torch import nn

from codex_ml.data.lines import load_tiny_corpus
from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import (
    FunctionalTrainer,
    TrainingDivergedError,
    find_latest_checkpoint,
    load_checkpoint,
)
from codex_ml.training.data import BatchSampler, build_blocks
from codex_ml.training.interrupt import GracefulInterrupt
from codex_ml.training.optim import lr_at, parameter_groups

BLOCK = 64


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str]]:
    records = load_tiny_corpus()
    cut = len(records) * 9 // 10
    return records[:cut], records[cut:]


def small_model(seed: int = 0, **overrides) -> nn.Module:
    settings = {"n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": BLOCK, "seed": seed}
    return build_decoder_only(**(settings | overrides))


def trainer(**overrides) -> FunctionalTrainer:
    settings = {
        "max_steps": 8,
        "batch_size": 4,
        "block_size": BLOCK,
        "warmup_steps": 2,
        "log_every": 4,
        "device": "cpu",
        "num_threads": 1,  # tiny models gain nothing from more, and the test machine is shared
    }
    return FunctionalTrainer(**(settings | overrides))


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_a_short_run_lowers_the_eval_loss(corpus):
    train, held_out = corpus
    model = small_model()
    result = trainer(max_steps=60, batch_size=8, warmup_steps=6, log_every=20, eval_every=60)(
        model, ByteTokenizer(), train, held_out
    )
    evals = [record for record in result.history if record["event"] == "eval"]
    assert [record["step"] for record in evals] == [0, 60]
    initial, final = evals[0]["eval_loss"], evals[-1]["eval_loss"]
    assert initial == pytest.approx(math.log(ByteTokenizer.vocab_size), rel=0.05)  # untrained
    assert final < 0.8 * initial
    assert result.final_metrics["eval_loss"] == final
    assert result.final_metrics["eval_ppl"] == pytest.approx(math.exp(final))
    assert result.final_metrics["eval_accuracy@token"] > 2 * evals[0]["eval_accuracy@token"]
    assert result.final_metrics["train_loss"] < result.first_loss
    assert result.steps == 60 and not result.interrupted and result.checkpoint is None
    assert result.tokens_seen == 60 * 8 * BLOCK
    assert result.wall_time > 0


def test_runs_with_the_same_seed_give_identical_weights(corpus):
    train, _ = corpus
    runs = []
    for trainer_seed in (0, 0, 1):
        model = small_model(dropout=0.1)  # dropout draws from the seeded global RNG
        trainer(seed=trainer_seed, max_steps=4)(model, ByteTokenizer(), train)
        runs.append(weights(model))
    same, different = runs[0], runs[2]
    assert all(torch.equal(same[name], runs[1][name]) for name in same)
    assert not all(torch.equal(same[name], different[name]) for name in same)


def test_learning_rate_warms_up_linearly_then_decays_by_cosine_to_min_lr():
    schedule = {"lr": 1e-3, "warmup_steps": 10, "max_steps": 110, "min_lr_ratio": 0.1}
    assert lr_at(1, **schedule) == pytest.approx(1e-4)
    assert lr_at(5, **schedule) == pytest.approx(5e-4)
    assert lr_at(10, **schedule) == pytest.approx(1e-3)  # the peak ends the warmup
    assert lr_at(60, **schedule) == pytest.approx(1e-4 + 0.5 * 9e-4)  # cosine midpoint
    assert lr_at(110, **schedule) == pytest.approx(1e-4)  # the last step is at min_lr
    values = [lr_at(step, **schedule) for step in range(10, 111)]
    assert all(a > b for a, b in itertools.pairwise(values))
    no_warmup = schedule | {"warmup_steps": 0}
    assert lr_at(1, **no_warmup) == pytest.approx(1e-3, rel=1e-3)  # decay starts at once
    assert lr_at(110, **no_warmup) == pytest.approx(1e-4)


def test_logged_lr_follows_the_schedule(corpus):
    train, _ = corpus
    result = trainer(max_steps=6, warmup_steps=2, log_every=1, lr=1e-3)(
        small_model(), ByteTokenizer(), train
    )
    logged = [(r["step"], r["lr"]) for r in result.history if r["event"] == "log"]
    expected = [
        (step, lr_at(step, lr=1e-3, warmup_steps=2, max_steps=6, min_lr_ratio=0.1))
        for step in range(1, 7)
    ]
    assert logged == expected


def test_accumulating_two_batches_of_four_equals_one_batch_of_eight(corpus):
    train, _ = corpus
    results = []
    for batch_size, accum in ((8, 1), (4, 2)):
        model = small_model()
        trainer(max_steps=3, batch_size=batch_size, grad_accum_steps=accum)(
            model, ByteTokenizer(), train
        )
        results.append(weights(model))
    big, accumulated = results
    for name in big:
        torch.testing.assert_close(accumulated[name], big[name], rtol=1e-4, atol=1e-6)


def test_no_weight_decay_on_biases_norms_and_embeddings():
    model = small_model(bias=True)
    decay, no_decay = parameter_groups(model, 0.1)
    ids = {name: id(p) for name, p in model.named_parameters()}
    decayed = {id(p) for p in decay["params"]}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert ids["blocks.0.attn.qkv.weight"] in decayed
    for name in ("wte.weight", "blocks.0.attn.qkv.bias", "blocks.0.ln_1.weight", "ln_f.bias"):
        assert ids[name] not in decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_callbacks_receive_log_eval_and_checkpoint_records(corpus, tmp_path):
    train, held_out = corpus
    records: list[dict] = []
    trainer(max_steps=4, log_every=2, eval_every=2, eval_max_batches=1, output_dir=str(tmp_path))(
        small_model(), ByteTokenizer(), train, held_out, callbacks=[records.append]
    )
    events = [(r["event"], r["step"]) for r in records]
    assert events == [
        ("eval", 0),
        ("log", 1),
        ("log", 2),
        ("eval", 2),
        ("log", 4),
        ("eval", 4),
        ("checkpoint", 4),
    ]
    log = records[2]
    assert log.keys() >= {"loss", "lr", "tokens_per_s", "elapsed", "tokens_seen", "max_steps"}
    assert log["tokens_seen"] == 2 * 4 * BLOCK and log["max_steps"] == 4
    assert log["tokens_per_s"] > 0
    assert records[3].keys() >= {"eval_loss", "eval_ppl", "eval_accuracy@token"}
    assert records[-1]["path"] == str(tmp_path / "checkpoints" / "step-4")


@pytest.mark.parametrize("records", [[], [""], ["too short"]])
def test_data_shorter_than_one_block_is_a_clear_error(records):
    with pytest.raises(ValueError, match=r"train_data has \d+ tokens .* block_size \+ 1 = 65"):
        trainer()(small_model(), ByteTokenizer(), records)


def test_eval_data_shorter_than_one_block_is_named(corpus):
    train, _ = corpus
    with pytest.raises(ValueError, match="eval_data has 3 tokens"):
        trainer()(small_model(), ByteTokenizer(), train, ["hi"])


def test_non_text_records_are_rejected():
    with pytest.raises(TypeError, match=r"train_data\[1\] is a int"):
        trainer()(small_model(), ByteTokenizer(), ["fine", 3])


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_steps", 0),
        ("batch_size", -1),
        ("lr", 0.0),
        ("optimizer", "adamw"),  # a factory, not a key
        ("grad_accum_steps", 1.5),
        ("log_every", True),
        ("precision", "fp8"),
        ("device", "tpu-ish"),
        ("num_threads", 0),
        ("checkpoint_every", 5),  # without output_dir
    ],
)
def test_bad_settings_are_rejected_naming_the_parameter(setting, value):
    with pytest.raises(ValueError, match=setting):
        FunctionalTrainer(**{setting: value})


class NaNAtCall(nn.Module):
    """Wraps a model and poisons its logits on one training forward call."""

    def __init__(self, inner: nn.Module, bad_call: int) -> None:
        super().__init__()
        self.inner = inner
        self.bad_call = bad_call
        self.calls = 0

    def forward(self, input_ids: torch.Tensor, **kwargs):
        output = self.inner(input_ids, **kwargs)
        if self.training:
            self.calls += 1
            if self.calls == self.bad_call:
                output.logits = output.logits * float("nan")
        return output


def test_a_nan_loss_stops_with_an_error_and_keeps_the_last_good_checkpoint(corpus, tmp_path):
    train, _ = corpus
    model = NaNAtCall(small_model(), bad_call=3)
    run = trainer(max_steps=6, log_every=1, checkpoint_every=2, output_dir=str(tmp_path))
    with pytest.raises(TrainingDivergedError, match="nan at step 3") as caught:
        run(model, ByteTokenizer(), train)
    error = caught.value
    good = tmp_path / "checkpoints" / "step-2"
    assert error.step == 3 and error.last_checkpoint == good
    assert str(good) in str(error)
    assert find_latest_checkpoint(tmp_path) == good
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-2"]
    reloaded = NaNAtCall(small_model(seed=1), bad_call=0)
    load_checkpoint(tmp_path, reloaded)
    assert all(torch.isfinite(p).all() for p in reloaded.parameters())


def test_a_nan_loss_between_log_steps_names_the_window(corpus):
    train, _ = corpus
    model = NaNAtCall(small_model(), bad_call=3)
    with pytest.raises(TrainingDivergedError, match=r"in steps 2\.\.4") as caught:
        trainer(max_steps=6, log_every=4)(model, ByteTokenizer(), train)
    assert caught.value.last_checkpoint is None


def test_sigint_finishes_the_step_checkpoints_and_returns(corpus, tmp_path):
    train, _ = corpus
    handler_before = signal.getsignal(signal.SIGINT)
    model = small_model()

    def interrupt_at_step_3(record: dict) -> None:
        if record["event"] == "log" and record["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    result = trainer(max_steps=20, log_every=1, output_dir=str(tmp_path))(
        model, ByteTokenizer(), train, callbacks=[interrupt_at_step_3]
    )
    assert result.interrupted
    # The signal arrives after step 3 was reported; the run stops after the next step.
    assert result.steps == 4
    assert result.checkpoint == tmp_path / "checkpoints" / "step-4"
    assert signal.getsignal(signal.SIGINT) is handler_before
    restored = small_model(seed=1)
    assert load_checkpoint(tmp_path, restored).step == 4
    pairs = zip(restored.parameters(), model.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_a_second_sigint_raises_keyboard_interrupt():
    with pytest.raises(KeyboardInterrupt), GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested
        os.kill(os.getpid(), signal.SIGINT)
        pytest.fail("the second SIGINT did not raise")


def test_ranks_sample_different_blocks_from_the_same_schedule():
    blocks = build_blocks(ByteTokenizer(), ["some text " * 200], 8, name="train_data")
    world = [BatchSampler(blocks, batch_size=3, seed=7, rank=r, world_size=2) for r in (0, 1)]
    single = BatchSampler(blocks, batch_size=6, seed=7)
    for _ in range(3):
        rank0, rank1 = (sampler.next_batch()[0] for sampler in world)
        assert torch.equal(torch.cat([rank0, rank1]), single.next_batch()[0])
    assert torch.equal(world[0].state_dict()["generator"], world[1].state_dict()["generator"])


def test_a_sampler_state_from_another_kind_of_device_is_refused_not_misread():
    blocks = build_blocks(ByteTokenizer(), ["some text " * 50], 8, name="train_data")
    sampler = BatchSampler(blocks, batch_size=2, seed=0)
    before = sampler.state_dict()["generator"].clone()
    cuda_like = {"generator": torch.zeros(16, dtype=torch.uint8)}  # a CUDA generator's size
    assert sampler.load_state_dict(cuda_like) is False
    assert torch.equal(sampler.state_dict()["generator"], before)
    assert sampler.load_state_dict({"generator": before}) is True


def test_num_threads_is_pinned_during_the_run_and_restored(corpus):
    train, _ = corpus
    before = torch.get_num_threads()
    seen = []
    trainer(max_steps=1, num_threads=before + 1)(
        small_model(),
        ByteTokenizer(),
        train,
        callbacks=[lambda record: seen.append(torch.get_num_threads())],
    )
    assert seen == [before + 1]
    assert torch.get_num_threads() == before


def test_a_hugging_face_gpt2_model_trains_too(corpus):
    import transformers  # imported here: it takes seconds, and only this test needs it

    train, _ = corpus
    config = transformers.GPT2Config(
        vocab_size=ByteTokenizer.vocab_size,
        n_positions=BLOCK,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=ByteTokenizer.bos_id,
        eos_token_id=ByteTokenizer.eos_id,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    result = trainer(max_steps=20, batch_size=8, log_every=10)(model, ByteTokenizer(), train)
    assert result.final_metrics["train_loss"] < 0.8 * result.first_loss
