"""The training job behind ``codex-ml train``: from one checked plan to its run directory.

:func:`train_job` reads top to bottom, one stage a function: build the parts
(the tokenizer, trained on the training split where it trains, and the data
first, then the model, the trainer and what scores it), train (the trainer
watched by the progress bar or plain progress lines, ``metrics.jsonl`` and the
lifecycle hooks), score the trained model on the whole held-out split, and
summarise the run in ``summary.json``.
Under ``torchrun`` every rank builds and trains; rank 0 alone writes the run
directory, scores and summarises. Composing and checking the config, and
printing the outcome, are the command line's (:mod:`codex_ml.cli.train`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_ml.config import ConfigError
from codex_ml.plugins.lifecycle import RunInfo
from codex_ml.run.assemble import (
    Plan,
    build,
    build_callbacks,
    build_metrics,
    build_model,
    data_source,
    parameter_names,
    split_records,
    training_parts,
)
from codex_ml.run.held_out import HeldOut
from codex_ml.run.history import Earlier, earlier_rows, first_loss, latest_eval
from codex_ml.run.invocation import invocation_record
from codex_ml.run.lifecycle import Lifecycle
from codex_ml.run.outputs import Redaction, RunWriter, package_versions
from codex_ml.run.prepare import prepare, skipped_files
from codex_ml.run.progress import ProgressBar, ProgressLines, lines_wanted
from codex_ml.run.progress import wanted as progress_wanted
from codex_ml.run.restore import find_run_dir
from codex_ml.run.rundir import check_not_in_use, inside
from codex_ml.run.scoring import score, scoring_settings
from codex_ml.run.tokenizer import keep_tokenizer, run_tokenizer
from codex_ml.training.errors import StopTraining
from codex_ml.training.result import TrainResult
from codex_ml.world import Process

if TYPE_CHECKING:
    from omegaconf import DictConfig


@dataclass(frozen=True)
class TrainJob:
    """One run: its checked plan, its directory, how it was asked for, and this process."""

    plan: Plan
    cfg: DictConfig  # the composed config, unresolved: recorded in .hydra/, read for secrets
    run_dir: Path
    config_name: str
    overrides: Sequence[str]
    config_dirs: Sequence[str]
    process: Process
    plugin_faults: Sequence[str] = ()  # discovery faults: warned, logged, in summary.json

    @property
    def show_progress(self) -> bool:
        """Progress bars on rank 0, where ``run.progress`` asks for them."""
        return self.process.is_main and progress_wanted(self.plan.run.get("progress", "auto"))

    @property
    def show_progress_lines(self) -> bool:
        """Plain progress lines on rank 0's stdout when it is not a terminal (a log, a pipe)."""
        return self.process.is_main and lines_wanted(self.plan.run.get("progress", "auto"))


@dataclass(frozen=True)
class Finished:
    """How a job ended: its exit status and, on rank 0, the summary as written."""

    status: int
    summary: dict[str, Any] | None


@dataclass(frozen=True)
class RunData:
    """What a training run gets from its data: the trainer's inputs and what scoring reads."""

    train: Any  # a TokenSplit, or a list of text records for a trainer without token ids
    eval: Any | None  # likewise; None when nothing is held out
    held_out: HeldOut | None  # the whole held-out split as ids, as the end-of-run scoring reads it
    eval_texts: list[str]  # held-out records as text (bounded), for the text metrics
    summary: dict[str, Any]  # summary.json's "data"


@dataclass(frozen=True)
class Parts:
    """A run's components, built and ready to train."""

    tokenizer: Any
    data: RunData
    model: Any
    trainer: Callable[..., Any]
    metrics: dict[str, tuple[Any, str]]  # alias -> (metric, the input it scores)
    reward_model: Any
    callbacks: list[tuple[str, str, Any]]  # the configured ones: (alias, registry key, object)
    resume: str | None  # training.resume: the run or checkpoint this run continues


def train_job(job: TrainJob) -> Finished:
    """Build the parts, train, then (rank 0) score and summarise; returns how the run ended."""
    started = time.perf_counter()
    redaction = Redaction.of(job.cfg)
    parts = build_parts(job)
    info = RunInfo(
        job.run_dir,
        redaction(job.plan.config),
        rank=job.process.rank,
        world_size=job.process.world_size,
    )
    lifecycle = Lifecycle.for_run(info, parts.callbacks)
    lifecycle.report_plugin_faults(job.plugin_faults)
    if not job.process.is_main:
        return train_beside_rank_zero(job, parts, lifecycle)
    earlier = earlier_rows(parts.resume, job.run_dir)  # before metrics.jsonl is appended to
    writer = open_run_directory(job, redaction)
    keep_tokenizer(job.plan, job.run_dir, parts.tokenizer)  # a trained one: RUN/tokenizer/
    result = train(job, parts, lifecycle, writer)
    history = earlier.joined(job.run_dir, result.history)
    report = score_model(job, parts, writer) if not result.interrupted else {"metrics": {}}
    summary = summarise(
        job,
        parts,
        result,
        history=history,
        earlier=earlier,
        report=report,
        loss_curve=writer.plot(history),
        faults=lifecycle.faults,
        started=started,
    )
    written = writer.write_summary(summary)
    lifecycle.end(written)
    return Finished(result.exit_status, written)


