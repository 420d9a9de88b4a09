"""The training job behind ``codex-ml train``: one function from config to run directory."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_ml.config import ConfigError
from codex_ml.plugins.lifecycle import RunInfo
from codex_ml.run.assemble import (
    build,
    build_callbacks,
    build_metrics,
    build_model,
    parameter_names,
    plan,
    resolve,
    training_parts,
)
from codex_ml.run.history import first_loss, latest_eval
from codex_ml.run.lifecycle import Lifecycle
from codex_ml.run.outputs import RunWriter, package_versions
from codex_ml.run.prepare import run_data
from codex_ml.run.restore import resume_command
from codex_ml.training.errors import StopTraining


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


def provenance(p: Any, model: Any = None) -> dict[str, Any]:
    """Registry key, kwargs and provenance of every component the run used.

    The model's architecture (its ``config.model_type``) is recorded beside its
    key, since one key (``hf``) can load many architectures.
    """
    from codex_ml.registry import get_registry

    used = {group: spec for group, spec in p.specs.items()}
    used.update({f"metrics.{m.alias}": m.spec for m in p.metrics})
    used.update({spec.where: spec for spec in p.callbacks})
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


def trainer_extras(p: Any, run_dir: Path, resume: str | None) -> dict[str, Any]:
    """``output_dir``/``resume_from`` for trainers that take them (third-party ones may not)."""
    accepted = parameter_names(p.factories["training"])
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


@dataclass
class Outcome:
    """What any trainer returned, read by attribute or by key (a TrainResult, a dict...)."""

    history: list[dict[str, Any]]
    final_metrics: dict[str, Any]
    steps: int | None = None
    tokens_seen: int | None = None
    wall_time: float | None = None
    checkpoint: Any = None
    interrupted: bool = False
    first_loss: float | None = None
    stop_signal: str | None = None  # SIGINT or SIGTERM, for a run stopped at a checkpoint
    stopped: bool = False  # ended early by a callback's StopTraining
    stop_reason: str | None = None

    @classmethod
    def of(cls, result: Any) -> Outcome:
        def read(name: str, default: Any = None) -> Any:
            if isinstance(result, Mapping):
                return result.get(name, default)
            return getattr(result, name, default)

        history = list(read("history", []) or [])
        losses = [r["loss"] for r in history if isinstance(r, Mapping) and "loss" in r]
        logged_steps = [r["step"] for r in history if isinstance(r, Mapping) and "step" in r]
        return cls(
            history=history,
            final_metrics=dict(read("final_metrics", {}) or {}),
            steps=read("steps", max(logged_steps, default=None)),
            tokens_seen=read("tokens_seen"),
            wall_time=read("wall_time"),
            checkpoint=read("checkpoint"),
            interrupted=bool(read("interrupted", False)),
            first_loss=read("first_loss", losses[0] if losses else None),
            stop_signal=read("stop_signal"),
            stopped=bool(read("stopped", False)),
            stop_reason=read("stop_reason"),
        )

    @classmethod
    def stopped_by(cls, request: Any, records: list[dict[str, Any]]) -> Outcome:
        """A trainer let a callback's StopTraining through: what the run saw is its history."""
        outcome = cls.of({"history": records})
        outcome.stopped, outcome.stop_reason = True, request.reason
        return outcome

    @property
    def status(self) -> str:
        return "interrupted" if self.interrupted else "stopped" if self.stopped else "completed"

    @property
    def exit_status(self) -> int:
        """0, or 128 + the signal that stopped the run at a checkpoint (130, 143)."""
        from codex_ml.training.interrupt import exit_status

        return exit_status(self.stop_signal) if self.interrupted else 0


