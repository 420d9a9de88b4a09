"""``training.keep_best``: the checkpoint of the best evaluation, kept apart from pruning.

The trainer's own tests script the evaluations (any sequence of numbers), so
which step is best is known in advance; the command-line tests train one tiny
run whose best ``eval_accuracy@token`` (mode max) comes before its last step,
then read it back with ``--checkpoint best|latest|step-N``.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import (
    TINY,
    Command,
    Run,
    assert_succeeded,
    assert_user_error,
    run_concurrently,
    train,
)

from codex_ml.data.lines import load_tiny_corpus
from codex_ml.models.decoder_only import build_decoder_only
from codex_ml.tokenizers.byte_level import ByteTokenizer
from codex_ml.training import FunctionalTrainer
from codex_ml.training.checkpoint import BEST_FILE, find_best_checkpoint

BLOCK = 32


# --- the trainer, with scripted evaluations --------------------------------------


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str]]:
    records = load_tiny_corpus()
    return records[:40], records[-8:]


def script_evaluations(monkeypatch: pytest.MonkeyPatch, losses: Sequence[float]) -> None:
    """The trainer's evaluations give ``losses`` as eval_loss, one per evaluation, in order."""
    given: Iterator[float] = iter(losses)

    def evaluate(*args: Any, **kwargs: Any) -> dict[str, float]:
        loss = next(given)
        return {"eval_loss": loss, "eval_ppl": math.exp(loss), "eval_accuracy@token": -loss}

    monkeypatch.setattr("codex_ml.training.functional.evaluate", evaluate)


def run_trainer(
    corpus: tuple[list[str], list[str]], output_dir: Path, **settings: Any
) -> dict[str, Any]:
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=BLOCK, seed=0)
    trainer = FunctionalTrainer(
        **{
            "max_steps": 10,
            "batch_size": 2,
            "block_size": BLOCK,
            "warmup_steps": 1,
            "eval_every": 2,
            "eval_max_batches": 1,
            "checkpoint_every": 2,
            "keep_checkpoints": 1,
            "keep_best": "eval_loss",
            "device": "cpu",
            "num_threads": 1,
            "output_dir": str(output_dir),
            **settings,
        }
    )
    result = trainer(model, ByteTokenizer(), *corpus)
    return {"best": result.best, "checkpoint": result.checkpoint}


def kept(output_dir: Path) -> list[str]:
    return sorted(p.name for p in (output_dir / "checkpoints").glob("step-*"))


def best_step(output_dir: Path) -> int:
    best = find_best_checkpoint(output_dir)
    assert best is not None
    return json.loads((best / "meta.json").read_text())["step"]


def test_the_best_evaluation_survives_pruning(corpus, tmp_path, monkeypatch) -> None:
    # evaluations at steps 0 (the start: never "best"), 2, 4, 6, 8, 10
    script_evaluations(monkeypatch, [0.5, 5.0, 3.0, 4.0, 6.0, 7.0])
    result = run_trainer(corpus, tmp_path)
    assert kept(tmp_path) == ["step-10", "step-4"]  # keep_checkpoints=1, and the best
    assert (tmp_path / "checkpoints" / BEST_FILE).read_text().strip() == "step-4"
    assert best_step(tmp_path) == 4
    assert result["best"]["step"] == 4 and result["best"]["value"] == 3.0
    assert result["best"]["checkpoint"].endswith("step-4")
    assert result["checkpoint"].name == "step-10"  # latest, what a resume takes


def test_max_mode_keeps_the_highest(corpus, tmp_path, monkeypatch) -> None:
    script_evaluations(monkeypatch, [9.0, 1.0, 2.0, 5.0, 3.0, 4.0])
    result = run_trainer(corpus, tmp_path, keep_best_mode="max")
    assert best_step(tmp_path) == 6 and result["best"]["value"] == 5.0
    assert kept(tmp_path) == ["step-10", "step-6"]


def test_an_improving_evaluation_is_checkpointed_between_checkpoint_steps(
    corpus, tmp_path, monkeypatch
) -> None:
    script_evaluations(monkeypatch, [9.0, 5.0, 3.0, 4.0, 6.0, 7.0])
    run_trainer(corpus, tmp_path, checkpoint_every=0)  # otherwise only the end is saved
    assert kept(tmp_path) == ["step-10", "step-4"] and best_step(tmp_path) == 4


def test_a_nan_evaluation_is_never_the_best(corpus, tmp_path, monkeypatch) -> None:
    script_evaluations(monkeypatch, [9.0, 5.0, math.nan, 6.0, 7.0, 8.0])
    run_trainer(corpus, tmp_path)
    assert best_step(tmp_path) == 2


def test_a_resumed_run_goes_on_comparing_with_the_best_so_far(
    corpus, tmp_path, monkeypatch
) -> None:
    script_evaluations(monkeypatch, [9.0, 5.0, 3.0, 4.0])  # steps 0, 2, 4, 6
    run_trainer(corpus, tmp_path, max_steps=6)
    script_evaluations(monkeypatch, [6.0, 7.0])  # steps 8, 10: neither beats step 4's 3.0
    result = run_trainer(corpus, tmp_path, resume_from=str(tmp_path))
    assert best_step(tmp_path) == 4 and result["best"]["step"] == 4
    assert kept(tmp_path) == ["step-10", "step-4"]


def test_keep_best_naming_a_number_never_evaluated_is_refused(corpus, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"keep_best='eval_los'.*Did you mean 'eval_loss'"):
        run_trainer(corpus, tmp_path, keep_best="eval_los")
    with pytest.raises(ValueError, match="keep_best_mode='lowest'"):
        run_trainer(corpus, tmp_path, keep_best_mode="lowest")


