"""A NaN or infinite loss stops training with a message naming the step; the last good
checkpoint stays, untouched, and holds exactly the weights a healthy run had at that step.

The fault is injected by a model wrapper that poisons its logits from a given
training forward on: NaN everywhere, or float32's extremes (the largest logit on
a byte the text never contains, the lowest everywhere else), whose difference
overflows, so the loss is exactly +inf.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from codex_ml.cli.errors import EXIT_USAGE
from codex_ml.cli.errors import report as report_error
from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import (
    FunctionalTrainer,
    TrainingDivergedError,
    find_latest_checkpoint,
    load_checkpoint,
)

from . import report

BLOCK = 16
RECORDS = [f"Record {i}: nothing here is ever a NUL byte." for i in range(40)]
HEALTHY = 10**9  # a poison step that never comes


class Poisoned(nn.Module):
    """The tiny decoder, whose training forwards from ``at_step`` on give a non-finite loss."""

    def __init__(self, at_step: int, poison: str) -> None:
        super().__init__()
        self.inner = build_decoder_only(n_layer=1, n_head=2, n_embd=16, block_size=BLOCK, seed=0)
        self.at_step = at_step
        self.poison = poison
        self.training_forwards = 0

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> SimpleNamespace:
        logits = self.inner(input_ids=input_ids).logits
        if self.training:
            self.training_forwards += 1
            if self.training_forwards >= self.at_step:
                if self.poison == "nan":
                    logits = logits * math.nan
                else:
                    extreme = torch.full_like(logits, -3e38)
                    extreme[..., 0] = 3e38  # byte 0, never a target
                    logits = logits * 0.0 + extreme
        return SimpleNamespace(logits=logits)


def trainer(output_dir: Path, **overrides: Any) -> FunctionalTrainer:
    settings = {
        "max_steps": 12,
        "batch_size": 2,
        "block_size": BLOCK,
        "warmup_steps": 2,
        "log_every": 1,
        "checkpoint_every": 2,
        "keep_checkpoints": 10,
        "device": "cpu",
        "num_threads": 1,
        "output_dir": str(output_dir),
    }
    return FunctionalTrainer(**(settings | overrides))


def checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    model = Poisoned(HEALTHY, "nan")
    load_checkpoint(path, model)
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


@pytest.fixture(scope="module")
def healthy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run without the poison, every checkpoint kept."""
    run_dir = tmp_path_factory.mktemp("healthy")
    healthy = trainer(run_dir, checkpoint_every=1, keep_checkpoints=12)
    healthy(Poisoned(HEALTHY, "nan"), ByteTokenizer(), RECORDS)
    return run_dir


CASES = {
    # name: (poison, poisoned from step, trainer settings, the message, last good step)
    "nan, logged every step": ("nan", 5, {}, "the loss became nan at step 5", 4),
    "inf, logged every step": ("inf", 7, {}, "the loss became inf at step 7", 6),
    # Logged every 10 steps: the checkpoint at step 6 reads the loss first, so no
    # poisoned weights are saved, and the message gives the steps since the last read.
    "nan, between logs": (
        "nan",
        5,
        {"log_every": 10, "checkpoint_every": 3},
        "the loss became nan in steps 4..6",
        3,
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    case: str, tmp_path: Path, healthy_run: Path
) -> None:
    poison, at_step, settings, message, last_good = CASES[case]
    report.record("faults_injected")
    with pytest.raises(TrainingDivergedError) as caught:
        trainer(tmp_path, **settings)(Poisoned(at_step, poison), ByteTokenizer(), RECORDS)
    error = caught.value
    good = tmp_path / "checkpoints" / f"step-{last_good}"
    assert message in str(error)
    assert f"The last good checkpoint is {good}" in str(error)
    assert error.last_checkpoint == good
    # The last good checkpoint is the newest, it loads, and it is what a healthy run had.
    assert find_latest_checkpoint(tmp_path) == good
    steps = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert steps[-1] == f"step-{last_good}"
    weights = checkpoint_weights(tmp_path)
    expected = checkpoint_weights(healthy_run / "checkpoints" / f"step-{last_good}")
    lost = not all(torch.equal(weights[k], expected[k]) for k in expected)
    report.record("data_lost", int(lost))
    assert not lost
    assert all(bool(torch.isfinite(t).all()) for t in weights.values())
    # Resuming from it (healthy now) runs to the end.
    resumed = trainer(tmp_path, resume_from=str(tmp_path))(
        Poisoned(HEALTHY, poison), ByteTokenizer(), RECORDS
    )
    assert resumed.steps == 12 and math.isfinite(resumed.final_metrics["train_loss"])
    report.record("runs_survived")


def test_a_loss_that_is_nan_from_the_first_step_says_no_checkpoint_was_written(
    tmp_path: Path,
) -> None:
    report.record("faults_injected")
    with pytest.raises(TrainingDivergedError) as caught:
        trainer(tmp_path)(Poisoned(1, "nan"), ByteTokenizer(), RECORDS)
    assert "at step 1" in str(caught.value)
    assert "No checkpoint was written before it" in str(caught.value)
    assert caught.value.last_checkpoint is None
    assert find_latest_checkpoint(tmp_path) is None
    # What `codex-ml train` prints: one paragraph, the usage exit status.
    assert report_error("train", caught.value) == EXIT_USAGE