def train_job(
    cfg: Any,
    *,
    run_dir: Path,
    config_name: str,
    overrides: Sequence[str],
    config_dirs: Sequence[str] = (),
) -> int:
    """Compose -> check -> build -> train -> score -> write; returns the exit status."""
    from omegaconf import OmegaConf

    from codex_ml.config.secrets import redact, secret_values
    from codex_ml.models.parameters import count_parameters
    from codex_ml.run.invocation import write_invocation
    from codex_ml.run.progress import ProgressBar
    from codex_ml.run.progress import wanted as progress_wanted
    from codex_ml.run.rundir import check_not_in_use
    from codex_ml.run.scoring import score

    started = time.perf_counter()
    secrets = secret_values(OmegaConf.to_container(cfg, resolve=False))
    config = resolve(cfg)
    p = plan(config)
    resume = resume_target(config["training"].get("resume"))
    if resume is not None and not _inside(Path(resume), run_dir):
        check_not_in_use(Path(resume))
    settings = p.run
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    main_process = rank == 0
    show_progress = main_process and progress_wanted(settings.get("progress", "auto"))

    # Data first: a wrong or empty data file is found before a large model is loaded.
    tokenizer = build(p, "tokenizer")
    data = run_data(p, tokenizer, progress=show_progress)
    eval_records = data.eval_texts
    model = build_model(p, tokenizer)
    trainer = build(p, "training", **trainer_extras(p, run_dir, resume))
    metrics = build_metrics(p)
    reward_model = build(p, "reward_model")
    lifecycle = Lifecycle.for_run(
        RunInfo(run_dir, redact(config, secrets), rank=rank, world_size=world_size),
        build_callbacks(p),
    )

    earlier, to_write = _earlier_history(resume, run_dir) if main_process else ([], False)
    writer = RunWriter(run_dir) if main_process else None
    progress = ProgressBar(int(config["training"].get("max_steps", 0)), enabled=show_progress)
    # The console (bar and eval lines) and the files are rank 0's; hooks see every rank.
    callbacks = [*([progress, writer] if writer else []), lifecycle]
    if writer:
        write_invocation(
            run_dir, cfg, config_name=config_name, overrides=overrides, config_dirs=config_dirs
        )
        writer.write_config(redact(config, secrets))
    lifecycle.start()
    try:
        result = Outcome.of(trainer(model, tokenizer, data.train, data.eval, callbacks=callbacks))
    except StopTraining as request:  # a third-party trainer that does not catch it
        result = Outcome.stopped_by(request, lifecycle.records)
    except BaseException as error:
        failed = lifecycle.failure_summary(error)
        if writer:
            writer.write_summary(redact(failed, secrets))
        lifecycle.end(failed)
        raise
    finally:
        progress.close()
        if writer:
            writer.close()
    if writer is None:  # another rank: its part of the summary, for its lifecycle hooks
        lifecycle.end(
            {
                "status": result.status,
                "run_dir": str(run_dir),
                "steps": result.steps,
                "final_metrics": result.final_metrics,
                "faults": lifecycle.faults,
            }
        )
        return result.exit_status
    if to_write:
        from codex_ml.run.history import prepend_rows

        prepend_rows(run_dir, earlier)
    history = [*earlier, *result.history]

    report: dict[str, Any] = {"metrics": {}, "samples": []}
    if not result.interrupted:
        scoring = {
            **settings,
            "block_size": config["training"].get("block_size", 128),
            "batch_size": config["training"].get("batch_size", 8),
        }
        report = score(model, tokenizer, eval_records, metrics, reward_model, scoring)
        writer.write_samples(report["samples"])
    plot = writer.plot(history)
    summary = {
        "status": result.status,
        "signal": result.stop_signal,
        "stop_reason": result.stop_reason,
        "run_dir": str(run_dir),
        "config_name": config_name,
        "overrides": list(overrides),
        "first_loss": first_loss(history) if earlier else result.first_loss,
        "resumed_from": resume,
        "last_eval_step": (latest_eval(history) or {}).get("step"),
        "final_metrics": result.final_metrics,
        "metrics": report["metrics"],
        "reward": report.get("reward"),
        "steps": result.steps,
        "tokens_seen": result.tokens_seen,
        "parameters": count_parameters(model),
        "train_seconds": result.wall_time,
        "wall_seconds": time.perf_counter() - started,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "loss_curve": str(plot) if plot else None,
        "data": data.summary,
        "components": provenance(p, model),
        "versions": package_versions(),
        "faults": lifecycle.faults,  # callbacks and hooks switched off, and why
    }
    summary = redact(summary, secrets)
    writer.write_summary(summary)
    lifecycle.end(summary)
    _print_outcome(summary, run_dir)
    return result.exit_status


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or in it (a run resumed in place)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _earlier_history(resume: str | None, run_dir: Path) -> tuple[list[dict[str, Any]], bool]:
    """The resumed run's rows up to the checkpoint it resumes from.

    Resumed in place, the rows past that checkpoint (steps trained again) are
    dropped from ``metrics.jsonl`` now; into a new directory, the rows are
    written ahead of the new ones once training has run (:func:`prepend_rows`),
    so that a start that fails leaves a directory with no step in it. Returns
    the rows and whether they still have to be written.
    """
    if resume is None:
        return [], False
    from codex_ml.run.history import checkpoint_step, read_rows, truncate
    from codex_ml.run.restore import find_run_dir
    from codex_ml.training.checkpoint import resolve_checkpoint

    source = find_run_dir(resume)
    step = checkpoint_step(resolve_checkpoint(resume))
    if source is None or step is None:
        return [], False
    if _inside(source, run_dir):
        truncate(run_dir, upto=step)
        return read_rows(run_dir, upto=step), False  # already in this run's metrics.jsonl
    return read_rows(source, upto=step), True