def test_keep_best_without_held_out_data_is_refused(corpus, tmp_path) -> None:
    model = build_decoder_only(n_layer=1, n_head=2, n_embd=32, block_size=BLOCK, seed=0)
    trainer = FunctionalTrainer(
        max_steps=2, batch_size=2, block_size=BLOCK, keep_best="eval_loss", output_dir=str(tmp_path)
    )
    with pytest.raises(ValueError, match="no data out to evaluate"):
        trainer(model, ByteTokenizer(), corpus[0], None)
    assert not (tmp_path / "checkpoints").exists()


def test_early_stopping_names_the_best_step_and_where_its_checkpoint_is() -> None:
    from codex_ml.callbacks.early_stopping import EarlyStopping
    from codex_ml.plugins.lifecycle import RunInfo
    from codex_ml.training import StopTraining

    run = RunInfo("runs/x", {"training": {"keep_best": "eval_loss", "keep_best_mode": "min"}})
    stopper = EarlyStopping(patience=1)
    stopper.on_evaluate(run, {"step": 10, "eval_loss": 4.0})
    with pytest.raises(StopTraining, match=r"best 4 at step 10; checkpoints/best holds"):
        stopper.on_evaluate(run, {"step": 20, "eval_loss": 4.5})


# --- the command line ------------------------------------------------------------

BEST_RUN = (
    *TINY,
    "run.sample_prompts=[]",
    "training.max_steps=8",
    "training.log_every=1",
    "training.eval_every=2",
    "training.checkpoint_every=4",
    "training.keep_checkpoints=1",
    "training.keep_best=eval_accuracy@token",
    "training.keep_best_mode=max",
)


class Outcomes:
    """One run that keeps its best checkpoint, and the commands that read it back, by name."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.run: Run = train(tmp / "run", *BEST_RUN)
        run = str(self.run.dir)
        self.reports = {name: tmp / f"{name}.json" for name in ("best", "latest", "step")}
        commands = {
            "evaluate_best": ["evaluate", run, "--checkpoint", "best"],
            "evaluate_latest": ["evaluate", run, "--checkpoint", "latest"],
            "evaluate_step": ["evaluate", run, "--checkpoint", f"step-{self.best_step}"],
            "generate_best": ["generate", run, "--checkpoint", "best", "--prompt", "Once"],
            "generate_pruned": ["generate", run, "--checkpoint", "step-2", "--prompt", "Once"],
            "export_best": ["export", run, "--out", str(tmp / "export"), "--checkpoint", "best"],
            "train_nope": [
                "train",
                f"hydra.run.dir={tmp / 'nope'}",
                *BEST_RUN,
                "training.keep_best=nope",
            ],
        }
        for name in ("best", "latest", "step"):
            commands[f"evaluate_{name}"] += ["--output", str(self.reports[name])]
        self.results = run_concurrently({k: Command(v, tmp) for k, v in commands.items()})

    @property
    def best_step(self) -> int:
        """The step of the highest eval_accuracy@token after training began (the first of ties)."""
        evals = [r for r in self.run.metrics if r["event"] == "eval" and r["step"] > 0]
        return max(evals, key=lambda r: (r["eval_accuracy@token"], -r["step"]))["step"]

    def __getitem__(self, name: str) -> subprocess.CompletedProcess:
        return self.results[name]

    def report(self, name: str) -> dict[str, Any]:
        assert_succeeded(self[f"evaluate_{name}"])
        return json.loads(self.reports[name].read_text())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Outcomes:
    return Outcomes(tmp_path_factory.mktemp("best"))


def test_the_run_keeps_its_best_beside_its_latest(outcomes: Outcomes) -> None:
    checkpoints = outcomes.run.dir / "checkpoints"
    best = outcomes.best_step
    assert best != 8, "the tiny run's accuracy peaks before its last step"
    assert (checkpoints / "best").read_text().strip() == f"step-{best}"
    assert (checkpoints / "latest").read_text().strip() == "step-8"
    assert sorted(p.name for p in checkpoints.glob("step-*")) == sorted({f"step-{best}", "step-8"})
    summary = outcomes.run.summary["best"]
    assert summary["metric"] == "eval_accuracy@token" and summary["step"] == best
    assert f"at step {best}: checkpoints/best" in outcomes.run.result.stdout


def test_evaluate_reads_the_checkpoint_asked_for(outcomes: Outcomes) -> None:
    best = outcomes.best_step
    assert Path(outcomes.report("best")["checkpoint"]["path"]).name == f"step-{best}"
    assert Path(outcomes.report("latest")["checkpoint"]["path"]).name == "step-8"
    assert Path(outcomes.report("step")["checkpoint"]["path"]).name == f"step-{best}"
    assert f"checkpoint: {outcomes.run.dir}" in outcomes["evaluate_best"].stderr


def test_generate_and_export_read_the_best(outcomes: Outcomes) -> None:
    best = f"step-{outcomes.best_step}"
    generated = outcomes["generate_best"]
    assert_succeeded(generated)
    assert f"checkpoint: {outcomes.run.dir / 'checkpoints' / best}" in generated.stderr
    exported = outcomes["export_best"]
    assert_succeeded(exported)
    assert f"exported {outcomes.run.dir / 'checkpoints' / best} as" in exported.stdout


def test_a_pruned_step_is_refused_naming_those_kept(outcomes: Outcomes) -> None:
    assert_user_error(
        outcomes["generate_pruned"], "generate", "step-2", f"step-{outcomes.best_step}", "step-8"
    )


def test_keep_best_nope_is_refused_before_training(outcomes: Outcomes) -> None:
    assert_user_error(outcomes["train_nope"], "train", "keep_best='nope'", "eval_loss")
    assert not (outcomes.tmp / "nope").exists()
