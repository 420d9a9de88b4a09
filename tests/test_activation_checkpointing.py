"""``training.activation_checkpointing=true``: each block's activations are recomputed in the
backward pass, for codex-ml's ``decoder_only`` and Hugging Face models, and the losses are
exactly those of a run without it (CPU, same seed, dropout on)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import QUICK, Command, assert_succeeded, read_jsonl, run_concurrently
from torch import nn

from codex_ml.data.lines import load_tiny_corpus
from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer

BLOCK = 32
STEPS = 4


@pytest.fixture(scope="module")
def records() -> list[str]:
    return load_tiny_corpus()[:40]


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from codex_ml.testing.artefacts import make_tiny_gpt2

    return make_tiny_gpt2(tmp_path_factory.mktemp("gpt2"))


def decoder_only() -> nn.Module:
    return build_decoder_only(n_layer=2, n_head=2, n_embd=32, block_size=BLOCK, dropout=0.2, seed=0)


def first_mlp(model: nn.Module) -> nn.Module:
    """The MLP of the first block: run inside the block's forward, so also when it is rerun."""
    blocks = model.blocks if hasattr(model, "blocks") else model.transformer.h
    return blocks[0].mlp


def train(model: nn.Module, records: list[str], *, recompute: bool) -> tuple[list[float], int]:
    """The logged loss of every step, and how often the first block's MLP ran forward."""
    runs = []
    # A pre-hook: the recomputation stops once it has what backward needs, before forward ends.
    first_mlp(model).register_forward_pre_hook(lambda *args: runs.append(1))
    trainer = FunctionalTrainer(
        max_steps=STEPS,
        batch_size=2,
        block_size=BLOCK,
        warmup_steps=1,
        log_every=1,
        device="cpu",
        num_threads=1,
        activation_checkpointing=recompute,
    )
    result = trainer(model, ByteTokenizer(), records)
    return [r["loss"] for r in result.history if r["event"] == "log"], len(runs)


def same_losses(build: Callable[[], nn.Module], records: list[str]) -> None:
    kept, kept_runs = train(build(), records, recompute=False)
    recomputed, recomputed_runs = train(build(), records, recompute=True)
    assert len(kept) == STEPS
    assert recomputed == kept  # exactly: dropout replays the same masks
    assert (kept_runs, recomputed_runs) == (STEPS, 2 * STEPS)  # run again in each backward


def test_decoder_only_with_dropout_gives_the_same_losses(records) -> None:
    same_losses(decoder_only, records)


def test_a_hugging_face_gpt2_gives_the_same_losses(records, gpt2_dir) -> None:
    from codex_ml.models.hf import hf_model

    model = hf_model(gpt2_dir)
    assert model.config.resid_pdrop > 0  # dropout on, as GPT-2 trains
    same_losses(lambda: hf_model(gpt2_dir), records)


def test_the_model_is_switched_back_after_the_run(records, gpt2_dir) -> None:
    from codex_ml.models.hf import hf_model

    ours, theirs = decoder_only(), hf_model(gpt2_dir)
    for model in (ours, theirs):
        train(model, records, recompute=True)
    assert ours.activation_checkpointing is False
    assert not any(getattr(layer, "gradient_checkpointing", False) for layer in theirs.modules())
    assert theirs.config.use_cache is True


def test_a_model_that_cannot_recompute_is_refused_naming_the_setting(records) -> None:
    trainer = FunctionalTrainer(
        max_steps=1, batch_size=2, block_size=BLOCK, device="cpu", activation_checkpointing=True
    )
    with pytest.raises(ValueError, match="activation_checkpointing=true: Linear"):
        trainer(nn.Linear(2, 2), ByteTokenizer(), records)


def test_the_command_line_setting_trains_to_the_same_losses(tmp_path: Path) -> None:
    settings = (*QUICK, "training.log_every=1", "+model.dropout=0.1")
    runs = {
        name: Command(
            [
                "train",
                f"hydra.run.dir={tmp_path / name}",
                *settings,
                f"training.activation_checkpointing={switch}",
            ],
            tmp_path,
        )
        for name, switch in (("kept", "false"), ("recomputed", "true"))
    }
    for result in run_concurrently(runs).values():
        assert_succeeded(result)
    kept, recomputed = (
        [row["loss"] for row in read_jsonl(tmp_path / name / "metrics.jsonl") if "loss" in row]
        for name in runs
    )
    assert len(kept) == 2 and kept == recomputed