def _print_outcome(summary: dict[str, Any], run_dir: Path) -> None:
    """Status, each number once, what was skipped and why, and how to go on."""
    print(
        f"{summary['status']}: {summary['steps']} steps, {summary['tokens_seen'] or 0:,} tokens, "
        f"{summary['wall_seconds']:.1f}s"
    )
    final = {k: v for k, v in summary["final_metrics"].items() if isinstance(v, float)}
    stale = {k: final.pop(k) for k in list(final) if k.startswith("eval_") and _stale(summary)}
    shown = {k: f"{v:.4g}" for k, v in final.items()}
    skipped: dict[str, list[str]] = {}
    for alias, value in summary["metrics"].items():
        key = summary["components"].get(f"metrics.{alias}", {}).get("key", alias)
        if isinstance(value, float) and shown.get(f"eval_{key}") != f"{value:.4g}":
            shown[alias] = f"{value:.4g}"  # not when it repeats the trainer's eval number
        elif isinstance(value, dict) and "skipped" in value:
            skipped.setdefault(_reason(str(value["skipped"])), []).append(alias)
    if shown:
        print("  " + "  ".join(f"{k}={v}" for k, v in shown.items()))
    if stale:
        numbers = "  ".join(f"{k}={v:.4g}" for k, v in stale.items())
        print(f"  last evaluation (step {summary['last_eval_step']}): {numbers}")
    if skipped:
        print("  skipped: " + "; ".join(f"{', '.join(n)} ({r})" for r, n in skipped.items()))
    if summary.get("reward"):
        print(f"  {_reward_line(summary)}")
    if summary["status"] == "stopped":
        print(f"  stopped early: {summary.get('stop_reason')}")
    if summary.get("faults"):
        print(f"  switched off after a fault: {len(summary['faults'])} (see train.log)")
    if summary["status"] == "interrupted":
        print(f"  resume with: {resume_command(run_dir)}")
    print(f"run directory: {run_dir}")


def _reward_line(summary: dict[str, Any]) -> str:
    """The samples' reward and which rules gave it (or that none fired)."""
    reward = summary["reward"]
    key = summary["components"].get("reward_model", {}).get("key", "the reward model")
    spread = ", ".join(f"{name} {reward[name]:+.3f}" for name in ("mean", "min", "max"))
    head = f"reward ({key}): {spread}"
    terms = reward.get("terms")
    if terms is None:
        return head
    if not terms:
        return f"{head}; no rule fired for any sample"
    rules = ", ".join(f"{rule} {value:+.3f}" for rule, value in terms.items())
    return f"{head}; mean per rule: {rules} (each sample's in samples.jsonl)"


def _stale(summary: dict[str, Any]) -> bool:
    """An interrupted run whose last evaluation is older than its last step."""
    last = summary.get("last_eval_step")
    return summary["status"] == "interrupted" and last is not None and last < summary["steps"]


#: Words that say in short why a metric was skipped, by what its reason mentions.
_SKIP_WORDS = (
    ("reference", "no references"),
    ("generation", "no generations"),
    ("sample", "no samples"),
    ("eval", "no eval data"),
)


def _reason(text: str) -> str:
    lowered = text.lower()
    return next((word for key, word in _SKIP_WORDS if key in lowered), text.split(".")[0])