# --- build the parts -----------------------------------------------------------------------------


def build_parts(job: TrainJob) -> Parts:
    """Every component of the run, the data first: a bad data file fails before a model loads."""
    plan = job.plan
    plan.load_factories()  # all imported first: a missing extra is named before data is read
    resume = resume_target(plan.config["training"].get("resume"))
    if resume is not None and not inside(Path(resume), job.run_dir):
        check_not_in_use(Path(resume))
    callbacks = build_callbacks(plan)  # first: a bad output name is refused before data is read
    tokenizer = run_tokenizer(plan, earlier_run=find_run_dir(resume) if resume else None)
    data = run_data(plan, tokenizer, job.process, progress=job.show_progress)
    model = build_model(plan, tokenizer)
    trainer = build(plan, "training", **trainer_extras(plan, job.run_dir, resume))
    return Parts(
        tokenizer=tokenizer,
        data=data,
        model=model,
        trainer=trainer,
        metrics=build_metrics(plan),
        reward_model=build(plan, "reward_model"),
        callbacks=callbacks,
        resume=resume,
    )


def run_data(plan: Plan, tokenizer: Any, process: Process, *, progress: bool) -> RunData:
    """The token store's splits for a trainer that reads token ids, else records as before.

    A trainer says it reads token ids with a true ``reads_token_ids`` attribute
    (the functional trainer does); any other trainer keeps getting lists of
    text records, split by the same rule, since it may rely on them.
    """
    from codex_ml.data.chat import record_text
    from codex_ml.data.store import TokenSplit

    if not getattr(plan.factory("training"), "reads_token_ids", False):
        loaded = build(plan, "data")
        train, held_out = split_records(
            loaded,
            eval_fraction=float(plan.run.get("eval_fraction", 0.1)),
            seed=int(plan.run.get("seed", 0)),
        )
        counts = {
            "records": len(train) + len(held_out),
            "train": len(train),
            "eval": len(held_out),
            "skipped_files": skipped_files(loaded),
        }
        scored = HeldOut.of_texts(tokenizer, held_out) if held_out else None
        texts = [record_text(record) for record in held_out]  # instruction examples as text
        return RunData(train, held_out or None, scored, texts, counts)
    prepared = prepare(data_source(plan), tokenizer, process=process, progress=progress)
    store = prepared.store
    records = {split: store.records(split) for split in ("train", "eval")}
    facts = prepared.as_dict()
    summary = {
        "records": records["train"] + records["eval"],
        "train": records["train"],
        "eval": records["eval"],
        "skipped_files": facts["skipped_files"],
        "store": facts,
    }
    eval_split = TokenSplit(store, "eval") if store.tokens("eval") else None
    scored = HeldOut.of_store(store) if store.tokens("eval") else None
    return RunData(TokenSplit(store, "train"), eval_split, scored, store.eval_texts(), summary)


# --- what the plan's settings mean for the parts -------------------------------------------------


def resume_target(value: Any) -> str | None:
    """``training.resume``: a run directory or checkpoint that must exist."""
    if value in (None, ""):
        return None
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise ConfigError(
            f"training.resume: {path} does not exist; give a run directory (runs/...), its "
            f"checkpoints/ directory or one checkpoint (checkpoints/step-N).",
            where="training.resume",
        )
    return str(path)


def trainer_extras(p: Plan, run_dir: Path, resume: str | None) -> dict[str, Any]:
    """``output_dir``/``resume_from`` for trainers that take them (third-party ones may not)."""
    accepted = parameter_names(p.factory("training"))
    extras: dict[str, Any] = {}
    if accepted is None or "output_dir" in accepted:
        extras["output_dir"] = str(run_dir)
    if resume is not None:
        if accepted is not None and "resume_from" not in accepted:
            raise ConfigError(
                f"training.resume: trainer {p.specs['training'].name!r} cannot resume (its "
                f"factory takes no resume_from argument).",
                where="training.resume",
            )
        extras["resume_from"] = resume
    for name, factory in training_parts(p).items():  # the optimizer and scheduler groups
        if accepted is not None and name in accepted:
            extras[name] = factory
        else:
            logging.getLogger("codex_ml.run").info(
                "%s: trainer %r takes no %s argument, so %s=%s is not used",
                name,
                p.specs["training"].name,
                name,
                name,
                p.specs[name].name,
            )
    return extras


# --- train ---------------------------------------------------------------------------------------


def open_run_directory(job: TrainJob, redaction: Redaction) -> RunWriter:
    """Rank 0's writer of the run directory, with the invocation and the config written."""
    writer = RunWriter(job.run_dir, redaction)
    record = invocation_record(
        job.run_dir,
        job.cfg,
        config_name=job.config_name,
        overrides=job.overrides,
        config_dirs=job.config_dirs,
    )
    writer.write_invocation(record)
    writer.write_config(job.plan.config)
    return writer


def train(job: TrainJob, parts: Parts, lifecycle: Lifecycle, writer: RunWriter) -> TrainResult:
    """Rank 0 trains, watched by the progress bar, ``metrics.jsonl`` and the lifecycle hooks.

    A run that fails leaves a summary saying so (and how far it got).
    """
    max_steps = int(job.plan.config["training"].get("max_steps", 0))
    progress = ProgressBar(max_steps, enabled=job.show_progress)
    lines = ProgressLines(max_steps, enabled=job.show_progress_lines)
    with closing(writer), closing(progress), lifecycle.running(writer.write_summary):
        return call_trainer(parts, [progress, lines, writer], lifecycle)


def train_beside_rank_zero(job: TrainJob, parts: Parts, lifecycle: Lifecycle) -> Finished:
    """Another rank under torchrun trains too; the console and the files are rank 0's.

    Its hooks are told its own part of the summary.
    """
    with lifecycle.running():
        result = call_trainer(parts, [], lifecycle)
    lifecycle.end(
        {
            "status": result.status,
            "run_dir": str(job.run_dir),
            "steps": result.steps,
            "final_metrics": result.final_metrics,
            "faults": lifecycle.faults,
        }
    )
    return Finished(result.exit_status, None)


def call_trainer(
    parts: Parts, watchers: Sequence[Callable[..., Any]], lifecycle: Lifecycle
) -> TrainResult:
    """The trainer's run, with the lifecycle last among its callbacks, read into a TrainResult."""
    try:
        returned = parts.trainer(
            parts.model,
            parts.tokenizer,
            parts.data.train,
            parts.data.eval,
            callbacks=[*watchers, lifecycle],
        )
    except StopTraining as request:  # a third-party trainer that does not catch it
        return TrainResult.stopped_by(request, lifecycle.records)
    return TrainResult.of(returned)


# --- score and summarise -------------------------------------------------------------------------


def score_model(job: TrainJob, parts: Parts, writer: RunWriter) -> dict[str, Any]:
    """Every metric and the reward model on the trained model; the samples in samples.jsonl."""
    report = score(
        parts.model,
        parts.tokenizer,
        parts.data.held_out,
        parts.data.eval_texts,
        parts.metrics,
        parts.reward_model,
        scoring_settings(job.plan.config),
    )
    writer.write_samples(report["samples"])
    return report


def summarise(
    job: TrainJob,
    parts: Parts,
    result: TrainResult,
    *,
    history: list[dict[str, Any]],
    earlier: Earlier,
    report: dict[str, Any],
    loss_curve: Path | None,
    faults: list[str],
    started: float,
) -> dict[str, Any]:
    """``summary.json``: what the run did and scored, what it used, and what it cost."""
    from codex_ml.models.parameters import count_parameters

    return {
        "status": result.status,
        "signal": result.stop_signal,
        "stop_reason": result.stop_reason,
        "run_dir": str(job.run_dir),
        "config_name": job.config_name,
        "overrides": list(job.overrides),
        "first_loss": first_loss(history) if earlier.rows else result.first_loss,
        "resumed_from": parts.resume,
        "last_eval_step": (latest_eval(history) or {}).get("step"),
        # The held-out numbers are the end-of-run scoring's, not the trainer's last estimate.
        "final_metrics": {**result.final_metrics, **report.get("held_out", {})},
        "metrics": report["metrics"],
        "eval_tokens": report.get("eval_tokens"),
        "reward": report.get("reward"),
        "steps": result.steps,
        "tokens_seen": result.tokens_seen,
        "loss_tokens": result.loss_tokens,  # targets that carried the loss (fewer: instructions)
        "parameters": count_parameters(parts.model),
        "trainable_parameters": count_parameters(parts.model, trainable_only=True),
        "train_seconds": result.wall_time,
        "wall_seconds": time.perf_counter() - started,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "best": result.best,  # training.keep_best: the best evaluation and its checkpoint
        "loss_curve": str(loss_curve) if loss_curve else None,
        "data": parts.data.summary,
        "components": provenance(job.plan, parts.model),
        "versions": package_versions(),
        "faults": faults,  # callbacks and hooks switched off, and why
    }


def provenance(p: Plan, model: Any = None) -> dict[str, Any]:
    """Registry key, kwargs and provenance of every component the run used.

    The model's architecture (its ``config.model_type``) is recorded beside its
    key, since one key (``hf``) can load many architectures.
    """
    from codex_ml.registry import get_registry

    used = {group: spec for group, spec in p.specs.items()}
    used.update({f"metrics.{m.alias}": m.spec for m in p.metrics})
    used.update({spec.where: spec for spec in p.callbacks.values()})
    components = {
        where: {
            **get_registry(spec.kind).describe(spec.name).as_dict(),
            "kwargs": spec.kwargs,
        }
        for where, spec in used.items()
    }
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if isinstance(model_type, str) and "model" in components:
        components["model"]["model_type"] = model_type
    return components
